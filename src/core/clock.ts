/**
 * Clock: where core and the in-process stores read time and set timers. Time is monotonic
 * milliseconds; wall-clock instants (`expiresAt`) are derived only for display.
 */
export interface Clock {
  now(): number;
  /**
   * setTimeout runs `callback` after `ms`. A background timer (the default) does not keep the
   * process alive; pass `awaited` for a wait that a caller is awaiting, which must.
   */
  setTimeout(callback: () => void, ms: number, awaited?: boolean): ClockTimer;
  clearTimeout(timer: ClockTimer): void;
}

/** ClockTimer is an opaque handle from `Clock.setTimeout`. */
export type ClockTimer = { readonly __clockTimer?: never } | object;

/**
 * monotonicNow reads CLOCK_MONOTONIC in milliseconds. On Linux it is one clock for every
 * process on the host, so processes can compare readings (the SQLite store relies on it).
 */
export function monotonicNow(): number {
  // The array form costs about a quarter less than hrtime.bigint() and a BigInt division; it is read on every lock operation.
  const [seconds, nanoseconds] = process.hrtime();
  return seconds * 1000 + nanoseconds / 1e6;
}

/** systemClock: the host's monotonic clock and Node timers; background timers are unref'd so they never keep a process alive. */
export const systemClock: Clock = Object.freeze({
  now: monotonicNow,
  setTimeout(callback: () => void, ms: number, awaited = false): ClockTimer {
    const timer = setTimeout(callback, Math.max(0, Math.min(ms, MAX_TIMER_MS)));
    if (!awaited) timer.unref();
    return timer;
  },
  clearTimeout(timer: ClockTimer): void {
    clearTimeout(timer as NodeJS.Timeout);
  },
});

/** MAX_TIMER_MS is the longest delay a Node timer honours (2^31 - 1 ms). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

interface ManualTimer {
  at: number;
  seq: number;
  callback: () => void;
}

/**
 * ManualClock is a clock that moves only when told to, for tests of code that takes locks:
 * pass it to `createMemoryStore({ clock })` and `createBaton(store, { clock })`, then
 * `await clock.advance(ms)` to run every timer that falls due, in order.
 */
export class ManualClock implements Clock {
  #now: number;
  #seq = 0;
  readonly #timers = new Set<ManualTimer>();

  constructor(startMs = 0) {
    this.#now = startMs;
  }

  now(): number {
    return this.#now;
  }

  setTimeout(callback: () => void, ms: number): ClockTimer {
    const timer: ManualTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, callback };
    this.#timers.add(timer);
    return timer;
  }

  clearTimeout(timer: ClockTimer): void {
    this.#timers.delete(timer as ManualTimer);
  }

  /** advance moves time forward by `ms`, running due timers one by one and letting promise chains settle between them. */
  async advance(ms: number): Promise<void> {
    const target = this.#now + ms;
    await settle();
    for (;;) {
      let next: ManualTimer | undefined;
      for (const timer of this.#timers) {
        if (timer.at <= target && (!next || timer.at < next.at || (timer.at === next.at && timer.seq < next.seq))) next = timer;
      }
      if (!next) break;
      this.#timers.delete(next);
      this.#now = Math.max(this.#now, next.at);
      next.callback();
      await settle();
    }
    this.#now = target;
    await settle();
  }

  /** jump moves time forward without running timers, as a paused process finds it on resuming; due timers run at the next `advance`. */
  jump(ms: number): void {
    this.#now += ms;
  }

  /** pending is the number of timers not yet run. */
  get pending(): number {
    return this.#timers.size;
  }
}

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
