import { EventEmitter, setMaxListeners } from 'node:events';
import { hostname } from 'node:os';
import { ClosedError, InvalidArgumentError, UnsupportedError } from '../errors.js';
import { CLOSE_TIMEOUT_MS, LOCK_KINDS, type HoldMode, type LockKind, type LockStore, type ResourceKey, type ResourceState, type StoreCall } from '../store.js';
import { acquire, type AcquireHost } from './acquire.js';
import { bounded, NEVER, sweepNow, type CallObserver } from './call.js';
import { monotonicNow, systemClock, type Clock } from './clock.js';
import { Election } from './election.js';
import { KeepAlive, type LeaseRecord } from './keep-alive.js';
import { Lease, recordOf, releasedError, type LeaseOwner } from './lease.js';
import type { RwLockHost } from './rwlock.js';
import { lockAll, type MultiLease, type MultiLockHost } from './multi-lock.js';
import { attachLogger, checkLogger } from './logger.js';
import type { LockHost } from './lock.js';
import { Mutex } from './mutex.js';
import {
  DEFAULTS,
  type AcquireOptions,
  type BatonEvents,
  type BatonOptions,
  type CallOptions,
  type HolderDescription,
  type LockEventBase,
  type LockInfo,
  type SemaphoreOptions,
  type TokenOf,
  type TryAcquireOptions,
  type WithLockOptions,
} from './options.js';
import { newOwnerId } from './owner.js';
import { keepAliveWhile } from './process-hold.js';
import { RwLock } from './rwlock.js';
import { Semaphore } from './semaphore.js';
import { checkBoolean, checkDuration, checkName, checkOptions, checkSignal, checkTimeout } from './validate.js';
import { WaitLines } from './wait-line.js';

const ACQUIRE_OPTIONS = ['ttlMs', 'timeoutMs', 'signal', 'autoRenew', 'label'] as const;
const TRY_OPTIONS = ['ttlMs', 'autoRenew', 'signal', 'label'] as const;
const CALL_OPTIONS = ['signal', 'timeoutMs'] as const;
const BATON_OPTIONS = ['clock', 'ttlMs', 'driftFactor', 'minBackoffMs', 'maxBackoffMs', 'queuePollMs', 'storeTimeoutMs', 'holder', 'logger', 'slowCallMs'] as const;

/** Of `close()`'s bound, the share left for the store's own close after the releases. */
const STORE_CLOSE_SHARE = 0.3;

type Settings = Required<Omit<BatonOptions, 'clock' | 'holder' | 'logger' | 'slowCallMs'>> & { queueTtlMs: number };

/**
 * Baton is the entry point: one per store. It makes lock handles, runs the acquire loop,
 * and keeps every lease it granted alive with one scheduler. Every store call it makes is
 * bounded (see call.ts), so its promises about time hold while a store stalls. Events report
 * what happens to locks; they never throw into baton (a throwing listener becomes a process
 * warning).
 */
export class Baton<Token extends bigint | null = bigint> extends EventEmitter<BatonEvents> implements RwLockHost<Token>, MultiLockHost<Token> {
  readonly store: LockStore;
  readonly #clock: Clock;
  readonly #settings: Settings;
  readonly #keepAlive: KeepAlive;
  readonly #leaseOwner: LeaseOwner;
  readonly #acquireHost: AcquireHost;
  /** This process's waiters in line per resource, on a store that cannot notify. */
  readonly #lines: WaitLines | null;
  /** Aborts every pending acquire and store call when `close()` starts. */
  readonly #closeController = new AbortController();
  /** Aborts the releases `close()` makes (and background clean-ups) when their share of its bound is spent. */
  readonly #drainController = new AbortController();
  /** Operations `close()` waits for (within its bound): acquires, inspects, ... */
  readonly #pending = new Set<Promise<unknown>>();
  /** Clean-ups in the background (a queued entry, a late grant): `close()` lets them finish within its bound. */
  readonly #background = new Set<Promise<unknown>>();
  #closing: Promise<void> | null = null;
  readonly #unwatch: (() => void) | null;
  /** Who holds this instance's leases (null: not stored), and the stored text of it without a label. */
  readonly #holder: HolderDescription | null;
  readonly #holderText: string | undefined;
  /** Times this instance's store calls while someone listens to `call`. */
  readonly #observer: CallObserver;

  constructor(store: LockStore, options?: BatonOptions) {
    super();
    const o = checkOptions<BatonOptions>(options, 'options', BATON_OPTIONS);
    if (!store || typeof store.grant !== 'function' || typeof store.release !== 'function') {
      throw new InvalidArgumentError('store', 'Expected `store` to be a baton store, such as createSqliteStore() or createMemoryStore()');
    }
    this.store = store;
    this.#holder = checkHolder(o.holder);
    this.#holderText = this.#holder ? holderText(this.#holder) : undefined;
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
      storeTimeoutMs: checkDuration(o.storeTimeoutMs ?? store.defaultTimeoutMs ?? 5000, 'storeTimeoutMs'),
    };
    const logger = checkLogger(o.logger);
    const slowCallMs = checkDuration(o.slowCallMs ?? DEFAULTS.slowCallMs, 'slowCallMs');
    const events = this as EventEmitter<BatonEvents>;
    this.#observer = {
      get active() {
        return events.listenerCount('call') > 0;
      },
      called: (verb, durationMs, error) => this.#emit('call', () => (error === undefined ? { store: store.name, verb, durationMs } : { store: store.name, verb, durationMs, error })),
    };
    this.#keepAlive = new KeepAlive(this.#clock, store, {
      extended: (record, ttlMs) => this.#emit('extended', () => ({ name: record.name, kind: record.kind, owner: record.owner, token: record.token, ttlMs })),
      lost: (record, error) =>
        this.#emit('lost', () => ({ name: record.name, kind: record.kind, owner: record.owner, token: record.token, holdMs: this.#keepAlive.now() - record.acquiredAt, reason: error.reason, error })),
      forget: (record) => void this.#forget(record, record.owner),
      renewFailed: (record, error) => this.#emit('renewFailed', () => ({ name: record.name, kind: record.kind, owner: record.owner, token: record.token, remainingMs: Math.max(0, Math.round(this.#keepAlive.remainingMs(record))), error })),
    }, driftFactor, { storeTimeoutMs: this.#settings.storeTimeoutMs, signal: this.#closeController.signal, observer: this.#observer });
    this.#unwatch = store.watchLost?.((key, owner, reason) => {
      const record = this.#keepAlive.find(owner);
      if (record && record.kind === key.kind && record.name === key.name) this.#keepAlive.lose(record, reason ?? 'revoked');
    }) ?? null;
    this.#leaseOwner = {
      remainingMs: (record) => this.#keepAlive.remainingMs(record),
      check: (record) => this.#keepAlive.check(record),
      extend: (record, ttlMs, options) => keepAliveWhile(this.#extend(record, ttlMs, options)),
      release: (record, options) => keepAliveWhile(this.#release(record, options)),
    };
    this.#lines = store.wait ? null : new WaitLines(this.#clock);
    this.#acquireHost = {
      store,
      clock: this.#clock,
      settings: this.#settings,
      deadlineFor: (startedAt, ttlMs) => this.#keepAlive.deadlineFor(startedAt, ttlMs),
      forget: (key, owner) => this.#forget(key, owner),
      contended: (key, owner, position) => this.#emit('contended', () => ({ name: key.name, kind: key.kind, owner, position })),
      lines: this.#lines,
      observer: this.#observer,
    };
    if (logger) attachLogger(this, logger, slowCallMs);
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
  mutex(name: string): Mutex<Token> {
    this.#assertOpen();
    return new Mutex<Token>(this, name);
  }

  /** semaphore returns a handle on the counting semaphore `name` with `permits` holders at once. */
  semaphore(name: string, options: SemaphoreOptions): Semaphore<Token> {
    this.#assertOpen();
    return new Semaphore<Token>(this, name, options);
  }

  /** rwlock returns a handle on the read-write lock `name`: `read`, `write`, `tryRead`, `tryWrite`, `downgrade`. One handle per task that takes it. */
  rwlock(name: string): RwLock<Token> {
    this.#assertOpen();
    return new RwLock<Token>(this, name);
  }

  /** election returns a handle on the leader election `name`: `campaign`, `proclaim`, `resign`, `observe`. */
  election(name: string): Election<Token> {
    this.#assertOpen();
    return new Election<Token>({
      store: this.store,
      clock: this.#clock,
      pollMs: this.#settings.queuePollMs,
      closed: this.#closeController.signal,
      campaign: (k, value, options) => this.acquireLease(k, 'exclusive', 1, options, true, value) as Promise<Lease<Token>>,
      call: (options, signal) => this.#call(options, signal),
      run: (operation) => this.#run(operation),
      observer: this.#observer,
    }, name);
  }

  /**
   * lockAll takes the mutexes `names` as one `MultiLease`, in one canonical order (the bytes
   * of each name's UTF-8 form, the order of the keys the store keeps them under), so that
   * callers asking for overlapping sets in any order never deadlock. All or nothing: on a
   * timeout (`timeoutMs` bounds the whole), an abort, a store error or `close()`, the ones
   * already taken are released in reverse order before it rejects.
   */
  lockAll(names: readonly string[], options?: AcquireOptions): Promise<MultiLease<Token>> {
    return this.#run(() => lockAll<Token>(this, names, options, true)) as Promise<MultiLease<Token>>;
  }

  /** tryLockAll tries each of `names` once, in canonical order: a `MultiLease`, or `null` (with nothing left held) when any is busy. */
  tryLockAll(names: readonly string[], options?: TryAcquireOptions): Promise<MultiLease<Token> | null> {
    return this.#run(() => lockAll<Token>(this, names, options, false));
  }

  /** @internal One part of a multi-lock: the mutex `name`. */
  acquireMutex(name: string, options: AcquireOptions | TryAcquireOptions, wait: boolean): Promise<Lease<Token> | null> {
    return this.acquireLease({ kind: 'mutex', name }, 'exclusive', 1, options, wait);
  }

  /**
   * withLock runs `fn` while holding the mutex `name`: exactly `mutex(name).withLock(fn,
   * options)`. `close()` does not wait for `fn`; it releases the lease, and `lease.signal`
   * aborts with reason `closed`, so pass that signal to the work inside `fn`.
   */
  withLock<T>(name: string, fn: (lease: Lease<Token>) => T | PromiseLike<T>, options?: WithLockOptions): Promise<T> {
    try {
      return this.mutex(name).withLock(fn, options);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /** inspect reports the holders and waiters of a lock (a mutex unless `kind` says otherwise). */
  inspect(name: string, kind: LockKind = 'mutex', options?: CallOptions): Promise<LockInfo<Token>> {
    return this.#run(async () => {
      const key: ResourceKey = { kind, name: checkName(name) };
      const call = this.#call(options);
      return toLockInfo<Token>(await bounded(call, (c) => this.store.inspect(key, c), { store: this.store, verb: 'inspect', observer: this.#observer }), this.store.guarantees.fencing);
    });
  }

  /** list reports every lock the store knows, optionally of one kind. */
  list(filter?: { kind?: LockKind }, options?: CallOptions): Promise<LockInfo<Token>[]> {
    return this.#run(async () => {
      const call = this.#call(options);
      return (await bounded(call, (c) => this.store.list(filter, c), { store: this.store, verb: 'list', observer: this.#observer })).map((state) => toLockInfo<Token>(state, this.store.guarantees.fencing));
    });
  }

  /**
   * prune removes what the store keeps for lock names that nobody holds or waits for (every
   * name ever used stays in the store otherwise: a row, a hash), optionally of one kind, and
   * resolves with how many it removed. Tokens never go back: a name used again after it was
   * pruned issues tokens above every token it issued before (see docs/fencing.md).
   */
  prune(filter?: { kind?: LockKind }, options?: CallOptions): Promise<number> {
    return this.#run(async () => {
      const f = checkOptions<{ kind?: LockKind }>(filter, 'filter', ['kind']);
      if (f.kind !== undefined && !LOCK_KINDS.includes(f.kind)) {
        throw new InvalidArgumentError('kind', `Expected \`kind\` to be one of ${LOCK_KINDS.join(', ')}, got ${JSON.stringify(f.kind)}`);
      }
      const call = this.#call(options);
      return bounded(call, (c) => this.store.prune(f.kind ? { kind: f.kind } : undefined, c), { store: this.store, verb: 'prune', observer: this.#observer });
    });
  }

  /**
   * forceRelease frees a lock whoever holds it: an admin action for a holder that is gone.
   * The holders learn it at their next renewal (their signal aborts with reason `revoked`),
   * and the next grant's token is still higher. Returns how many holders were removed.
   */
  forceRelease(name: string, kind: LockKind = 'mutex', options?: CallOptions): Promise<number> {
    return this.#run(async () => {
      const key: ResourceKey = { kind, name: checkName(name) };
      const call = this.#call(options);
      return bounded(call, (c) => this.store.forceRelease(key, c), { store: this.store, verb: 'forceRelease', observer: this.#observer });
    });
  }

  /**
   * close ends the instance within `CLOSE_TIMEOUT_MS` (1 s), stalled store or not: pending
   * acquires and store calls reject with `ClosedError` at once; held leases are released
   * (their signals abort with reason `closed`), each given up if the store does not answer
   * in time, when its entry stays until its TTL runs out; then the store is closed, and told
   * to drop its connections if it has not closed by the bound. Calling it again returns the
   * same promise.
   */
  close(): Promise<void> {
    this.#closing ??= keepAliveWhile(this.#close());
    return this.#closing;
  }

  async #close(): Promise<void> {
    const startedAt = monotonicNow();
    const releasesBy = startedAt + CLOSE_TIMEOUT_MS * (1 - STORE_CLOSE_SHARE);
    const closedBy = startedAt + CLOSE_TIMEOUT_MS - 20;
    this.#closeController.abort(new ClosedError('This baton instance'));
    sweepNow();
    const drain = this.#drainController;
    const drainTimer = setTimeout(() => drain.abort(new ClosedError('This baton instance')), releasesBy - monotonicNow());
    drainTimer.unref();
    const releaseCall: StoreCall = { signal: drain.signal, deadline: releasesBy };
    try {
      await settledBy([...this.#pending], releaseCall);
      await Promise.allSettled(
        [...this.#keepAlive.records()].map(async (record) => {
          this.#keepAlive.untrack(record);
          record.state = 'releasing';
          if (record.inflight) await settledBy([record.inflight], releaseCall);
          await bounded(releaseCall, (c) => this.store.release(record, record.owner, c), { store: this.store, verb: 'release', observer: this.#observer }).catch(() => undefined);
          record.state = 'held';
          this.#keepAlive.lose(record, 'closed');
        }),
      );
      await settledBy([...this.#background], releaseCall);
    } finally {
      clearTimeout(drainTimer);
      drain.abort(new ClosedError('This baton instance'));
    }
    this.#unwatch?.();
    const storeClose = new AbortController();
    try {
      await bounded({ signal: NEVER, deadline: closedBy }, () => this.store.close({ signal: storeClose.signal, deadline: closedBy }), { store: this.store, verb: 'close' });
    } catch {
      // Past the bound: the store drops its connections now, rather than wait for its server.
    } finally {
      storeClose.abort(new ClosedError('This baton instance'));
    }
  }

  /** @internal The acquire shared by every handle: checks the options, runs the loop, and makes the lease. */
  acquireLease(key: ResourceKey, mode: HoldMode, limit: number, options: AcquireOptions | TryAcquireOptions | undefined, wait: boolean, value?: string): Promise<Lease<Token> | null> {
    return this.#run(async () => {
      const o = checkOptions<AcquireOptions>(options, 'options', wait ? ACQUIRE_OPTIONS : TRY_OPTIONS);
      const ttlMs = checkDuration(o.ttlMs ?? this.#settings.ttlMs, 'ttlMs');
      const timeoutMs = wait ? checkTimeout(o.timeoutMs ?? DEFAULTS.timeoutMs) : 0;
      const userSignal = checkSignal(o.signal);
      const autoRenew = checkBoolean(o.autoRenew, 'autoRenew') ?? false;
      const label = checkLabel(o.label);
      this.#assertOpen();
      userSignal?.throwIfAborted();
      const signal = userSignal ? AbortSignal.any([userSignal, this.#closeController.signal]) : this.#closeController.signal;
      const owner = newOwnerId();
      const startedAt = this.#clock.now();
      let granted;
      try {
        granted = await acquire(this.#acquireHost, {
          key, owner, mode, limit, ttlMs, wait, timeoutMs, deadline: startedAt + timeoutMs, signal,
          ...(value !== undefined ? { value } : this.#describe(key, label)),
        });
      } catch (error) {
        this.#emit('failed', () => ({ name: key.name, kind: key.kind, owner, waitMs: this.#clock.now() - startedAt, aborted: signal.aborted, error }));
        throw error;
      }
      if (granted === null) {
        this.#emit('busy', () => ({ name: key.name, kind: key.kind, owner, waitMs: this.#clock.now() - startedAt }));
        return null;
      }
      const record = this.#newRecord(key, owner, granted.token, ttlMs, granted.enforcedTtlMs, granted.triedAt, autoRenew);
      if (signal.aborted) {
        // Aborted as the grant came back: give it back rather than hand out a lease nobody waits for.
        this.#keepAlive.untrack(record);
        record.state = 'released';
        void this.#forget(key, owner);
        this.#emit('failed', () => ({ name: key.name, kind: key.kind, owner, waitMs: this.#clock.now() - startedAt, aborted: true, error: signal.reason }));
        throw signal.reason;
      }
      this.#emit('acquired', () => ({ name: key.name, kind: key.kind, owner, token: record.token, waitMs: this.#clock.now() - startedAt, contended: granted.contended }));
      return new Lease<Token>(record, this.#leaseOwner);
    });
  }

  /** @internal A read-write lock's downgrade: the store turns the lease's entry shared where it stands. */
  downgradeLease(lease: Lease<Token>, options?: CallOptions): Promise<void> {
    return this.#run(async () => {
      const record = recordOf(lease);
      if (!record) throw new InvalidArgumentError('lease', 'Expected `lease` to be a lease granted by baton');
      const o = checkOptions<CallOptions>(options, 'options', CALL_OPTIONS);
      const call = this.#call(o);
      if (record.state === 'released' || record.state === 'releasing') throw releasedError(record);
      if (!this.#keepAlive.check(record)) throw record.lostError!;
      if (!this.store.downgrade || !this.store.guarantees.mixedModes) {
        throw new UnsupportedError(this.store.name, 'downgrade a write lease', 'it cannot turn an exclusive entry into a shared one');
      }
      const downgrade = this.store.downgrade.bind(this.store);
      if (!(await bounded(call, (c) => downgrade(record, record.owner, c), { store: this.store, verb: 'downgrade' }))) {
        this.#keepAlive.lose(record, this.#keepAlive.now() >= record.deadline ? 'expired' : 'revoked');
        throw record.lostError!;
      }
    });
  }

  /** The value stored with a grant of `key` that has none of its own (an election's is its proclamation): who holds it. */
  #describe(key: ResourceKey, label: string | undefined): { value?: string } {
    if (key.kind === 'election' || !this.#holder) return {};
    if (label === undefined) return this.#holderText === undefined ? {} : { value: this.#holderText };
    return { value: holderText({ ...this.#holder, label }) };
  }

  /**
   * A granted lease's state, tracked by the keep-alive from now on. The store may enforce
   * less than `ttlMs` (`enforcedMs`: a Redis hand-off's): the keep-alive then renews the
   * store's TTL up to the lease's own end.
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

  async #extend(record: LeaseRecord, ttlMs: number, options: CallOptions | undefined): Promise<void> {
    checkDuration(ttlMs, 'ttlMs');
    const o = checkOptions<CallOptions>(options, 'options', CALL_OPTIONS);
    if (record.state === 'released' || record.state === 'releasing') throw releasedError(record);
    const call = this.#call(o);
    if (!this.#keepAlive.check(record)) throw record.lostError!;
    await this.#keepAlive.extend(record, ttlMs, false, this.#callBound(o), call.signal);
    if (record.state !== 'held') throw record.lostError ?? releasedError(record);
  }

  async #release(record: LeaseRecord, options: CallOptions | undefined): Promise<void> {
    const o = checkOptions<CallOptions>(options, 'options', CALL_OPTIONS);
    // Checked before anything changes: a bad option leaves the lease as it was.
    const call = this.#call(o);
    if (record.state === 'released' || record.state === 'releasing') throw releasedError(record);
    if (!this.#keepAlive.check(record)) {
      // Lost: remove our own entry if the store still has it (it cannot touch anyone else's), in the background.
      void this.#forget(record, record.owner);
      throw record.lostError!;
    }
    record.state = 'releasing';
    this.#keepAlive.untrack(record);
    if (record.inflight) await settledBy([record.inflight], call);
    let removed: boolean;
    try {
      removed = await bounded(call, (c) => this.store.release(record, record.owner, c), { store: this.store, verb: 'release', observer: this.#observer });
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
    this.#lines?.nudge(record);
    this.#emit('released', () => ({ name: record.name, kind: record.kind, owner: record.owner, token: record.token, holdMs: this.#keepAlive.now() - record.acquiredAt }));
  }

  /**
   * Removes `owner`'s entry of `key` in the background: a queued place or a grant that an
   * acquire gave up, a lost lease's entry. Bounded by the store timeout, and by `close()`.
   */
  #forget(key: ResourceKey, owner: string): Promise<void> {
    const resource: ResourceKey = { kind: key.kind, name: key.name };
    const call: StoreCall = { signal: this.#drainController.signal, deadline: monotonicNow() + this.#settings.storeTimeoutMs };
    const task = bounded(call, (c) => this.store.release(resource, owner, c), { store: this.store, verb: 'release', observer: this.#observer }).then(() => undefined, () => undefined);
    this.#background.add(task);
    void task.then(() => this.#background.delete(task));
    return task;
  }

  /** A call bounded by `options.timeoutMs` (default: the store timeout), its signal, and the instance's close. */
  #call(options?: CallOptions, signal?: AbortSignal): StoreCall {
    const o = options ?? {};
    const user = checkSignal(o.signal) ?? signal;
    return {
      signal: user ? AbortSignal.any([user, this.#closeController.signal]) : this.#closeController.signal,
      deadline: monotonicNow() + this.#callBound(o),
    };
  }

  #callBound(o: CallOptions): number {
    return o.timeoutMs === undefined ? this.#settings.storeTimeoutMs : checkDuration(o.timeoutMs, 'timeoutMs');
  }

  #assertOpen(): void {
    if (this.#closing) throw new ClosedError('This baton instance');
  }

  /** Runs an operation of the public API: checked open, tracked so that `close()` waits for it (within its bound), keeping the process alive. */
  #run<T>(operation: () => Promise<T>): Promise<T> {
    let promise: Promise<T>;
    try {
      this.#assertOpen();
      promise = operation();
    } catch (error) {
      return Promise.reject(error);
    }
    this.#pending.add(promise);
    const forget = (): void => void this.#pending.delete(promise);
    promise.then(forget, forget);
    return keepAliveWhile(promise);
  }

  /**
   * Emits `event` with the payload `make` builds, built only when someone listens. Payloads
   * are written out field by field: an object spread there cost microseconds per event.
   */
  #emit<E extends keyof BatonEvents>(event: E, make: () => BatonEvents[E][0]): void {
    if (this.listenerCount(event) === 0) return;
    try {
      (this.emit as (event: E, payload: BatonEvents[E][0]) => boolean)(event, make());
    } catch (error) {
      process.emitWarning(`A listener of baton's "${event}" event threw: ${error instanceof Error ? error.message : String(error)}`, 'BatonWarning');
    }
  }
}

/** settledBy resolves when every promise has settled, or when `call` ends (its deadline or signal), whichever is first. */
function settledBy(promises: readonly Promise<unknown>[], call: StoreCall): Promise<void> {
  if (promises.length === 0) return Promise.resolve();
  return bounded(call, () => Promise.allSettled(promises), { store: 'baton', verb: 'close' }).then(() => undefined, () => undefined);
}

/** toLockInfo: a store's report as users see it; without fencing, the numbers a store reports in place of tokens are left out (null). */
function toLockInfo<Token extends bigint | null>(state: ResourceState, fencing: boolean): LockInfo<Token> {
  const now = Date.now();
  const token = (value: bigint): Token => (fencing ? value : null) as Token;
  return {
    name: state.key.name,
    kind: state.key.kind,
    fence: token(state.fence),
    holders: state.holders.map((h) => {
      const { value, foreign, ...rest } = h;
      const holder = state.key.kind === 'election' ? undefined : parseHolder(value);
      return {
        ...rest,
        token: token(h.token),
        expiresAt: now + h.expiresInMs,
        ...(value === undefined || holder ? {} : { value }),
        ...(holder ? { holder } : {}),
        ...(foreign ? { foreign: true as const } : {}),
      };
    }),
    waiters: state.waiters.map((w) => ({ owner: w.owner, mode: w.mode, position: w.position })),
  };
}

/** The longest stored description of a holder, in characters. */
const HOLDER_MAX = 1000;

/** checkHolder: the instance's holder description, `BatonOptions.holder` over the default (host and pid); null for `false`. */
function checkHolder(given: unknown): HolderDescription | null {
  if (given === false) return null;
  const o = checkOptions<HolderDescription>(given, 'holder', ['host', 'pid', 'command', 'label']);
  const holder: HolderDescription = { host: hostname(), pid: process.pid, ...o };
  for (const field of ['host', 'command', 'label'] as const) {
    if (holder[field] !== undefined && typeof holder[field] !== 'string') {
      throw new InvalidArgumentError(`holder.${field}`, `Expected \`holder.${field}\` to be a string, got ${typeof holder[field]}`);
    }
  }
  if (holder.pid !== undefined && !(Number.isSafeInteger(holder.pid) && holder.pid >= 0)) {
    throw new InvalidArgumentError('holder.pid', `Expected \`holder.pid\` to be a process id, got ${String(holder.pid)}`);
  }
  if (holderText(holder).length > HOLDER_MAX) throw new InvalidArgumentError('holder', `Expected \`holder\` to describe the holder in at most ${HOLDER_MAX} characters`);
  return holder;
}

/** checkLabel: a lease's label, a string of at most 200 characters. */
function checkLabel(label: unknown): string | undefined {
  if (label === undefined) return undefined;
  if (typeof label !== 'string' || label.length > 200) {
    throw new InvalidArgumentError('label', `Expected \`label\` to be a string of at most 200 characters, got ${typeof label === 'string' ? `${label.length} characters` : typeof label}`);
  }
  return label;
}

/** holderText: a holder description as stored with a grant, a JSON object with the fields given. */
function holderText(holder: HolderDescription): string {
  return JSON.stringify({ host: holder.host, pid: holder.pid, command: holder.command, label: holder.label });
}

/** parseHolder reads a stored holder description; undefined for a value that is not one (another version's, another program's). */
export function parseHolder(value: string | undefined): HolderDescription | undefined {
  if (value === undefined || !value.startsWith('{')) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return undefined;
  const p = parsed as Record<string, unknown>;
  const holder: HolderDescription = {
    ...(typeof p.host === 'string' ? { host: p.host } : {}),
    ...(typeof p.pid === 'number' ? { pid: p.pid } : {}),
    ...(typeof p.command === 'string' ? { command: p.command } : {}),
    ...(typeof p.label === 'string' ? { label: p.label } : {}),
  };
  return Object.keys(holder).length > 0 ? holder : undefined;
}

/** createBaton makes a baton instance over a store: `createBaton(createSqliteStore())`. */
export function createBaton<S extends LockStore>(store: S, options?: BatonOptions): Baton<TokenOf<S>> {
  return new Baton<TokenOf<S>>(store, options);
}
