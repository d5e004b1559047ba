import { LeaseLostError, type LeaseLostReason } from '../errors.js';
import type { ExtendResult, LockStore, ResourceKey } from '../store.js';
import { bounded, type CallObserver } from './call.js';
import { monotonicNow, type Clock, type ClockTimer } from './clock.js';

/**
 * LeaseRecord is the mutable state behind one `Lease`. It is kept small because a process
 * may hold many: the AbortController is made only when someone reads `lease.signal`, and its
 * instants are whole milliseconds on the scheduler's own scale (`KeepAlive.now()`, 0 when
 * the scheduler was made), so that V8 keeps them in the record as small integers rather than
 * as a boxed number each (16 bytes apiece). Rounding is always towards earlier. The record is
 * its own `ResourceKey` (`kind`, `name`), passed as such to the store.
 */
export interface LeaseRecord extends ResourceKey {
  readonly owner: string;
  readonly token: bigint | null;
  /** The lease's TTL, as asked for in the grant or the last extension. */
  ttlMs: number;
  /** The TTL the store enforces on each renewal: `ttlMs`, or less on a session-based store (`GrantResult.ttlMs`). */
  enforcedMs: number;
  /** Instant at which the lease's own TTL runs out: the grant's (or extension's) start + `ttlMs` - drift. */
  until: number;
  /**
   * Instant by which the store's TTL has surely not run out: `until`, or earlier when the
   * store enforces a shorter TTL (then the lease is renewed up to `until`).
   */
  deadline: number;
  /** Instant of the next renewal when `autoRenew` is on. */
  renewAt: number;
  autoRenew: boolean;
  state: 'held' | 'releasing' | 'released' | 'lost';
  lostError: LeaseLostError | null;
  controller: AbortController | null;
  /** The renewal in flight, awaited before a release. */
  inflight: Promise<void> | null;
  /** Last renewal error, kept as the `cause` if the lease then expires. */
  lastError: unknown;
  /** Instant of the grant. */
  readonly acquiredAt: number;
  /** Place in the scheduler's heap, -1 when not scheduled. */
  heapIndex: number;
  /** Instant at which the scheduler next looks at the lease. */
  due: number;
}

/** KeepAliveHooks: what the scheduler reports back to its baton instance. */
export interface KeepAliveHooks {
  extended(record: LeaseRecord, ttlMs: number): void;
  lost(record: LeaseRecord, error: LeaseLostError): void;
  /** Removes a lost lease's entry from the store in the background, if the store still has it. */
  forget(record: LeaseRecord): void;
  /** An automatic renewal failed; it is tried again until the lease's deadline. */
  renewFailed?(record: LeaseRecord, error: unknown): void;
}

/** KeepAliveCalls: how the scheduler bounds its store calls. */
export interface KeepAliveCalls {
  /** Longest wait for one extension, in ms (it is also cut at the lease's deadline). */
  readonly storeTimeoutMs: number;
  /** Aborts every extension in flight (the instance is closing). */
  readonly signal: AbortSignal;
  /** Hears how each extension ended. */
  readonly observer?: CallObserver;
}

/**
 * KeepAlive is the one renewal scheduler of a baton instance: a single timer armed for the
 * earliest due lease in a binary heap, whatever the number of leases. A lease is due at its
 * next renewal (auto-renewing leases) and in any case at its deadline, when it is declared
 * lost. Renewal failures are retried until the deadline; nothing is ever thrown from the timer.
 */
export class KeepAlive {
  readonly #clock: Clock;
  readonly #store: LockStore;
  readonly #hooks: KeepAliveHooks;
  readonly #driftFactor: number;
  readonly #calls: KeepAliveCalls;
  /** A session-scoped store's `sessionDeadline`: every lease ends with the session. */
  readonly #sessionDeadline: (() => number) | null;
  readonly #heap: LeaseRecord[] = [];
  /** Leases by owner, kept only for stores that report losses themselves (`watchLost`). */
  readonly #byOwner: Map<string, LeaseRecord> | null;
  #timer: ClockTimer | null = null;
  #timerDue = Infinity;
  /** The clock's reading when this scheduler was made: instant 0 of its records. */
  readonly #epoch: number;

  constructor(clock: Clock, store: LockStore, hooks: KeepAliveHooks, driftFactor: number, calls: KeepAliveCalls) {
    this.#clock = clock;
    this.#epoch = clock.now();
    this.#store = store;
    this.#hooks = hooks;
    this.#driftFactor = driftFactor;
    this.#calls = calls;
    this.#sessionDeadline = store.sessionDeadline ? store.sessionDeadline.bind(store) : null;
    this.#byOwner = store.watchLost ? new Map() : null;
  }

  /** size: leases currently tracked. */
  get size(): number {
    return this.#heap.length;
  }

  /** records: every tracked lease, in no particular order. */
  records(): readonly LeaseRecord[] {
    return this.#heap;
  }

  /** now: the clock's reading on the records' scale (ms since this scheduler was made). */
  now(): number {
    return this.#clock.now() - this.#epoch;
  }

  /** stamp: a clock reading as an instant of the records' scale, rounded down to a whole ms. */
  stamp(clockMs: number): number {
    return Math.floor(clockMs - this.#epoch);
  }

  /** deadlineFor: the local deadline (a clock reading) of a TTL that the store started no earlier than `startedAt`. */
  deadlineFor(startedAt: number, ttlMs: number): number {
    return startedAt + ttlMs - Math.floor(ttlMs * this.#driftFactor);
  }

  /**
   * plan sets a lease's deadlines after a grant or extension of `ttlMs` that started at
   * `startedAt`, of which the store enforces `enforcedMs` (undefined: all of it).
   */
  plan(record: LeaseRecord, startedAt: number, ttlMs: number, enforcedMs: number | undefined): void {
    record.ttlMs = ttlMs;
    record.until = this.stamp(this.deadlineFor(startedAt, ttlMs));
    this.#enforce(record, startedAt, enforcedMs === undefined ? ttlMs : Math.min(ttlMs, enforcedMs));
  }

  /** The store's TTL of `enforcedMs` from `startedAt` bounds the deadline; the next renewal is a third of the way. */
  #enforce(record: LeaseRecord, startedAt: number, enforcedMs: number): void {
    const enforced = Math.max(0, Math.floor(enforcedMs));
    record.enforcedMs = enforced;
    record.deadline = Math.min(record.until, this.stamp(this.deadlineFor(startedAt, enforced)));
    record.renewAt = this.stamp(startedAt + Math.max(1, Math.floor(enforced / 3)));
  }

  /** renews: the scheduler extends this lease, because it auto-renews or because the store enforces less than its TTL. */
  #renews(record: LeaseRecord): boolean {
    return record.autoRenew || record.deadline < record.until;
  }

  /** track starts watching a newly granted lease. */
  track(record: LeaseRecord): void {
    this.#byOwner?.set(record.owner, record);
    this.#reschedule(record);
  }

  /** untrack stops watching a lease (released or lost). */
  untrack(record: LeaseRecord): void {
    this.#byOwner?.delete(record.owner);
    if (record.heapIndex >= 0) this.#remove(record.heapIndex);
    if (this.#heap.length === 0) this.#disarm();
  }

  /** find returns the held lease of `owner`, if this scheduler tracks it. */
  find(owner: string): LeaseRecord | undefined {
    return this.#byOwner?.get(owner);
  }

  /** remainingMs: how long until `check` declares the lease lost, the earlier of its deadline and its store's session's. */
  remainingMs(record: LeaseRecord): number {
    const own = record.deadline - this.now();
    return this.#sessionDeadline === null ? own : Math.min(own, this.#sessionDeadline() - monotonicNow());
  }

  /**
   * check declares the lease lost if its deadline, or its store's session, has run out; true
   * while it is still held. Used on every read of `lease.signal`, so a process that was paused
   * past either sees the loss before any timer has run.
   */
  check(record: LeaseRecord): boolean {
    if (record.state !== 'held') return false;
    if (this.remainingMs(record) <= 0) {
      this.lose(record, 'expired', record.lastError);
      return false;
    }
    return true;
  }

  /** lose marks a lease lost, aborts its signal and reports it, once. */
  lose(record: LeaseRecord, reason: LeaseLostReason, cause?: unknown): void {
    if (record.state === 'lost' || record.state === 'released') return;
    record.state = 'lost';
    const error = new LeaseLostError(record.name, reason, record.token, cause === undefined ? undefined : { cause });
    record.lostError = error;
    this.untrack(record);
    record.controller?.abort(error);
    this.#hooks.lost(record, error);
  }

  /**
   * extend sets a new TTL through the store. It is what both `lease.extend()` and the
   * scheduler call, so only one extension is in flight per lease.
   */
  async extend(record: LeaseRecord, ttlMs: number, bridge = false, timeoutMs = this.#calls.storeTimeoutMs, signal = this.#calls.signal): Promise<void> {
    while (record.inflight) await record.inflight.catch(() => undefined);
    if (!this.check(record)) return;
    if (bridge) ttlMs = Math.max(1, Math.ceil(record.until - this.now()));
    const run = this.#extend(record, ttlMs, bridge, timeoutMs, signal);
    record.inflight = run;
    this.#reschedule(record);
    try {
      await run;
    } finally {
      if (record.inflight === run) record.inflight = null;
      this.#reschedule(record);
    }
  }

  /**
   * One extension through the store. A bridging one (`bridge`) only renews the store's
   * shorter TTL towards the lease's own end (`until`), which it leaves as it is.
   */
  async #extend(record: LeaseRecord, ttlMs: number, bridge: boolean, timeoutMs: number, signal: AbortSignal): Promise<void> {
    const startedAt = this.#clock.now();
    let result: ExtendResult;
    // Bounded by the store's call timeout and by the lease's deadline, past which it is lost anyway.
    const budget = Math.max(1, Math.min(timeoutMs, record.deadline - this.now()));
    // An extension that succeeds after it was given up, of a lease lost meanwhile, is given back.
    const late = (answer: ExtendResult): void => {
      if (answer.held && record.state === 'lost') this.#hooks.forget(record);
    };
    try {
      result = await bounded(
        { signal, deadline: monotonicNow() + budget },
        (call) => this.#store.extend(record, record.owner, ttlMs, call),
        { store: this.#store, verb: 'extend', late, ...(this.#calls.observer ? { observer: this.#calls.observer } : {}) },
      );
    } catch (error) {
      record.lastError = error;
      throw error;
    }
    const ok = result.held;
    const enforcedMs = result.held ? result.enforcedTtlMs : undefined;
    if (record.state === 'lost') {
      // Lost while the extension was in flight: whatever the store now says, the holder was
      // told the lease is gone, so give it back rather than block others until it expires.
      if (ok) this.#hooks.forget(record);
      return;
    }
    // A release waiting for this extension removes the entry itself.
    if (record.state !== 'held') return;
    if (!ok) {
      this.lose(record, this.now() >= record.deadline ? 'expired' : 'revoked', record.lastError);
      return;
    }
    record.lastError = undefined;
    if (bridge) {
      this.#enforce(record, startedAt, enforcedMs === undefined ? ttlMs : Math.min(ttlMs, enforcedMs));
      return;
    }
    this.plan(record, startedAt, ttlMs, enforcedMs);
    this.#hooks.extended(record, ttlMs);
  }

  #reschedule(record: LeaseRecord): void {
    if (record.state !== 'held') {
      this.untrack(record);
      return;
    }
    const due = this.#renews(record) && !record.inflight ? Math.min(record.renewAt, record.deadline) : record.deadline;
    if (record.heapIndex >= 0) {
      const old = record.due;
      record.due = due;
      if (due < old) this.#up(record.heapIndex);
      else this.#down(record.heapIndex);
    } else {
      record.due = due;
      record.heapIndex = this.#heap.length;
      this.#heap.push(record);
      this.#up(record.heapIndex);
    }
    this.#arm();
  }

  #arm(): void {
    const first = this.#heap[0];
    if (!first) return this.#disarm();
    if (this.#timer && this.#timerDue <= first.due) return;
    this.#disarm();
    this.#timerDue = first.due;
    this.#timer = this.#clock.setTimeout(() => this.#tick(), Math.max(0, first.due - this.now()));
  }

  #disarm(): void {
    if (this.#timer) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerDue = Infinity;
  }

  #tick(): void {
    this.#timer = null;
    this.#timerDue = Infinity;
    const now = this.now();
    const due: LeaseRecord[] = [];
    while (this.#heap.length > 0 && this.#heap[0]!.due <= now) {
      const record = this.#heap[0]!;
      this.#remove(0);
      due.push(record);
    }
    for (const record of due) {
      if (!this.check(record)) continue;
      if (this.#renews(record) && !record.inflight && now >= record.renewAt) {
        this.extend(record, record.ttlMs, !record.autoRenew).catch((error: unknown) => {
          if (record.state === 'held') this.#hooks.renewFailed?.(record, error);
          // Retry soon, but never past the deadline, where `check` declares the lease lost.
          record.renewAt = Math.min(record.deadline, Math.floor(this.now()) + Math.max(1, Math.floor(record.enforcedMs / 10)));
          this.#reschedule(record);
        });
      } else {
        this.#reschedule(record);
      }
    }
    this.#arm();
  }

  // A binary min-heap on `due`, with each record's index kept for O(log n) updates.
  #swap(i: number, j: number): void {
    const a = this.#heap[i]!;
    const b = this.#heap[j]!;
    this.#heap[i] = b;
    this.#heap[j] = a;
    b.heapIndex = i;
    a.heapIndex = j;
  }

  #up(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.#heap[parent]!.due <= this.#heap[i]!.due) break;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #down(i: number): void {
    const n = this.#heap.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.#heap[l]!.due < this.#heap[m]!.due) m = l;
      if (r < n && this.#heap[r]!.due < this.#heap[m]!.due) m = r;
      if (m === i) return;
      this.#swap(i, m);
      i = m;
    }
  }

  #remove(i: number): void {
    const last = this.#heap.length - 1;
    const record = this.#heap[i]!;
    if (i !== last) this.#swap(i, last);
    this.#heap.pop();
    record.heapIndex = -1;
    if (i < this.#heap.length) {
      this.#up(i);
      this.#down(i);
    }
  }
}
