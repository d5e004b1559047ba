import { MAX_TIMER_MS } from './clock.js';

/**
 * One timer, shared by every baton instance, keeps the process alive while any awaited
 * operation is pending: ref'd from the first until the last settles. A store's driver may
 * not keep the process alive while a caller waits for it (gRPC leaves a connection it is
 * still setting up unref'd, so an acquire waiting for etcd to be reached again ended the
 * process with exit code 13, its top-level await unsettled). Toggling one timer's ref costs
 * far less than making a timer per operation, which showed in the uncontended path's profile.
 */
let pendingOperations = 0;
let hold: NodeJS.Timeout | null = null;

function letGo(): void {
  if (--pendingOperations === 0) hold!.unref();
}

/** keepAliveWhile keeps the process alive until `promise` settles, and returns it. */
export function keepAliveWhile<T>(promise: Promise<T>): Promise<T> {
  if (pendingOperations++ === 0) {
    hold ??= setInterval(() => undefined, MAX_TIMER_MS);
    hold.ref();
  }
  promise.then(letGo, letGo);
  return promise;
}
