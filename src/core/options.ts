import type { LeaseLostError, LeaseLostReason } from '../errors.js';
import type { HoldMode, LockKind, LockStore } from '../store.js';
import type { Clock } from './clock.js';

/** DEFAULTS: every default of baton in one place. */
export const DEFAULTS = Object.freeze({
  /** Lease TTL when none is given. */
  ttlMs: 30_000,
  /** `acquire` waits without a deadline unless given `timeoutMs` or a `signal`. */
  timeoutMs: Infinity,
  /** Share of the TTL held back for clock drift between this process and the store. */
  driftFactor: 0.01,
  /** Backoff between tries on stores that cannot notify: from about `minBackoffMs`, doubling to `maxBackoffMs`. */
  minBackoffMs: 10,
  maxBackoffMs: 500,
  /** A queued waiter asks again at least this often, even on stores that notify (a lost wake-up costs at most this). */
  queuePollMs: 500,
  /** A queued waiter's entry lives this many poll periods without a refresh: a crashed waiter leaves the queue after about 2 s. */
  queueTtlPolls: 4,
  /** The last try of an `acquire` at its deadline gets this long to answer before the acquire times out. */
  finalTryMs: 40,
  /** A store call that takes longer than this is logged as slow (with a `logger`). */
  slowCallMs: 1000,
  /** A failed `acquire` waits this long at most for its queued place to be removed before it rejects (the removal goes on in the background). */
  cleanupWaitMs: 40,
});

/** BatonOptions configures a baton instance. */
export interface BatonOptions {
  /** Time source; pass a `ManualClock` in tests. Default: the host's monotonic clock. */
  clock?: Clock;
  /** Default lease TTL in ms. Default 30 000. */
  ttlMs?: number;
  /** Share of each TTL held back as a margin for clock drift, from 0 to 0.5. Default 0.01. */
  driftFactor?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  queuePollMs?: number;
  /**
   * Longest wait for one store call that has no tighter bound (an extension, a release,
   * `inspect`, `list`, `forceRelease`, a `tryAcquire`, each try of an `acquire`), in ms;
   * past it the call rejects with `StoreUnavailableError`, except a try of an `acquire`
   * whose own deadline is still ahead: that one is tried again. Default: the
   * store's `defaultTimeoutMs` (5 000 for every built-in store).
   */
  storeTimeoutMs?: number;
  /**
   * Who holds a lease, as `baton ls` and `inspect` show it: stored with every grant of a
   * mutex or semaphore. Default `{ host: os.hostname(), pid: process.pid }`; fields given
   * here are added to (or replace) those; `false` stores nothing. An election's entry keeps
   * its proclaimed value instead.
   */
  holder?: HolderDescription | false;
  /**
   * A pino-style logger (`{ debug, info, warn, error }`, each called as `(fields, message)`):
   * baton then logs lost leases, failed renewals, a store that stops answering and comes
   * back, and slow store calls, with structured fields (see docs/observability.md). Default:
   * none, and baton logs nothing.
   */
  logger?: Logger;
  /** A store call slower than this, in ms, is logged as slow (with `logger`). Default 1 000. */
  slowCallMs?: number;
}

/** Logger: the four methods of a pino-style logger that baton calls, each as `(fields, message)`. */
export interface Logger {
  debug(fields: Record<string, unknown>, message: string): void;
  info(fields: Record<string, unknown>, message: string): void;
  warn(fields: Record<string, unknown>, message: string): void;
  error(fields: Record<string, unknown>, message: string): void;
}

/** HolderDescription: who holds a lease, for people looking at the lock (at most 1 000 characters in all). */
export interface HolderDescription {
  /** The host's name. */
  host?: string;
  /** The holding process's id. */
  pid?: number;
  /** The command the lease protects (`baton run` puts its command line here). */
  command?: string;
  /** Free text: a job id, a deploy, a person. */
  label?: string;
}

/** AcquireOptions for `acquire`. */
export interface AcquireOptions {
  /** Lease TTL in ms, from 1 to 2^31 - 1. Default: the instance's `ttlMs` (30 s). */
  ttlMs?: number;
  /**
   * Longest wait in ms before rejecting with `LockTimeoutError`, whatever the store does
   * (a store that stops answering included); 0 tries once; `Infinity` (the default) waits
   * until granted, aborted, or a store call fails.
   */
  timeoutMs?: number;
  /** Aborts the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Renew the lease every TTL/3 until released. Default false for `acquire`, always true in `withLock`. */
  autoRenew?: boolean;
  /** A label for this lease, shown by `baton ls` and `inspect` with the holder's host and pid (see `BatonOptions.holder`). */
  label?: string;
}

/** TryAcquireOptions for `tryAcquire`. */
export interface TryAcquireOptions {
  ttlMs?: number;
  autoRenew?: boolean;
  label?: string;
  /** Aborts the try; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** WithLockOptions for `withLock`: the lease always renews while `fn` runs. */
export interface WithLockOptions {
  ttlMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
  label?: string;
}

/** SemaphoreOptions for `semaphore`. */
export interface SemaphoreOptions {
  /** How many holders at once, a positive integer. Every user of one semaphore must agree on it. */
  permits: number;
}

/** CallOptions for the calls that ask the store once (`inspect`, `list`, `forceRelease`, `lease.extend`, `lease.release`). */
export interface CallOptions {
  /** Aborts the call; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Longest wait in ms; past it the call rejects with `StoreUnavailableError`. Default: the instance's `storeTimeoutMs`. */
  timeoutMs?: number;
}

/** TokenOf: the token type a store can honestly give, `bigint` where its guarantees include fencing. */
export type TokenOf<S extends LockStore> = S extends { readonly guarantees: { readonly fencing: true } } ? bigint : bigint | null;

/**
 * LockInfo is what `inspect` reports about a lock, with wall-clock instants. Its tokens have
 * the type of the instance's leases: `null` where the store issues no fencing token
 * (`guarantees.fencing` false, a Redlock quorum), as `lease.token` is, never a number that
 * would look like one.
 */
export interface LockInfo<Token extends bigint | null = bigint> {
  readonly name: string;
  readonly kind: LockKind;
  /** The last fencing token issued (0n if never granted): the next grant gets a higher one. */
  readonly fence: Token;
  /**
   * `holder`: who holds it, as its baton instance described itself (see
   * `BatonOptions.holder`). `foreign`: a holder that is not baton's (a Redis mutex's key set
   * by another program's `SET NX PX`); `owner` is then the key's value. `value`: an
   * election's proclaimed value.
   */
  readonly holders: readonly { owner: string; mode: HoldMode; token: Token; ttlMs: number; expiresInMs: number; expiresAt: number; value?: string; holder?: HolderDescription; foreign?: true }[];
  readonly waiters: readonly { owner: string; mode: HoldMode; position: number }[];
}

/** LockEventBase: what every event says of its lock. */
export interface LockEventBase {
  readonly name: string;
  readonly kind: LockKind;
  readonly owner: string;
}

/** BatonEvents: every event a baton instance emits, with timings in ms. */
export interface BatonEvents {
  /** A lease was granted after `waitMs`; `contended` tells whether it had to wait. */
  acquired: [LockEventBase & { token: bigint | null; waitMs: number; contended: boolean }];
  /** A lease was released after being held `holdMs`. */
  released: [LockEventBase & { token: bigint | null; holdMs: number }];
  /** A lease's TTL was reset (by auto-renewal or `extend`). */
  extended: [LockEventBase & { token: bigint | null; ttlMs: number }];
  /** A lease was lost; `error.reason` says why. */
  lost: [LockEventBase & { token: bigint | null; holdMs: number; reason: LeaseLostReason; error: LeaseLostError }];
  /** An acquire found the lock busy and started waiting, or a tryAcquire found it busy. */
  contended: [LockEventBase & { position: number | undefined }];
  /** An acquire ended without a lease: timeout, abort, store error or close; `aborted` when its signal or the instance's close ended it. */
  failed: [LockEventBase & { waitMs: number; aborted: boolean; error: unknown }];
  /** A tryAcquire found the lock busy and resolved null after `waitMs`. */
  busy: [LockEventBase & { waitMs: number }];
  /** An automatic renewal failed; it is tried again until the lease has `remainingMs` left, then the lease is lost. */
  renewFailed: [LockEventBase & { token: bigint | null; remainingMs: number; error: unknown }];
  /**
   * A store call ended after `durationMs`: answered, or with `error` (the store's, a
   * `StoreUnavailableError` at its deadline, or the caller's abort). `verb` is the store
   * method: grant, extend, release, inspect, list, prune, forceRelease, proclaim. The waits
   * between tries are not calls. Store calls are timed only while someone listens.
   */
  call: [{ store: string; verb: string; durationMs: number; error?: unknown }];
}
