import type { HandOff } from '../store.js';
import type { Clock, ClockTimer } from './clock.js';

/**
 * WakeLatch is one waiter's wake-up for stores that notify: `fire()` resolves the pending
 * `wait`, or, if nobody waits yet, is kept so that the next `wait` returns at once. That is
 * what makes a wake-up between `grant` and `wait` impossible to lose. A wake-up may carry
 * a hand-off (the lock was granted with the wake-up); it is kept the same way.
 */
export class WakeLatch {
  #woken = false;
  #handOff: HandOff | undefined = undefined;
  #wake: ((handOff?: HandOff) => void) | null = null;

  /** fire wakes the pending wait, or is kept for the next one. */
  fire(handOff?: HandOff): void {
    if (this.#wake) this.#wake(handOff);
    else {
      this.#woken = true;
      this.#handOff ??= handOff;
    }
  }

  /** wait resolves on `fire()` (or one kept from before), with its hand-off if any, or after `timeoutMs`; rejects with `signal.reason`. */
  wait(clock: Clock, timeoutMs: number, signal?: AbortSignal): Promise<HandOff | void> {
    return new Promise<HandOff | void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      if (this.#woken) {
        const handOff = this.#handOff;
        this.#woken = false;
        this.#handOff = undefined;
        return resolve(handOff);
      }
      let timer: ClockTimer | null = null;
      const finish = (): void => {
        if (timer) clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#wake = null;
        this.#woken = false;
        this.#handOff = undefined;
      };
      const onAbort = (): void => {
        finish();
        reject(signal!.reason);
      };
      this.#wake = (handOff) => {
        finish();
        resolve(handOff);
      };
      timer = clock.setTimeout(() => this.#wake?.(), timeoutMs, true);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }
}

/**
 * WakeLatches: the latches of one store's local waiters, by owner id (unique per acquisition),
 * for stores whose wake-ups arrive from outside the process (a datagram, a pub/sub message).
 */
export class WakeLatches {
  readonly #latches = new Map<string, WakeLatch>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /**
   * during runs a grant attempt for `owner`. When the attempt may queue, the owner's latch
   * exists before the store is asked, so a wake-up racing the reply is kept; it stays only
   * if the owner ended up queued (not granted, not refused for its limit, not failed).
   */
  async during<T extends { readonly granted: boolean; readonly limitInUse?: number | undefined }>(owner: string, enqueue: boolean, attempt: () => Promise<T>): Promise<T> {
    if (enqueue && !this.#latches.has(owner)) this.#latches.set(owner, new WakeLatch());
    let result: T;
    try {
      result = await attempt();
    } catch (error) {
      this.#latches.delete(owner);
      throw error;
    }
    if (result.granted || !enqueue || result.limitInUse !== undefined) this.#latches.delete(owner);
    return result;
  }

  /** forget drops a local waiter (it released or gave up). */
  forget(owner: string): void {
    this.#latches.delete(owner);
  }

  /** fire wakes `owner` if it waits here, with the hand-off the store made to it if any; wake-ups for unknown owners are ignored. */
  fire(owner: string, handOff?: HandOff): void {
    this.#latches.get(owner)?.fire(handOff);
  }

  /** wait resolves on a wake-up for `owner` (with its hand-off) or after `timeoutMs` (at once if it is not queued here); rejects with `signal.reason`. */
  wait(owner: string, timeoutMs: number, signal?: AbortSignal): Promise<HandOff | void> {
    const latch = this.#latches.get(owner);
    if (!latch) return signal?.aborted ? Promise.reject(signal.reason) : Promise.resolve();
    return latch.wait(this.#clock, timeoutMs, signal);
  }

  /** wakeAll wakes every local waiter to ask the store again, keeping them (wake-ups may have been lost). */
  wakeAll(): void {
    for (const latch of this.#latches.values()) latch.fire();
  }

  /** fireAll wakes every local waiter and forgets them (the store is closing). */
  fireAll(): void {
    for (const latch of this.#latches.values()) latch.fire();
    this.#latches.clear();
  }
}
