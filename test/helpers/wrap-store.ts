/**
 * wrapStore: a store that forwards every call to a real store, except the methods given in
 * `overrides`. Tests use it to count calls, inject faults or log timings around a real
 * store; it is never a stand-in for one.
 */
import type { LockStore } from '../../src/index.js';

export function wrapStore<S extends LockStore>(store: S, overrides: Partial<LockStore> = {}): LockStore & Pick<S, 'guarantees'> {
  return {
    name: store.name,
    guarantees: store.guarantees,
    grant: (request) => store.grant(request),
    extend: (key, owner, ttlMs) => store.extend(key, owner, ttlMs),
    release: (key, owner) => store.release(key, owner),
    inspect: (key) => store.inspect(key),
    list: (filter) => store.list(filter),
    forceRelease: (key) => store.forceRelease(key),
    ...(store.wait ? { wait: store.wait.bind(store) } : {}),
    ...(store.watchLost ? { watchLost: store.watchLost.bind(store) } : {}),
    ...(store.proclaim ? { proclaim: store.proclaim.bind(store) } : {}),
    ...(store.watch ? { watch: store.watch.bind(store) } : {}),
    close: () => store.close(),
    ...overrides,
  };
}
