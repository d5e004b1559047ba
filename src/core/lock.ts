import type { HoldMode, LockKind, ResourceKey } from '../store.js';
import type { Lease } from './lease.js';
import type { AcquireOptions, CallOptions, LockInfo, TryAcquireOptions, WithLockOptions } from './options.js';
import { checkFunction, checkOptions } from './validate.js';

/** LockHost: what a lock handle needs from the baton instance that made it. */
export interface LockHost<Token extends bigint | null> {
  acquireLease(key: ResourceKey, mode: HoldMode, limit: number, options: AcquireOptions | TryAcquireOptions | undefined, wait: boolean, value?: string): Promise<Lease<Token> | null>;
  inspect(name: string, kind: LockKind, options?: CallOptions): Promise<LockInfo<Token>>;
}

const WITH_LOCK_OPTIONS = ['ttlMs', 'timeoutMs', 'signal', 'label'] as const;

/**
 * Lock is a handle on one lock whose holders all take it the same way: a mutex (one
 * exclusive holder) or a semaphore (`permits` shared holders). It holds no state of its own;
 * every call goes through its baton instance. A new primitive of this shape is a subclass
 * that fixes the mode and the limit (see mutex.ts, semaphore.ts).
 */
export class Lock<Token extends bigint | null = bigint> {
  readonly #host: LockHost<Token>;
  readonly #key: ResourceKey;
  readonly #mode: HoldMode;
  /** permits: holders allowed at once (1 for a mutex). */
  readonly permits: number;

  /** @internal */
  constructor(host: LockHost<Token>, key: ResourceKey, mode: HoldMode, permits: number) {
    this.#host = host;
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
   * `ClosedError` when the instance closes, whatever the store does meanwhile. Waiters are
   * served in arrival order.
   */
  acquire(options?: AcquireOptions): Promise<Lease<Token>> {
    return this.#host.acquireLease(this.#key, this.#mode, this.permits, options, true) as Promise<Lease<Token>>;
  }

  /**
   * tryAcquire asks once: a lease, or `null` when the lock is busy. Contention is a value, not
   * an error. The try is bounded by the instance's `storeTimeoutMs` and by `signal`.
   */
  tryAcquire(options?: TryAcquireOptions): Promise<Lease<Token> | null> {
    return this.#host.acquireLease(this.#key, this.#mode, this.permits, options, false);
  }

  /**
   * withLock acquires, runs `fn(lease)` while renewing the lease every TTL/3, then stops the
   * renewal, waits for one in flight and releases. It resolves with `fn`'s result; rejects
   * with `fn`'s error, or with the `LeaseLostError` if the lease was lost while `fn` ran
   * (even if `fn` succeeded, since its work was not protected to the end). Pass
   * `lease.signal` to the work inside `fn` so that it stops when the lease is lost; it also
   * aborts, with reason `closed`, when the instance closes while `fn` runs.
   */
  withLock<T>(fn: (lease: Lease<Token>) => T | PromiseLike<T>, options?: WithLockOptions): Promise<T> {
    return withLease((o) => this.acquire(o), fn, options);
  }

  /** inspect reports this lock's holders and waiters. */
  inspect(options?: CallOptions): Promise<LockInfo<Token>> {
    return this.#host.inspect(this.#key.name, this.#key.kind, options);
  }
}

/**
 * withLease takes a lease with `take` (auto-renewing), runs `fn(lease)`, then releases it:
 * `withLock`'s body for every handle. Resolves with `fn`'s result; rejects with `fn`'s error,
 * or with the `LeaseLostError` of a lease lost while `fn` ran.
 */
export async function withLease<Token extends bigint | null, T>(
  take: (options: AcquireOptions) => Promise<Lease<Token>>,
  fn: (lease: Lease<Token>) => T | PromiseLike<T>,
  options: WithLockOptions | undefined,
): Promise<T> {
  checkFunction(fn, 'fn');
  const o = checkOptions<WithLockOptions>(options, 'options', WITH_LOCK_OPTIONS);
  const lease = await take({ ...o, autoRenew: true });
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
