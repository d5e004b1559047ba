import type { Etcd3, Watcher } from 'etcd3';
import { monotonicNow } from '../../core/clock.js';
import type { StoreCall } from '../../store.js';

/**
 * EtcdClient: the part of an `etcd3` client (`new Etcd3({ hosts })`) the store uses, so you
 * can pass your own, configured with TLS (`credentials`), auth (`auth`) and every member's
 * address (`hosts`); the client fails over between members by itself.
 */
export type EtcdClient = Pick<Etcd3, 'kv' | 'leaseClient' | 'watch' | 'close'>;

/** The gRPC options that end a call at `call`'s deadline. */
export function grpcDeadline(call: StoreCall): { deadline: Date } {
  return { deadline: new Date(Date.now() + Math.max(0, call.deadline - monotonicNow())) };
}

/** isLeaseNotFound: etcd no longer knows the lease (it expired or was revoked). */
export function isLeaseNotFound(error: unknown): boolean {
  return error instanceof Error && (error.name === 'EtcdLeaseInvalidError' || /requested lease not found/.test(error.message));
}

/**
 * unreachableCause: what an error of etcd3 says about a member it could not reach, without
 * gRPC's framing: `connect ECONNREFUSED 127.0.0.1:2379` from "14 UNAVAILABLE: No connection
 * established. Last error: Error: connect ECONNREFUSED 127.0.0.1:2379. Resolution note: ".
 * Undefined for an error that is not about reaching etcd.
 */
export function unreachableCause(error: unknown): string | undefined {
  if (!(error instanceof Error)) return undefined;
  const unavailable = /^14 UNAVAILABLE: ?(.*)$/s.exec(error.message);
  if (!unavailable && error.name !== 'GRPCUnavailableError') return undefined;
  const details = (unavailable ? unavailable[1]! : error.message).trim();
  const connection = /Last error: (?:[A-Za-z]*Error: )?(.*?)\.?(?: Resolution note: ?(.*))?$/s.exec(details);
  if (!connection) return details || 'etcd is unavailable';
  const last = connection[1] === 'null' ? 'no connection established' : connection[1]!;
  const note = connection[2]?.trim();
  return note ? `${last} (${note})` : last;
}

/** isBrokenCircuit: etcd3 did not call a member because calls to it failed just before (its circuit breaker is open). */
export function isBrokenCircuit(error: unknown): boolean {
  return error instanceof Error && ((error as { isBrokenCircuitError?: unknown }).isBrokenCircuitError === true || error.name === 'BrokenCircuitError');
}

/** Stops a watcher; it reports nothing from now on. */
export function cancel(watcher: Watcher): void {
  watcher.removeAllListeners();
  watcher.on('error', () => undefined);
  watcher.cancel().catch(() => undefined);
}
