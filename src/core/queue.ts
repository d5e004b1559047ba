import type { GrantRequest, HoldMode } from '../store.js';

/**
 * The grant rule, written once for the stores that keep their entries in a table or a map
 * (memory, SQLite). Stores that decide elsewhere (a Lua script, an etcd revision range, a
 * ZooKeeper sequence node) implement the same rule in their own terms.
 */

/** QueueEntry is one live entry of a resource as a store keeps it. */
export interface QueueEntry {
  readonly owner: string;
  /** Arrival order within the resource; lower is earlier. */
  readonly seq: number;
  readonly mode: HoldMode;
  readonly limit: number;
  readonly held: boolean;
  readonly ttlMs: number;
  /** Expiry instant on the store's clock. */
  readonly expiresAt: number;
  readonly token: bigint | null;
  readonly value?: string;
}

/**
 * canHold: may an entry hold, given the live entries ahead of it in arrival order? This is
 * the only place where primitives differ: a mutex is exclusive with limit 1, a semaphore is
 * shared with limit N, a read-write lock has shared readers (no limit) and exclusive writers.
 */
export function canHold(mode: HoldMode, limit: number, ahead: readonly Pick<QueueEntry, 'mode'>[]): boolean {
  if (ahead.length >= limit) return false;
  if (mode === 'exclusive') return ahead.length === 0;
  return ahead.every((entry) => entry.mode === 'shared');
}

/** Decision is what a store should do with a grant request: grant it, queue it (if asked), or refuse a limit that is not the one in use. */
export type Decision =
  | { readonly grant: true; readonly limitInUse?: undefined }
  | { readonly grant: false; readonly position: number; readonly retryAfterMs: number | undefined; readonly limitInUse?: undefined }
  | { readonly grant: false; readonly limitInUse: number };

/**
 * decide applies the rule to a request. `live` holds the resource's unexpired entries sorted
 * by `seq`; `mine` is the requester's own entry if it is queued. A newcomer sees every live
 * entry ahead of it, so a `tryAcquire` never overtakes a waiter; a newcomer whose limit is
 * not that of the live entries is refused (`limitInUse`), whatever its place would be.
 */
export function decide(live: readonly QueueEntry[], request: Pick<GrantRequest, 'mode' | 'limit'>, mine: QueueEntry | undefined, now: number): Decision {
  if (!mine) {
    const other = live.find((entry) => entry.limit !== request.limit);
    if (other) return { grant: false, limitInUse: other.limit };
  }
  const ahead = mine ? live.filter((entry) => entry.seq < mine.seq) : live;
  if (canHold(request.mode, request.limit, ahead)) return { grant: true };
  let soonest = Infinity;
  for (const entry of ahead) soonest = Math.min(soonest, entry.expiresAt - now);
  return { grant: false, position: ahead.length, retryAfterMs: Number.isFinite(soonest) ? Math.max(0, Math.ceil(soonest)) : undefined };
}

/** grantable lists the queued entries that may hold now, in order: the ones a release should wake, and no others. */
export function grantable(live: readonly QueueEntry[]): QueueEntry[] {
  const result: QueueEntry[] = [];
  for (let i = 0; i < live.length; i++) {
    const entry = live[i]!;
    if (!entry.held && canHold(entry.mode, entry.limit, live.slice(0, i))) result.push(entry);
  }
  return result;
}
