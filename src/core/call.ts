import { StoreUnavailableError } from '../errors.js';
import type { LockStore, StoreCall } from '../store.js';
import { monotonicNow } from './clock.js';

/**
 * Bounded store calls. Core makes a `StoreCall` for every call to a store and races the
 * store's promise against the call's deadline and signal, so that a store whose server
 * stopped answering (a partition, a SIGSTOPped server, a driver that queues commands until it
 * reconnects) never holds a caller past its promise. The store is asked to stop its own work
 * through the same signal and deadline; whatever it answers after core gave up goes to
 * `late`, so that a grant nobody waits for any more is given back instead of leaked.
 *
 * One sweep timer serves every pending call of the process: it looks every `SWEEP_MS` for
 * calls whose deadline passed or whose signal aborted, so a call costs no timer and no abort
 * listener of its own (the uncontended path makes two calls per lock). An abort is therefore
 * seen within `SWEEP_MS`, or at once where core sweeps right after aborting (`close()`).
 * The sweep timer never keeps the process alive: a caller that awaits a call holds the
 * process itself (process-hold.ts), and a background call (a renewal) must not.
 */

/** SWEEP_MS: how often pending calls are checked against their deadline and signal. */
export const SWEEP_MS = 10;

/** A signal that never aborts, for calls bounded only by their deadline. */
export const NEVER: AbortSignal = new AbortController().signal;

interface PendingCall {
  readonly deadline: number;
  readonly signal: AbortSignal;
  expire(): void;
}

const pending = new Set<PendingCall>();
let sweeper: NodeJS.Timeout | null = null;
let idleSweeps = 0;

function sweep(): void {
  if (pending.size === 0) {
    // Idle for a second: stop ticking until the next call.
    if (++idleSweeps >= 1000 / SWEEP_MS && sweeper) {
      clearInterval(sweeper);
      sweeper = null;
    }
    return;
  }
  idleSweeps = 0;
  const now = monotonicNow();
  for (const call of pending) if (call.signal.aborted || call.deadline <= now) call.expire();
}

function track(call: PendingCall): void {
  pending.add(call);
  if (!sweeper) {
    sweeper = setInterval(sweep, SWEEP_MS);
    sweeper.unref();
  }
  idleSweeps = 0;
}

function untrack(call: PendingCall): void {
  pending.delete(call);
}

/** sweepNow settles at once every pending call whose signal has aborted (or deadline passed), instead of at the next tick. */
export function sweepNow(): void {
  if (pending.size > 0) sweep();
}

/** storeCall: a call that must settle within `timeoutMs` from now, or when `signal` aborts. */
export function storeCall(timeoutMs: number, signal: AbortSignal = NEVER): StoreCall {
  return { signal, deadline: monotonicNow() + Math.max(0, timeoutMs) };
}

/** timeLeft: ms until `call`'s deadline, 0 once it has passed. */
export function timeLeft(call: StoreCall): number {
  return Math.max(0, call.deadline - monotonicNow());
}

/**
 * timedOut: the error of a call whose store did not answer in time; it starts with why the
 * store cannot reach its server, when the store says (`LockStore.unreachable`).
 */
export function timedOut(store: string | Pick<LockStore, 'name' | 'unreachable'>, verb: string): StoreUnavailableError {
  const name = typeof store === 'string' ? store : store.name;
  let why: string | undefined;
  try {
    why = typeof store === 'string' ? undefined : store.unreachable?.();
  } catch {
    why = undefined;
  }
  const text = `The ${name} store did not answer ${verb} before its deadline`;
  const error = new StoreUnavailableError(name, why ? `${why} (${text.charAt(0).toLowerCase()}${text.slice(1)})` : text);
  timeouts.add(error);
  return error;
}

const timeouts = new WeakSet<Error>();

/** isTimeout: `error` is a call core cut at its deadline (the store did not answer), not an error the store gave. */
export function isTimeout(error: unknown): boolean {
  return error instanceof Error && timeouts.has(error);
}

/** BoundOptions: how one bounded call reports. */
export interface BoundOptions<T> {
  /** The store (or a name, for what is not one) and the verb, for the timeout's message. */
  readonly store: string | Pick<LockStore, 'name' | 'unreachable'>;
  readonly verb: string;
  /** Receives the store's answer when it comes after core gave up. */
  readonly late?: (value: T) => void;
  /** Resolve with `undefined` at the deadline instead of rejecting (a wait, whose deadline is a poll period). */
  readonly resolveAtDeadline?: boolean;
  /** Hears how long the call took and how it ended, when it is `active` as the call starts. */
  readonly observer?: CallObserver;
}

/**
 * CallObserver hears how each store call of a baton instance ended, for its `call` event
 * (metrics, slow-call logs). `active` is read once as a call starts: an instance nobody
 * listens to pays that read, not a clock reading.
 */
export interface CallObserver {
  readonly active: boolean;
  /** The call settled after `durationMs`: with the store's answer (`error` undefined), its error, a timeout, or the caller's abort. */
  called(verb: string, durationMs: number, error: unknown): void;
}

/**
 * bounded runs `start(call)` and settles with it, or at `call.deadline` (rejecting with
 * `StoreUnavailableError`), or when `call.signal` aborts (rejecting with its reason),
 * whichever is first.
 */
export function bounded<T>(call: StoreCall, start: (call: StoreCall) => Promise<T>, options: BoundOptions<T>): Promise<T> {
  // A call already over is not started (a deadline passed is seen by the sweep, within SWEEP_MS).
  if (call.signal.aborted) return Promise.reject(call.signal.reason);
  let promise: Promise<T>;
  try {
    promise = start(call);
  } catch (error) {
    return Promise.reject(error);
  }
  const bound = new Bound<T>(call, options);
  track(bound);
  promise.then(
    (value) => bound.answer(value),
    (error: unknown) => bound.fail(error),
  );
  return bound.promise;
}

/** Bound: one pending call's state; a class rather than closures, since every lock operation makes two. */
class Bound<T> implements PendingCall {
  readonly deadline: number;
  readonly signal: AbortSignal;
  readonly promise: Promise<T>;
  readonly #options: BoundOptions<T>;
  /** When the call started, if its observer listens; -1 otherwise. */
  readonly #startedAt: number;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  #done = false;

  constructor(call: StoreCall, options: BoundOptions<T>) {
    this.deadline = call.deadline;
    this.signal = call.signal;
    this.#options = options;
    this.#startedAt = options.observer?.active ? monotonicNow() : -1;
    this.promise = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** The store answered. */
  answer(value: T): void {
    if (this.#done) {
      this.#options.late?.(value);
      return;
    }
    this.#done = true;
    untrack(this);
    this.#observe(undefined);
    this.#resolve(value);
  }

  /** The store failed. */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    untrack(this);
    this.#observe(error);
    this.#reject(error);
  }

  /** The deadline passed or the signal aborted first. */
  expire(): void {
    if (this.#done) return;
    this.#done = true;
    untrack(this);
    if (this.signal.aborted) {
      this.#observe(this.signal.reason);
      this.#reject(this.signal.reason);
    } else if (this.#options.resolveAtDeadline) {
      this.#observe(undefined);
      this.#resolve(undefined as T);
    } else {
      const error = timedOut(this.#options.store, this.#options.verb);
      this.#observe(error);
      this.#reject(error);
    }
  }

  #observe(error: unknown): void {
    if (this.#startedAt < 0) return;
    try {
      this.#options.observer!.called(this.#options.verb, monotonicNow() - this.#startedAt, error);
    } catch {
      // An observer never changes the outcome of a call.
    }
  }
}
