/**
 * aborted resolves with the signal's reason once it aborts, or rejects after `withinMs`.
 * baton's keep-alive timer is unref'd (a held lease does not keep a process alive), so the
 * wait holds a ref'd timer of its own, which also bounds it.
 */
export function aborted(signal: AbortSignal, withinMs = 10_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return resolve(signal.reason);
    const guard = setTimeout(() => reject(new Error(`signal not aborted within ${withinMs} ms`)), withinMs);
    signal.addEventListener('abort', () => {
      clearTimeout(guard);
      resolve(signal.reason);
    }, { once: true });
  });
}
