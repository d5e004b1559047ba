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

/** Stops a watcher; it reports nothing from now on. */
export function cancel(watcher: Watcher): void {
  watcher.removeAllListeners();
  watcher.on('error', () => undefined);
  watcher.cancel().catch(() => undefined);
}
