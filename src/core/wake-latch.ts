import type { Clock, ClockTimer } from './clock.js';

/**
 * WakeLatch is one waiter's wake-up for stores that notify: `fire()` resolves the pending
 * `wait`, or, if nobody waits yet, is kept so that the next `wait` returns at once. That is
 * what makes a wake-up between `grant` and `wait` impossible to lose.
 */
export class WakeLatch {
  #woken = false;
  #wake: (() => void) | null = null;

  /** fire wakes the pending wait, or is kept for the next one. */
  fire(): void {
    if (this.#wake) this.#wake();
    else this.#woken = true;
  }

  /** wait resolves on `fire()` (or one kept from before) or after `timeoutMs`; rejects with `signal.reason`. */
  wait(clock: Clock, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      if (this.#woken) {
        this.#woken = false;
        return resolve();
      }
      let timer: ClockTimer | null = null;
      const finish = (): void => {
        if (timer) clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#wake = null;
        this.#woken = false;
      };
      const onAbort = (): void => {
        finish();
        reject(signal!.reason);
      };
      this.#wake = () => {
        finish();
        resolve();
      };
      timer = clock.setTimeout(this.#wake, timeoutMs, true);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}
