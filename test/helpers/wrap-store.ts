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
    defaultTimeoutMs: store.defaultTimeoutMs,
    grant: (request, call) => store.grant(request, call),
    extend: (key, owner, ttlMs, call) => store.extend(key, owner, ttlMs, call),
    release: (key, owner, call) => store.release(key, owner, call),
    inspect: (key, call) => store.inspect(key, call),
    list: (filter, call) => store.list(filter, call),
    forceRelease: (key, call) => store.forceRelease(key, call),
    prune: (filter, call) => store.prune(filter, call),
    ...(store.wait ? { wait: store.wait.bind(store) } : {}),
    ...(store.watchLost ? { watchLost: store.watchLost.bind(store) } : {}),
    ...(store.sessionDeadline ? { sessionDeadline: store.sessionDeadline.bind(store) } : {}),
    ...(store.proclaim ? { proclaim: store.proclaim.bind(store) } : {}),
    ...(store.watch ? { watch: store.watch.bind(store) } : {}),
    ...(store.downgrade ? { downgrade: store.downgrade.bind(store) } : {}),
    ...(store.advanceMark ? { advanceMark: store.advanceMark.bind(store) } : {}),
    ...(store.listMarks ? { listMarks: store.listMarks.bind(store) } : {}),
    close: (call) => store.close(call),
    ...overrides,
  };
}
