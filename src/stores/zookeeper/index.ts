/**
 * The ZooKeeper store (`baton-lock/zookeeper`): locks on ZooKeeper in Apache Curator's layouts.
 * - `store.ts`: ZooKeeperStore, the store contract on the pieces below.
 * - `session.ts`: the client's session, which every entry is tied to, as the store's clock sees it.
 * - `paths.ts`: where an entry lives (Curator's names) and what its data says.
 * - `client.ts`: what the store calls on a node-zookeeper-client client.
 */
export type { ZooKeeperClient, ZooKeeperDriver, ZooKeeperStat } from './client.js';
export { escapeName } from './paths.js';
export { createZooKeeperStore, ZooKeeperStore, type ZooKeeperStoreOptions } from './store.js';
