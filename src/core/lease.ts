import { LockNotHeldError } from '../errors.js';
import type { LockKind } from '../store.js';
import type { LeaseRecord } from './keep-alive.js';
import type { CallOptions } from './options.js';

/** LeaseOwner: what a lease needs from the baton instance that granted it. */
export interface LeaseOwner {
  /** How long the lease has left before `check` declares it lost: its own deadline, or its store's session's if that comes first. */
  remainingMs(record: LeaseRecord): number;
  check(record: LeaseRecord): boolean;
  extend(record: LeaseRecord, ttlMs: number, options?: CallOptions): Promise<void>;
  release(record: LeaseRecord, options?: CallOptions): Promise<void>;
}

/**
 * Lease is one grant of a lock: who holds it (`owner`), the fencing token, and how long it
 * lasts. It is lost when its TTL runs out without renewal or the store drops it; then
 * `signal` aborts with a `LeaseLostError`. Reading `signal` (or `held`) re-checks the deadline,
 * so code that checks `lease.signal.aborted` right before a write never writes after the
 * deadline, even if its process was paused and no timer has run yet.
 *
 * `token` is a bigint that strictly increases per lock on every grant; pass it to the
 * resource you protect and have the resource refuse tokens lower than the highest it has
 * seen (see docs/fencing.md). It is `null` only on stores that cannot give a safe token.
 */
export class Lease<Token extends bigint | null = bigint> implements AsyncDisposable {
  readonly #record: LeaseRecord;
  readonly #owner: LeaseOwner;

  /** @internal */
  constructor(record: LeaseRecord, owner: LeaseOwner) {
    this.#record = record;
    this.#owner = owner;
    records.set(this, record);
  }

  /** name of the lock. */
  get name(): string {
    return this.#record.name;
  }

  /** kind of the lock: `mutex`, `semaphore`, ... */
  get kind(): LockKind {
    return this.#record.kind;
  }

  /** owner is this grant's 128-bit random id (32 hex characters). */
  get owner(): string {
    return this.#record.owner;
  }

  /** token is the fencing token. */
  get token(): Token {
    return this.#record.token as Token;
  }

  /** ttlMs is the TTL of the last grant or extension. */
  get ttlMs(): number {
    return this.#record.ttlMs;
  }

  /**
   * expiresAt is a wall-clock instant (ms since the epoch) by which the lease ends unless
   * renewed, the instant at which `signal` aborts; conservative by the clock-drift margin.
   * On a store that enforces a shorter TTL than the lease's (an etcd session), it is the end
   * of the store's TTL: baton renews that towards the lease's own end, moving `expiresAt`
   * with each renewal, and the lease ends here if a renewal fails (a process stalled past it
   * loses the lock here, not at the end of the TTL it asked for). On a session-scoped store
   * it is never later than the session's end (`sessionDeadline`), when every lease of the
   * session ends.
   */
  get expiresAt(): number {
    return Date.now() + Math.round(this.#owner.remainingMs(this.#record));
  }

  /** held is true until the lease is released or lost; it re-checks the deadline. */
  get held(): boolean {
    return this.#owner.check(this.#record);
  }

  /**
   * signal aborts, with a `LeaseLostError` as its reason, when the lease is lost. It does not
   * abort on a normal release. Its `aborted`, `reason` and `throwIfAborted()` re-check the
   * deadline when read, also on a signal kept from before the process stalled (a blocked event
   * loop, a pause) past the lease's end: they are never late. What waits for its `abort` event
   * (`fetch`, a listener) hears it when timers run again.
   */
  get signal(): AbortSignal {
    const record = this.#record;
    this.#owner.check(record);
    if (!record.controller) {
      record.controller = new AbortController();
      if (record.lostError) record.controller.abort(record.lostError);
      promptSignal(record.controller.signal, () => this.#owner.check(record));
    }
    return record.controller.signal;
  }

  /**
   * extend sets the lease's TTL to `ttlMs` from now (default: its current TTL). Rejects with
   * `LeaseLostError` if the lease was lost, `LockNotHeldError` if it was released, and
   * `StoreUnavailableError` if the store did not answer within `options.timeoutMs` (default:
   * the instance's `storeTimeoutMs`) or before the lease's deadline.
   */
  extend(ttlMs?: number, options?: CallOptions): Promise<void> {
    return this.#owner.extend(this.#record, ttlMs ?? this.#record.ttlMs, options);
  }

  /**
   * release gives the lock back: it stops renewal, waits for a renewal in flight, then
   * removes the grant from the store. Rejects with `LeaseLostError` if the lease had been
   * lost (nothing of anyone else's is freed), with `LockNotHeldError` when called twice, and
   * with `StoreUnavailableError` when the store did not answer within `options.timeoutMs`
   * (default: the instance's `storeTimeoutMs`): the entry then stays until its TTL runs out,
   * and the lease counts as lost.
   */
  release(options?: CallOptions): Promise<void> {
    return this.#owner.release(this.#record, options);
  }

  /** Symbol.asyncDispose releases the lease if it is still held; a lost lease was already reported through `signal`, so it does not throw. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#record.state === 'held') await this.release().catch((error: unknown) => {
      if (!(error instanceof Error && 'code' in error && (error.code === 'LEASE_LOST' || error.code === 'NOT_HELD'))) throw error;
    });
  }

  /** toJSON: a plain view for logs; the token is a string because JSON has no bigint. */
  toJSON(): { name: string; kind: LockKind; owner: string; token: string | null; expiresAt: number; held: boolean } {
    return { name: this.name, kind: this.kind, owner: this.owner, token: this.token === null ? null : String(this.token), expiresAt: this.expiresAt, held: this.#record.state === 'held' };
  }
}

/** The record behind each lease, for core's own operations on it (a read-write lock's downgrade, a multi-lock's parts). */
const records = new WeakMap<Lease<bigint | null>, LeaseRecord>();

/** recordOf: the state behind a lease that this package made; undefined for anything else. */
export function recordOf(lease: unknown): LeaseRecord | undefined {
  return typeof lease === 'object' && lease !== null ? records.get(lease as Lease<bigint | null>) : undefined;
}

/** notHeld builds the error for using a lease after it was released. */
export function releasedError(record: LeaseRecord): LockNotHeldError {
  return new LockNotHeldError(record.name, `Lease on "${record.name}"${record.token === null ? '' : ` (token ${record.token})`} was already released`);
}

const ABORTED = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')!.get!;
const REASON = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'reason')!.get!;

/** promptSignal makes `signal`'s own reads run `check` (which aborts it once the lease's deadline has passed) first. */
export function promptSignal(signal: AbortSignal, check: () => void): void {
  Object.defineProperties(signal, {
    aborted: { get: () => (check(), ABORTED.call(signal) as boolean), configurable: true },
    reason: { get: () => (check(), REASON.call(signal) as unknown), configurable: true },
    throwIfAborted: { value: () => (check(), AbortSignal.prototype.throwIfAborted.call(signal)), configurable: true, writable: true },
  });
}
