import { EventEmitter } from 'node:events';
import { Cron } from 'croner';
import { InvalidArgumentError, UnsupportedError } from '../errors.js';
import type { LockStore, MarkState, ResourceKey, StoreCall } from '../store.js';
import { bounded } from './call.js';
import type { Lease } from './lease.js';
import { MARK_NOTE_MAX } from './mark.js';
import type { AcquireOptions, CallOptions } from './options.js';
import { checkBoolean, checkDuration, checkFunction, checkName, checkOptions } from './validate.js';

/** ScheduleOptions configures `baton.schedule`. */
export interface ScheduleOptions {
  /** The time zone a cron expression is read in (an IANA name such as `Europe/Paris`). Default `UTC`. Not for a period in ms. */
  timezone?: string;
  /**
   * lockAtMostForMs: the TTL of the job's lease. Without `keepAlive`, the longest the job
   * holds its lock: past it, the lease is lost (the run's `signal` aborts) and another
   * instance may run the next slot. Default 60 000.
   */
  lockAtMostForMs?: number;
  /** lockAtLeastForMs: the lock is kept this long after a run started, even when the run is shorter (ShedLock's). Default 0. */
  lockAtLeastForMs?: number;
  /** keepAlive: renew the lease every third of `lockAtMostForMs` while the run lasts; the run's `signal` aborts if it is lost anyway. Default true. */
  keepAlive?: boolean;
  /**
   * catchUp: what to do with slots missed while no instance ran (all were down): `none`
   * (the default) runs only slots that come due from now on; `latest` runs the latest
   * missed slot at start, once; a duration in ms runs it only if it is at most that old.
   */
  catchUp?: 'none' | 'latest' | number;
  /** The wall clock (ms since the epoch) slots are read on. Default `Date.now`. For tests. */
  now?: () => number;
  /** Shown with the holder by `baton ls` and `inspect` while the job runs. */
  label?: string;
}

/** JobRun: what a run of a job is given. */
export interface JobRun<Token extends bigint | null = bigint> {
  readonly name: string;
  /** The slot this run is for (a cron time, or a multiple of the period since the epoch). */
  readonly slot: Date;
  /** Aborts when the job's lease is lost (or its instance closes): stop the work then. */
  readonly signal: AbortSignal;
  readonly lease: Lease<Token>;
}

/** JobRecord: a job's record of its last slot, kept with its mark in the store; `baton ls` shows it. */
export interface JobRecord {
  readonly slot: number;
  /** Who ran it: host and pid, and the label. */
  readonly by: string;
  /** When the run started, ms since the epoch on the runner's clock. */
  readonly startedAt: number;
  readonly durationMs?: number;
  /**
   * `running` until it ends (and forever for a run whose process died), then `ok`, `error`,
   * `lost` (the lease was lost while it ran) or `busy` (the slot was claimed but the job's lock
   * stayed held, by a run of an earlier slot or a runner that died, until the next slot).
   */
  readonly outcome: 'running' | 'ok' | 'error' | 'lost' | 'busy';
  readonly error?: string;
}

/** JobEvents: what a job reports. */
export interface JobEvents {
  /** This instance claimed `slot` and starts its run. */
  run: [{ name: string; slot: Date }];
  /** This instance did not run `slot`: another holds the job's lock (`busy`), or the slot was run (or claimed) already (`done`). */
  skipped: [{ name: string; slot: Date; reason: 'busy' | 'done' | 'running' }];
  /** A run ended. */
  done: [{ name: string; slot: Date; record: JobRecord; error?: unknown }];
  /** The store could not be asked (a slot is then not run by this instance). */
  error: [unknown];
}

/** JobHost: what a job needs from its baton instance. */
export interface JobHost<Token extends bigint | null> {
  readonly store: LockStore;
  /** The job's lock, waited for within `timeoutMs` (0 tries once): null when it stayed busy. */
  lease(name: string, options: AcquireOptions): Promise<Lease<Token> | null>;
  call(options?: CallOptions): StoreCall;
  holderText(label: string | undefined): string;
  /** Aborts when the instance closes. */
  readonly closed: AbortSignal;
}

const SCHEDULE_OPTIONS = ['timezone', 'lockAtMostForMs', 'lockAtLeastForMs', 'keepAlive', 'catchUp', 'now', 'label'] as const;
/** The longest a timer is set for: setTimeout's limit. Farther slots are reached in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Job: a function run at most once per slot across every instance that schedules it. Each
 * instance computes the same slots (a cron expression through croner, UTC unless a time zone
 * is given; or multiples of a period since the epoch). At a slot T, an instance advances the
 * job's durable mark from below T to T (`LockStore.advanceMark`, one atomic compare): the
 * one that does has claimed slot T, and every other finds the mark at T and skips it. The
 * claimer then takes the job's lock (the mutex of the job's name, waited for until the next
 * slot at most) and runs slot T under it. So a slot runs at most once whatever the
 * instances' clocks say and however short the run, and runs once as long as its claimer
 * lives. A run killed midway is not run again for its slot (its mark stays; its record says
 * `running`). The timers are unref'd (they never keep the process alive) and `stop()`
 * clears them.
 */
export class Job<Token extends bigint | null = bigint> extends EventEmitter<JobEvents> {
  readonly name: string;
  readonly #host: JobHost<Token>;
  /** Typed for any token, so that a job (and its baton) of bigint tokens is one of bigint | null tokens too; it is only ever called with this job's runs. */
  readonly #fn: (run: JobRun<bigint | null>) => unknown;
  readonly #slots: Slots;
  readonly #now: () => number;
  readonly #atMostMs: number;
  readonly #atLeastMs: number;
  readonly #keepAlive: boolean;
  readonly #catchUp: 'none' | 'latest' | number;
  readonly #label: string | undefined;
  readonly #key: ResourceKey;
  readonly #stopped = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  /** The last slot this instance attempted: the next timer is set for a later one. */
  #last = -1;

  /** @internal */
  constructor(host: JobHost<Token>, name: string, when: string | number, fn: (run: JobRun<Token>) => unknown, options?: ScheduleOptions) {
    super();
    this.name = checkName(name);
    checkFunction(fn, 'fn');
    const o = checkOptions<ScheduleOptions>(options, 'options', SCHEDULE_OPTIONS);
    if (!host.store.advanceMark) throw new UnsupportedError(host.store.name, 'run scheduled jobs', 'it keeps no marks (no advanceMark)');
    this.#host = host;
    this.#fn = fn as (run: JobRun<bigint | null>) => unknown;
    this.#slots = slotsOf(when, o.timezone);
    if (o.now !== undefined && typeof o.now !== 'function') throw new InvalidArgumentError('now', 'Expected `now` to be a function that returns ms since the epoch');
    this.#now = o.now ?? Date.now;
    this.#atMostMs = checkDuration(o.lockAtMostForMs ?? 60_000, 'lockAtMostForMs');
    this.#atLeastMs = checkDuration(o.lockAtLeastForMs ?? 0, 'lockAtLeastForMs', 0);
    if (this.#atLeastMs > this.#atMostMs) {
      throw new InvalidArgumentError('lockAtLeastForMs', `Expected \`lockAtLeastForMs\` (${this.#atLeastMs}) to be at most \`lockAtMostForMs\` (${this.#atMostMs})`);
    }
    this.#keepAlive = checkBoolean(o.keepAlive, 'keepAlive') ?? true;
    const catchUp = o.catchUp ?? 'none';
    if (catchUp !== 'none' && catchUp !== 'latest') checkDuration(catchUp, 'catchUp', 0);
    this.#catchUp = catchUp;
    if (o.label !== undefined && (typeof o.label !== 'string' || o.label.length > 200)) throw new InvalidArgumentError('label', 'Expected `label` to be a string of at most 200 characters');
    this.#label = o.label;
    this.#key = { kind: 'mutex', name: this.name };
    host.closed.addEventListener('abort', () => void this.stop(), { once: true });
    this.#start();
  }

  /** nextSlot: the next slot this instance will attempt; null once stopped or when the schedule has no more. */
  get nextSlot(): Date | null {
    if (this.#stopped.signal.aborted) return null;
    const next = this.#slots.next(Math.max(this.#now(), this.#last));
    return next === null ? null : new Date(next);
  }

  /** running: a run of this instance is under way. */
  get running(): boolean {
    return this.#running !== null;
  }

  /** lastRun reads the job's record of its last slot from the store: who ran it, when, how long, how it ended; null before the first run. */
  async lastRun(options?: CallOptions): Promise<JobRecord | null> {
    const call = this.#host.call(options);
    const mark = await bounded(call, (c) => this.#host.store.advanceMark!(this.#key, { to: -1 }, c), { store: this.#host.store, verb: 'advanceMark' });
    return parseRecord(mark);
  }

  /**
   * stop ends the schedule: no slot is attempted from now on and the timers are cleared. It
   * resolves once a run under way has ended and released its lock (the run is not
   * interrupted: it has its `signal`); a `lockAtLeastForMs` hold is cut short.
   */
  async stop(): Promise<void> {
    this.#stopped.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #start(): void {
    const now = this.#now();
    const latest = this.#slots.previous(now);
    const catchUp = this.#catchUp;
    if (latest !== null && catchUp !== 'none' && (catchUp === 'latest' || now - latest <= catchUp)) void this.#attempt(latest).finally(() => this.#arm());
    else this.#arm();
  }

  /** Sets the timer for the next slot after the last one attempted. */
  #arm(): void {
    if (this.#stopped.signal.aborted) return;
    const now = this.#now();
    const next = this.#slots.next(Math.max(now, this.#last));
    if (next === null) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, next - now));
    this.#timer = setTimeout(() => {
      this.#timer = null;
      // A timer may fire a little early by the job's clock: wait again for the slot itself.
      if (this.#now() < next) this.#arm();
      else void this.#attempt(next).finally(() => this.#arm());
    }, delay);
    this.#timer.unref();
  }

  /** Attempts slot `slot`: the job's lock, then the mark, then the run. */
  async #attempt(slot: number): Promise<void> {
    this.#last = Math.max(this.#last, slot);
    if (this.#stopped.signal.aborted) return;
    if (this.#running) {
      this.#emitSafe('skipped', { name: this.name, slot: new Date(slot), reason: 'running' });
      return;
    }
    const run = this.#run(slot);
    this.#running = run;
    try {
      await run;
    } finally {
      this.#running = null;
    }
  }

  async #run(slot: number): Promise<void> {
    const startedAt = this.#now();
    const by = this.#host.holderText(this.#label);
    const store = this.#host.store;
    const mark = async (record: JobRecord, renote: boolean): Promise<boolean> => {
      const call = this.#host.call();
      return (await bounded(call, (c) => store.advanceMark!(this.#key, { to: slot, note: noteOf(record), renote }, c), { store, verb: 'advanceMark' })).advanced;
    };
    // The claim: of every instance that reaches slot T, the one that moves the mark to T runs it.
    try {
      if (!(await mark({ slot, by, startedAt, outcome: 'running' }, false))) {
        this.#emitSafe('skipped', { name: this.name, slot: new Date(slot), reason: 'done' });
        return;
      }
    } catch (error) {
      this.#emitSafe('error', error);
      return;
    }
    // Then the job's lock, waited for until the next slot at most (a run of the slot before, or
    // the lease of a runner that died, may still hold it).
    const next = this.#slots.next(slot);
    let lease: Lease<Token> | null = null;
    let failure: unknown;
    try {
      lease = await this.#host.lease(this.name, {
        ttlMs: this.#atMostMs,
        autoRenew: this.#keepAlive,
        timeoutMs: next === null ? this.#atMostMs : Math.max(0, Math.min(MAX_TIMER_MS, next - this.#now())),
        signal: this.#stopped.signal,
        ...(this.#label === undefined ? {} : { label: this.#label }),
      });
    } catch (error) {
      failure = error;
    }
    if (!lease) {
      const record: JobRecord = { slot, by, startedAt, durationMs: 0, outcome: 'busy', ...(failure === undefined ? {} : { error: clip(messageOf(failure)) }) };
      await mark(record, true).catch((error: unknown) => this.#emitSafe('error', error));
      this.#emitSafe('skipped', { name: this.name, slot: new Date(slot), reason: 'busy' });
      return;
    }
    try {
      this.#emitSafe('run', { name: this.name, slot: new Date(slot) });
      let outcome: JobRecord['outcome'] = 'ok';
      try {
        await this.#fn({ name: this.name, slot: new Date(slot), signal: lease.signal, lease });
      } catch (error) {
        outcome = 'error';
        failure = error;
      }
      if (!lease.held) outcome = 'lost';
      const ended: JobRecord = { slot, by, startedAt, durationMs: Math.max(0, this.#now() - startedAt), outcome, ...(failure === undefined ? {} : { error: clip(messageOf(failure)) }) };
      await mark(ended, true).catch((error: unknown) => this.#emitSafe('error', error));
      this.#emitSafe('done', { name: this.name, slot: new Date(slot), record: ended, ...(failure === undefined ? {} : { error: failure }) });
      // lockAtLeastFor: the lock stays until that long after the start, unless stopped.
      const hold = startedAt + this.#atLeastMs - this.#now();
      if (hold > 0 && lease.held) await sleepUnref(Math.min(hold, MAX_TIMER_MS), this.#stopped.signal);
    } finally {
      await lease.release().catch(() => undefined);
    }
  }

  /** Emits without letting a listener's error reach the timer (it becomes a warning), and `error` only when someone listens. */
  #emitSafe<E extends keyof JobEvents>(event: E, payload: JobEvents[E][0]): void {
    if (event === 'error' && this.listenerCount('error') === 0) return;
    try {
      (this.emit as (event: E, payload: JobEvents[E][0]) => boolean)(event, payload);
    } catch (error) {
      process.emitWarning(`A listener of a baton job's "${event}" event threw: ${error instanceof Error ? error.message : String(error)}`, 'BatonWarning');
    }
  }
}

/** Slots: the instants a schedule runs at, in ms since the epoch. */
interface Slots {
  /** The first slot strictly after `after`, or null. */
  next(after: number): number | null;
  /** The latest slot at or before `at`, or null. */
  previous(at: number): number | null;
}

/** slotsOf reads a schedule: a cron expression (5 or 6 fields, croner's syntax) or a period in ms, at least 1 000. */
export function slotsOf(when: unknown, timezone: unknown): Slots {
  if (typeof when === 'number') {
    if (!Number.isSafeInteger(when) || when < 1000) throw new InvalidArgumentError('every', `Expected a period in ms to be an integer of at least 1000, got ${String(when)}`);
    if (timezone !== undefined) throw new InvalidArgumentError('timezone', '`timezone` applies to a cron expression, not to a period in ms');
    return {
      next: (after) => (Math.floor(after / when) + 1) * when,
      previous: (at) => Math.floor(at / when) * when,
    };
  }
  if (typeof when !== 'string' || when.trim() === '') throw new InvalidArgumentError('cron', `Expected a cron expression or a period in ms, got ${typeof when === 'string' ? 'an empty string' : typeof when}`);
  if (timezone !== undefined) {
    try {
      if (typeof timezone !== 'string' || timezone === '') throw new RangeError('not a name');
      new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    } catch {
      throw new InvalidArgumentError('timezone', `Expected \`timezone\` to be an IANA time zone name such as "Europe/Paris", got ${JSON.stringify(timezone)}`);
    }
  }
  let cron: Cron;
  try {
    cron = new Cron(when, { paused: true, timezone: timezone ?? 'UTC' });
  } catch (error) {
    throw new InvalidArgumentError('cron', `Expected a cron expression such as "*/5 * * * *", got "${when}": ${error instanceof Error ? error.message : String(error)}`);
  }
  return {
    next: (after) => cron.nextRun(new Date(after))?.getTime() ?? null,
    previous: (at) => {
      const [previous] = cron.previousRuns(1, new Date(at + 1));
      return previous ? previous.getTime() : null;
    },
  };
}

function noteOf(record: JobRecord): string {
  return JSON.stringify(record).slice(0, MARK_NOTE_MAX);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function clip(text: string): string {
  return text.length > 300 ? `${text.slice(0, 299)}…` : text;
}

/** parseRecord reads a job's record from its mark; null without one (or a note that is not a job's). */
export function parseRecord(mark: MarkState): JobRecord | null {
  if (mark.at < 0 || mark.note === undefined) return null;
  try {
    const parsed = JSON.parse(mark.note) as JobRecord;
    return typeof parsed === 'object' && parsed !== null && typeof parsed.slot === 'number' ? parsed : null;
  } catch {
    return null;
  }
}

/** sleepUnref waits `ms` on an unref'd timer, or until `signal` aborts. */
function sleepUnref(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    timer.unref();
    signal.addEventListener('abort', done, { once: true });
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
