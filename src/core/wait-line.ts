import type { ResourceKey } from '../store.js';
import type { Clock } from './clock.js';
import { WakeLatch } from './wake-latch.js';

/**
 * WaitLines keep this process's waiters for one resource in line on a store that cannot
 * notify (a Redlock quorum): only the first in line asks the store again, with backoff; the
 * others wait their turn here, asking nothing. So the store sees one retrying waiter per
 * process and resource however many wait in it, and the commands a hand-off costs grow with
 * the processes that wait, not with the waiters. A local release wakes the first in line at
 * once, and a waiter that leaves the line (granted, timed out, aborted, failed) passes the
 * turn on at once: within a process, waiters are served in arrival order, with no backoff
 * between them.
 *
 * Left out: waiters in other processes, which no process can see on such a store; they
 * compete with each process's first in line as before.
 */
export class WaitLines {
  readonly #lines = new Map<string, Spot[]>();
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** join puts a waiter at the end of `key`'s line. */
  join(key: ResourceKey): Spot {
    const id = lineId(key);
    let line = this.#lines.get(id);
    if (!line) this.#lines.set(id, (line = []));
    const spot = new Spot(this, id, this.#clock);
    line.push(spot);
    return spot;
  }

  /** nudge wakes the first in `key`'s line, if any, to ask the store at once (the lock was released here). */
  nudge(key: ResourceKey): void {
    this.#lines.get(lineId(key))?.[0]?.promote(false);
  }

  /** first tells whether `spot` is first in its line. */
  first(spot: Spot): boolean {
    return this.#lines.get(spot.id)?.[0] === spot;
  }

  /**
   * leave takes `spot` out of its line. When it was first, the next one becomes first: it
   * asks the store at once, unless `busy` (`spot` was granted an exclusive hold, so the lock
   * is busy again and its release will wake the next): then after its backoff.
   */
  leave(spot: Spot, busy: boolean): void {
    const line = this.#lines.get(spot.id);
    const at = line?.indexOf(spot) ?? -1;
    if (!line || at < 0) return;
    line.splice(at, 1);
    if (line.length === 0) this.#lines.delete(spot.id);
    else if (at === 0) line[0]!.promote(busy);
  }
}

/** Spot: one waiter's place in a line. */
export class Spot {
  readonly latch = new WakeLatch();
  readonly #lines: WaitLines;
  readonly #clock: Clock;
  readonly id: string;

  constructor(lines: WaitLines, id: string, clock: Clock) {
    this.#lines = lines;
    this.id = id;
    this.#clock = clock;
  }

  /** Made first because the one ahead was granted: back off before asking. */
  #quiet = false;

  /**
   * pause waits before the next try: `backoffMs` when first in line (cut short by a local
   * release), else until it is first (or `untilMs` runs out); rejects with `signal.reason`.
   */
  async pause(backoffMs: number, untilMs: number, signal: AbortSignal): Promise<void> {
    if (this.#lines.first(this)) return void (await this.latch.wait(this.#clock, backoffMs, signal));
    const startedAt = this.#clock.now();
    await this.latch.wait(this.#clock, untilMs, signal);
    if (!this.#quiet) return;
    this.#quiet = false;
    await this.latch.wait(this.#clock, Math.max(0, Math.min(backoffMs, untilMs - (this.#clock.now() - startedAt))), signal);
  }

  /** promote tells the spot it is now first; `quiet` when the lock was just granted to the one ahead. */
  promote(quiet: boolean): void {
    this.#quiet = quiet;
    this.latch.fire();
  }

  leave(busy: boolean): void {
    this.#lines.leave(this, busy);
  }
}

function lineId(key: ResourceKey): string {
  return `${key.kind}\0${key.name}`;
}
