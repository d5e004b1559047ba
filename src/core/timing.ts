import type { Clock } from './clock.js';

/** sleep waits `ms` on `clock`; rejects with `signal.reason` if the signal aborts first (or already has). */
export function sleep(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clock.clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms, true);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * backoffMs: exponential backoff with equal jitter, the fallback for stores that cannot
 * notify. Attempt 0 waits about `minMs`; the wait doubles up to `maxMs`, half of it random,
 * so that contenders spread out instead of retrying in step.
 */
export function backoffMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.max(1, Math.round(ceiling / 2 + random() * (ceiling / 2)));
}
