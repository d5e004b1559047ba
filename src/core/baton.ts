import { randomFillSync } from 'node:crypto';
import { EventEmitter, setMaxListeners } from 'node:events';
import { ClosedError, InvalidArgumentError, LeaseLostError, LockTimeoutError, type LeaseLostReason } from '../errors.js';
import type { GrantResult, HandOff, HoldMode, LockKind, LockStore, ResourceKey, ResourceState } from '../store.js';
import { MAX_TIMER_MS, systemClock, type Clock } from './clock.js';
import { Election } from './election.js';
import { KeepAlive, type LeaseRecord } from './keep-alive.js';
import { Lease, releasedError, type LeaseOwner } from './lease.js';
import { backoffMs, sleep } from './timing.js';
import {
  checkBoolean,
  checkDuration,
  checkFunction,
  checkName,
  checkOptions,
  checkPositiveInteger,
  checkSignal,
  checkTimeout,
} from './validate.js';

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
}

/** AcquireOptions for `acquire`. */
export interface AcquireOptions {
  /** Lease TTL in ms, from 1 to 2^31 - 1. Default: the instance's `ttlMs` (30 s). */
  ttlMs?: number;
  /** Longest wait in ms before rejecting with `LockTimeoutError`; 0 tries once; `Infinity` (the default) waits until granted or aborted. */
  timeoutMs?: number;
  /** Aborts the wait; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /** Renew the lease every TTL/3 until released. Default false for `acquire`, always true in `withLock`. */
  autoRenew?: boolean;
}

/** TryAcquireOptions for `tryAcquire`. */
export interface TryAcquireOptions {
  ttlMs?: number;
  autoRenew?: boolean;
}

/** WithLockOptions for `withLock`: the lease always renews while `fn` runs. */
export interface WithLockOptions {
  ttlMs?: number;
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** SemaphoreOptions for `semaphore`. */
export interface SemaphoreOptions {
  /** How many holders at once, a positive integer. Every user of one semaphore must agree on it. */
  permits: number;
}

/** TokenOf: the token type a store can honestly give, `bigint` where its guarantees include fencing. */
export type TokenOf<S extends LockStore> = S extends { readonly guarantees: { readonly fencing: true } } ? bigint : bigint | null;

/** LockInfo is what `inspect` reports about a lock, with wall-clock instants. */
export interface LockInfo {
  readonly name: string;
  readonly kind: LockKind;
  /** The last fencing token issued: the next grant gets a higher one. */
  readonly fence: bigint;
  readonly holders: readonly { owner: string; mode: HoldMode; token: bigint; ttlMs: number; expiresInMs: number; expiresAt: number; value?: string }[];
  readonly waiters: readonly { owner: string; mode: HoldMode; position: number }[];
}

interface LockEventBase {
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
  /** An acquire ended without a lease: timeout, abort, store error or close. */
  failed: [LockEventBase & { waitMs: number; error: unknown }];
}

const ACQUIRE_OPTIONS = ['ttlMs', 'timeoutMs', 'signal', 'autoRenew'] as const;
const TRY_OPTIONS = ['ttlMs', 'autoRenew'] as const;
const WITH_LOCK_OPTIONS = ['ttlMs', 'timeoutMs', 'signal'] as const;
const BATON_OPTIONS = ['clock', 'ttlMs', 'driftFactor', 'minBackoffMs', 'maxBackoffMs', 'queuePollMs'] as const;

const OWNER_POOL = Buffer.alloc(16 * 256);
let ownerOffset = OWNER_POOL.length;

/** newOwnerId: 128 random bits from the CSPRNG as 32 hex characters (drawn from a pooled buffer, refilled every 256 ids). */
export function newOwnerId(): string {
  if (ownerOffset === OWNER_POOL.length) {
    randomFillSync(OWNER_POOL);
    ownerOffset = 0;
  }
  ownerOffset += 16;
  return OWNER_POOL.toString('hex', ownerOffset - 16, ownerOffset);
}

/**
 * Baton is the entry point: one per store. It makes lock handles, runs the acquire loop,
 * and keeps every lease it granted alive with one scheduler. Events report what happens to
 * locks; they never throw into baton (a throwing listener becomes a process warning).
 */
export class Baton<Token extends bigint | null = bigint> extends EventEmitter<BatonEvents> {
  readonly store: LockStore;
  readonly #clock: Clock;
  readonly #settings: Required<Omit<BatonOptions, 'clock'>> & { queueTtlMs: number };
  readonly #keepAlive: KeepAlive;
  readonly #leaseOwner: LeaseOwner;
  readonly #closeController = new AbortController();
  readonly #pending = new Set<Promise<unknown>>();
  #closing: Promise<void> | null = null;
  readonly #unwatch: (() => void) | null;

  constructor(store: LockStore, options?: BatonOptions) {
    super();
    const o = checkOptions<BatonOptions>(options, 'options', BATON_OPTIONS);
    if (!store || typeof store.grant !== 'function' || typeof store.release !== 'function') {
      throw new InvalidArgumentError('store', 'Expected `store` to be a baton store, such as createSqliteStore() or createMemoryStore()');
    }
    this.store = store;
    // Every pending wait listens on this signal: any number of them is normal, not a leak.
    setMaxListeners(0, this.#closeController.signal);
    this.#clock = o.clock ?? systemClock;
    const driftFactor = o.driftFactor ?? DEFAULTS.driftFactor;
    if (typeof driftFactor !== 'number' || !(driftFactor >= 0 && driftFactor <= 0.5)) {
      throw new InvalidArgumentError('driftFactor', `Expected \`driftFactor\` to be a number from 0 to 0.5, got ${String(driftFactor)}`);
    }
    const queuePollMs = checkDuration(o.queuePollMs ?? DEFAULTS.queuePollMs, 'queuePollMs');
    this.#settings = {
      ttlMs: checkDuration(o.ttlMs ?? DEFAULTS.ttlMs, 'ttlMs'),
      driftFactor,
      minBackoffMs: checkDuration(o.minBackoffMs ?? DEFAULTS.minBackoffMs, 'minBackoffMs'),
      maxBackoffMs: checkDuration(o.maxBackoffMs ?? DEFAULTS.maxBackoffMs, 'maxBackoffMs'),
      queuePollMs,
      queueTtlMs: queuePollMs * DEFAULTS.queueTtlPolls,
    };
    this.#keepAlive = new KeepAlive(this.#clock, store, {
      extended: (record, ttlMs) => this.#emit('extended', () => ({ ...describe(record), ttlMs })),
      lost: (record, error) =>
        this.#emit('lost', () => ({ ...describe(record), holdMs: this.#keepAlive.now() - record.acquiredAt, reason: error.reason, error })),
    }, driftFactor);
    this.#unwatch = store.watchLost?.((key, owner, reason) => {
      const record = this.#keepAlive.find(owner);
      if (record && record.kind === key.kind && record.name === key.name) this.#keepAlive.lose(record, reason ?? 'revoked');
    }) ?? null;
    this.#leaseOwner = {
      now: () => this.#keepAlive.now(),
      check: (record) => this.#keepAlive.check(record),
      extend: (record, ttlMs) => this.#alive(this.#extend(record, ttlMs)),
      release: (record) => this.#alive(this.#release(record)),
    };
  }

  /** closed is true once `close()` has been called. */
  get closed(): boolean {
    return this.#closing !== null;
  }

  /** heldCount: leases this instance holds right now. */
  get heldCount(): number {
    return this.#keepAlive.size;
  }

  /** mutex returns a handle on the mutual-exclusion lock `name`. Handles are cheap; make them freely. */
  mutex(name: string): Lock<Token> {
    this.#assertOpen();
    return new Lock<Token>(this, { kind: 'mutex', name: checkName(name) }, 'exclusive', 1);
  }

  /** semaphore returns a handle on the counting semaphore `name` with `permits` holders at once. */
  semaphore(name: string, options: SemaphoreOptions): Lock<Token> {
    this.#assertOpen();
    const key: ResourceKey = { kind: 'semaphore', name: checkName(name) };
    const o = checkOptions<SemaphoreOptions>(options, 'options', ['permits']);
    return new Lock<Token>(this, key, 'shared', checkPositiveInteger(o.permits, 'permits'));
  }

  /** election returns a handle on the leader election `name`: `campaign`, `proclaim`, `resign`, `observe`. */
  election(name: string): Election<Token> {
    this.#assertOpen();
    const key: ResourceKey = { kind: 'election', name: checkName(name) };
    return new Election<Token>({
      store: this.store,
      clock: this.#clock,
      pollMs: this.#settings.queuePollMs,
      closed: this.#closeController.signal,
      campaign: (k, value, options) => this.acquireLease(k, 'exclusive', 1, options, true, value) as Promise<Lease<Token>>,
    }, key);
  }

  /** withLock runs `fn` while holding the mutex `name`; shorthand for `mutex(name).withLock(fn, options)`. */
  withLock<T>(name: string, fn: (lease: Lease<Token>) => T | PromiseLike<T>, options?: WithLockOptions): Promise<T> {
    return this.#run(() => this.mutex(name).withLock(fn, options));
  }

  /** inspect reports the holders and waiters of a lock (a mutex unless `kind` says otherwise). */
  inspect(name: string, kind: LockKind = 'mutex'): Promise<LockInfo> {
    return this.#run(async () => {
      this.#assertOpen();
      return toLockInfo(await this.store.inspect({ kind, name: checkName(name) }));
    });
  }

  /** list reports every lock the store knows, optionally of one kind. */
  list(filter?: { kind?: LockKind }): Promise<LockInfo[]> {
    return this.#run(async () => {
      this.#assertOpen();
      return (await this.store.list(filter)).map(toLockInfo);
    });
  }

  /**
   * forceRelease frees a lock whoever holds it: an admin action for a holder that is gone.
   * The holders learn it at their next renewal (their signal aborts with reason `revoked`),
   * and the next grant's token is still higher. Returns how many holders were removed.
   */
  forceRelease(name: string, kind: LockKind = 'mutex'): Promise<number> {
    return this.#run(async () => {
      this.#assertOpen();
      return this.store.forceRelease({ kind, name: checkName(name) });
    });
  }

  /**
   * close ends the instance: pending acquires reject with `ClosedError`, held leases are
   * released (their signals abort with reason `closed`), then the store is closed.
   * Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closeController.abort(new ClosedError('This baton instance'));
      await Promise.allSettled([...this.#pending]);
      await Promise.allSettled(
        [...this.#keepAlive.records()].map(async (record) => {
          this.#keepAlive.untrack(record);
          record.state = 'releasing';
          if (record.inflight) await record.inflight.catch(() => undefined);
          await this.store.release(record, record.owner).catch(() => undefined);
          record.state = 'held';
          this.#keepAlive.lose(record, 'closed');
        }),
      );
      this.#unwatch?.();
      await this.store.close();
    })();
    return this.#closing;
  }

  /** @internal The acquire loop shared by every handle. */
  acquireLease(key: ResourceKey, mode: HoldMode, limit: number, options: AcquireOptions | undefined, wait: boolean, value?: string): Promise<Lease<Token> | null> {
    return this.#run(async () => {
      const o = checkOptions<AcquireOptions>(options, 'options', wait ? ACQUIRE_OPTIONS : TRY_OPTIONS);
      const ttlMs = checkDuration(o.ttlMs ?? this.#settings.ttlMs, 'ttlMs');
      const timeoutMs = wait ? checkTimeout(o.timeoutMs ?? DEFAULTS.timeoutMs) : 0;
      const userSignal = checkSignal(o.signal);
      const autoRenew = checkBoolean(o.autoRenew, 'autoRenew') ?? false;
      this.#assertOpen();
      userSignal?.throwIfAborted();
      const signal = userSignal ? AbortSignal.any([userSignal, this.#closeController.signal]) : this.#closeController.signal;

      const owner = newOwnerId();
      const startedAt = this.#clock.now();
      const deadline = startedAt + timeoutMs;
      const base = { name: key.name, kind: key.kind, owner };
      let enqueued = false;
      let contended = false;
      /** The lease of a grant that the store started no earlier than `triedAt`, enforcing `enforcedMs` of its TTL if less. */
      const granted = async (token: bigint, triedAt: number, enforcedMs: number | undefined): Promise<Lease<Token>> => {
        enqueued = false;
        const record = this.#newRecord(key, owner, token, ttlMs, enforcedMs, triedAt, autoRenew);
        if (signal.aborted) {
          await this.#release(record).catch(() => undefined);
          throw signal.reason;
        }
        this.#emit('acquired', () => ({ ...base, token: record.token, waitMs: this.#clock.now() - startedAt, contended }));
        return new Lease<Token>(record, this.#leaseOwner);
      };
      try {
        for (let attempt = 0; ; attempt++) {
          const triedAt = this.#clock.now();
          const mayWait = wait && triedAt < deadline;
          const result: GrantResult = await this.store.grant({
            key, owner, mode, limit, ttlMs, enqueue: mayWait, queueTtlMs: this.#settings.queueTtlMs, ...(value === undefined ? {} : { value }),
          });
          if (result.granted) return await granted(result.token, triedAt, result.ttlMs);
          if (mayWait) enqueued = true;
          if (!contended) {
            contended = true;
            this.#emit('contended', () => ({ ...base, position: result.position }));
          }
          if (!wait) return null;
          const now = this.#clock.now();
          if (now >= deadline) throw new LockTimeoutError(key.name, timeoutMs);
          let pause = this.store.wait ? this.#settings.queuePollMs : backoffMs(attempt, this.#settings.minBackoffMs, this.#settings.maxBackoffMs);
          if (result.retryAfterMs !== undefined) pause = Math.min(pause, result.retryAfterMs + 1);
          pause = Math.max(1, Math.min(pause, deadline - now));
          if (this.store.wait) {
            // A hand-off's TTL runs from the store's receipt of this attempt, our last request.
            const handOff: HandOff | void = await this.store.wait(key, owner, pause, signal);
            // One that ran out before this process could look (a blocked event loop) is asked for again.
            const grantedTtlMs = handOff ? Math.min(handOff.ttlMs, ttlMs) : 0;
            if (handOff && this.#clock.now() < this.#keepAlive.deadlineFor(triedAt, grantedTtlMs)) return await granted(handOff.token, triedAt, grantedTtlMs);
          } else await sleep(this.#clock, pause, signal);
        }
      } catch (error) {
        if (enqueued) await this.store.release(key, owner).catch(() => undefined);
        this.#emit('failed', () => ({ ...base, waitMs: this.#clock.now() - startedAt, error }));
        throw error;
      }
    });
  }

  /**
   * A granted lease's state, tracked by the keep-alive from now on. The store may enforce
   * less than `ttlMs` (`enforcedMs`: an etcd session's TTL, a Redis hand-off's): the
   * keep-alive then renews the store's TTL up to the lease's own end.
   */
  #newRecord(key: ResourceKey, owner: string, token: bigint, ttlMs: number, enforcedMs: number | undefined, startedAt: number, autoRenew: boolean): LeaseRecord {
    const record: LeaseRecord = {
      kind: key.kind,
      name: key.name,
      owner,
      token: this.store.guarantees.fencing ? token : null,
      ttlMs,
      enforcedMs: ttlMs,
      until: 0,
      deadline: 0,
      renewAt: 0,
      autoRenew,
      state: 'held',
      lostError: null,
      controller: null,
      inflight: null,
      lastError: undefined,
      acquiredAt: this.#keepAlive.stamp(startedAt),
      heapIndex: -1,
      due: 0,
    };
    this.#keepAlive.plan(record, startedAt, ttlMs, enforcedMs);
    this.#keepAlive.track(record);
    return record;
  }

  async #extend(record: LeaseRecord, ttlMs: number): Promise<void> {
    checkDuration(ttlMs, 'ttlMs');
    if (record.state === 'released' || record.state === 'releasing') throw releasedError(record);
    if (!this.#keepAlive.check(record)) throw record.lostError!;
    await this.#keepAlive.extend(record, ttlMs);
    if (record.state !== 'held') throw record.lostError ?? releasedError(record);
  }

  async #release(record: LeaseRecord): Promise<void> {
    if (record.state === 'released' || record.state === 'releasing') throw releasedError(record);
    if (!this.#keepAlive.check(record)) {
      // Lost: remove our own entry if the store still has it (it cannot touch anyone else's), then report.
      await this.store.release(record, record.owner).catch(() => undefined);
      throw record.lostError!;
    }
    record.state = 'releasing';
    this.#keepAlive.untrack(record);
    if (record.inflight) await record.inflight.catch(() => undefined);
    let removed: boolean;
    try {
      removed = await this.store.release(record, record.owner);
    } catch (error) {
      // The store could not be reached: the entry stays until its TTL runs out. Keep the lease
      // lost from the caller's view (it can no longer be trusted) and report the failure.
      record.state = 'held';
      this.#keepAlive.lose(record, 'expired', error);
      throw error;
    }
    if (!removed) {
      record.state = 'held';
      this.#keepAlive.lose(record, this.#keepAlive.now() >= record.deadline ? 'expired' : 'revoked');
      throw record.lostError!;
    }
    record.state = 'released';
    this.#emit('released', () => ({ ...describe(record), holdMs: this.#keepAlive.now() - record.acquiredAt }));
  }

  #assertOpen(): void {
    if (this.#closing) throw new ClosedError('This baton instance');
  }

  /** Tracks an operation so that `close()` waits for it. */
  #run<T>(operation: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      promise = operation();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pending.add(promise);
    const forget = (): void => void this.#pending.delete(promise);
    promise.then(forget, forget);
    return this.#alive(promise);
  }

  /**
   * alive keeps the process alive until `promise`, which a caller awaits, settles, as every
   * awaited wait does: a store's driver may not (gRPC leaves a connection it is still setting
   * up unref'd, so an acquire or a release waiting for etcd to be reached again ended the
   * process with exit code 13, its top-level await unsettled).
   */
  #alive<T>(promise: Promise<T>): Promise<T> {
    holdProcess();
    promise.then(letProcessGo, letProcessGo);
    return promise;
  }

  /** Emits `event` with the payload `make` builds, built only when someone listens. */
  #emit<E extends keyof BatonEvents>(event: E, make: () => BatonEvents[E][0]): void {
    if (this.listenerCount(event) === 0) return;
    try {
      (this.emit as (event: E, payload: BatonEvents[E][0]) => boolean)(event, make());
    } catch (error) {
      process.emitWarning(`A listener of baton's "${event}" event threw: ${error instanceof Error ? error.message : String(error)}`, 'BatonWarning');
    }
  }
}

/**
 * One timer, shared by every instance, keeps the process alive while any awaited operation
 * is pending: ref'd from the first until the last settles. Toggling a timer's ref costs far
 * less than making a timer per operation, which showed in the uncontended path's profile.
 */
let pendingOperations = 0;
let processHold: NodeJS.Timeout | null = null;

function holdProcess(): void {
  if (pendingOperations++ > 0) return;
  processHold ??= setInterval(() => undefined, MAX_TIMER_MS);
  processHold.ref();
}

function letProcessGo(): void {
  if (--pendingOperations === 0) processHold!.unref();
}

function describe(record: LeaseRecord): LockEventBase & { token: bigint | null } {
  return { name: record.name, kind: record.kind, owner: record.owner, token: record.token };
}

function toLockInfo(state: ResourceState): LockInfo {
  const now = Date.now();
  return {
    name: state.key.name,
    kind: state.key.kind,
    fence: state.fence,
    holders: state.holders.map((h) => ({ ...h, expiresAt: now + h.expiresInMs })),
    waiters: state.waiters.map((w) => ({ owner: w.owner, mode: w.mode, position: w.position })),
  };
}

/**
 * Lock is a handle on one lock: a mutex (one holder) or a semaphore (`permits` holders).
 * It holds no state of its own; every call goes through its baton instance.
 */
export class Lock<Token extends bigint | null = bigint> {
  readonly #baton: Baton<Token>;
  readonly #key: ResourceKey;
  readonly #mode: HoldMode;
  /** permits: holders allowed at once (1 for a mutex). */
  readonly permits: number;

  /** @internal */
  constructor(baton: Baton<Token>, key: ResourceKey, mode: HoldMode, permits: number) {
    this.#baton = baton;
    this.#key = key;
    this.#mode = mode;
    this.permits = permits;
  }

  get name(): string {
    return this.#key.name;
  }

  get kind(): LockKind {
    return this.#key.kind;
  }

  /**
   * acquire waits until the lock is granted and resolves with its lease. Rejects with
   * `LockTimeoutError` after `timeoutMs`, with `signal.reason` when aborted, with
   * `ClosedError` when the instance closes. Waiters are served in arrival order.
   */
  acquire(options?: AcquireOptions): Promise<Lease<Token>> {
    return this.#baton.acquireLease(this.#key, this.#mode, this.permits, options, true) as Promise<Lease<Token>>;
  }

  /** tryAcquire asks once: a lease, or `null` when the lock is busy. Contention is a value, not an error. */
  tryAcquire(options?: TryAcquireOptions): Promise<Lease<Token> | null> {
    return this.#baton.acquireLease(this.#key, this.#mode, this.permits, options, false);
  }

  /**
   * withLock acquires, runs `fn(lease)` while renewing the lease every TTL/3, then stops the
   * renewal, waits for one in flight and releases. It resolves with `fn`'s result; rejects
   * with `fn`'s error, or with the `LeaseLostError` if the lease was lost while `fn` ran
   * (even if `fn` succeeded, since its work was not protected to the end). Pass
   * `lease.signal` to the work inside `fn` so that it stops when the lease is lost.
   */
  async withLock<T>(fn: (lease: Lease<Token>) => T | PromiseLike<T>, options?: WithLockOptions): Promise<T> {
    checkFunction(fn, 'fn');
    const o = checkOptions<WithLockOptions>(options, 'options', WITH_LOCK_OPTIONS);
    const lease = await this.acquire({ ...o, autoRenew: true });
    let result: T;
    try {
      result = await fn(lease);
    } catch (error) {
      // fn's error is the one to report; a failed release was already reported as a `lost` event.
      await lease.release().catch(() => undefined);
      throw error;
    }
    await lease.release();
    return result;
  }

  /** inspect reports this lock's holders and waiters. */
  inspect(): Promise<LockInfo> {
    return this.#baton.inspect(this.#key.name, this.#key.kind);
  }
}

/** createBaton makes a baton instance over a store: `createBaton(createSqliteStore())`. */
export function createBaton<S extends LockStore>(store: S, options?: BatonOptions): Baton<TokenOf<S>> {
  return new Baton<TokenOf<S>>(store, options);
}
