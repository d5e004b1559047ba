/**
 * The validity of a session that a server keeps alive on its own clock (an etcd session
 * lease, a ZooKeeper session): what a store can promise of it from the host's clock alone.
 */

/**
 * sessionValidUntil: until when a session surely lasts on its server: the send time of the
 * last request the server answered on it (`validFrom`, on the host's monotonic clock; the
 * server received it no earlier, and counts the session's TTL from then at the soonest)
 * plus its TTL, less 1% (at least 1 ms) for the drift between the two clocks.
 */
export function sessionValidUntil(validFrom: number, ttlMs: number): number {
  return validFrom + ttlMs - Math.max(1, Math.floor(ttlMs * 0.01));
}
