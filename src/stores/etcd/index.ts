/**
 * The etcd store (`baton-lock/etcd`): locks on etcd v3 with etcd's own lock recipe.
 * - `store.ts`: EtcdStore, the store contract on the pieces below.
 * - `session.ts`: the session lease every entry is attached to, kept alive once for all.
 * - `window.ts`: a queued entry's watch over the keys just ahead of it.
 * - `keys.ts`: where an entry lives and what its key and value say.
 * - `client.ts`: what the store calls on an etcd3 client.
 */
export type { EtcdClient } from './client.js';
export { escapeName } from './keys.js';
export type { KeepAliveEvent } from './session.js';
export { createEtcdStore, EtcdStore, type EtcdStoreOptions } from './store.js';
