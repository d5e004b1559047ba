import { InvalidArgumentError, LockUpgradeError } from '../errors.js';
import type { LockKind, ResourceKey } from '../store.js';
import type { Lease } from './lease.js';
import { withLease, type LockHost } from './lock.js';
import type { AcquireOptions, CallOptions, LockInfo, TryAcquireOptions, WithLockOptions } from './options.js';
import { checkName } from './validate.js';

/**
 * RWLOCK_LIMIT: the limit every entry of a read-write lock states. Readers are not counted
 * against a bound (any number share the lock); writers exclude everyone whatever the limit.
 */
export const RWLOCK_LIMIT = 2 ** 31 - 1;

/** RwLockHost: what a read-write lock handle needs from its baton instance. */
export interface RwLockHost<Token extends bigint | null> extends LockHost<Token> {
  downgradeLease(lease: Lease<Token>, options?: CallOptions): Promise<void>;
}

/**
 * RwLock is a handle on the read-write lock `name`: any number of readers at once, or one
 * writer. Fair and queue-ordered (Apache Curator's rule), on stores that keep a queue: a
 * reader holds when no writer is ahead of it in arrival order, a writer when nothing is
 * ahead of it; so a waiting writer is never starved by readers that keep coming, and the
 * readers that came after it wait for it.
 *
 * Every grant, read or write, gets a fencing token from the lock's one counter: a writer's
 * token is above every token issued before it (every reader's before it included), and a
 * reader's is above the last writer's before it. A fenced resource keeps the highest write
 * token it has seen and refuses a read or a write with a token below it; it also refuses a
 * write below the highest token of any kind it has seen (see docs/fencing.md).
 *
 * A handle is one caller: it refuses an upgrade (a `write` while it holds or awaits a read
 * lease, which would wait for itself forever) with `LockUpgradeError`, and `downgrade` turns
 * its write lease into a read lease without letting another writer in between. Make one
 * handle per task that takes the lock (handles are cheap).
 */
export class RwLock<Token extends bigint | null = bigint> {
  readonly #host: RwLockHost<Token>;
  readonly #key: ResourceKey;
  /** Read leases of this handle, held or being acquired (a promise until granted). */
  readonly #reads = new Set<Lease<Token> | Promise<unknown>>();
  readonly #writes = new WeakSet<Lease<Token>>();

  /** @internal */
  constructor(host: RwLockHost<Token>, name: string) {
    this.#host = host;
    this.#key = { kind: 'rwlock', name: checkName(name) };
  }

  get name(): string {
    return this.#key.name;
  }

  get kind(): LockKind {
    return this.#key.kind;
  }

  /** read waits for a read lease (shared with other readers); as `Mutex.acquire` otherwise. */
  read(options?: AcquireOptions): Promise<Lease<Token>> {
    return this.#read(options, true) as Promise<Lease<Token>>;
  }

  /** tryRead asks once: a read lease, or `null` when a writer holds the lock or waits for it. */
  tryRead(options?: TryAcquireOptions): Promise<Lease<Token> | null> {
    return this.#read(options, false);
  }

  /** write waits for the write lease (no one else holds the lock); rejects with `LockUpgradeError` at once while this handle holds or awaits a read lease. */
  write(options?: AcquireOptions): Promise<Lease<Token>> {
    return this.#write(options, true) as Promise<Lease<Token>>;
  }

  /** tryWrite asks once: the write lease, or `null` when anyone holds the lock or waits for it. */
  tryWrite(options?: TryAcquireOptions): Promise<Lease<Token> | null> {
    return this.#write(options, false);
  }

  /**
   * downgrade turns this handle's write lease into a read lease where it stands: same lease
   * object, token, TTL and place in the queue, so no other writer gets in between; the
   * readers queued behind it up to the next writer then hold with it. Rejects with
   * `InvalidArgumentError` for a lease that is not a write lease of this handle,
   * `LockNotHeldError`/`LeaseLostError` for one released or lost, and `UnsupportedError` on a
   * store that cannot downgrade. There is no upgrade: see `LockUpgradeError`.
   */
  async downgrade(lease: Lease<Token>, options?: CallOptions): Promise<void> {
    if (!this.#writes.has(lease)) {
      throw new InvalidArgumentError('lease', `Expected \`lease\` to be a write lease of the read-write lock "${this.name}" taken through this handle`);
    }
    await this.#host.downgradeLease(lease, options);
    this.#writes.delete(lease);
    this.#reads.add(lease);
  }

  /** withRead runs `fn` under a read lease, renewed while it runs; as `Mutex.withLock`. */
  withRead<T>(fn: (lease: Lease<Token>) => T | PromiseLike<T>, options?: WithLockOptions): Promise<T> {
    return withLease((o) => this.read(o), fn, options);
  }

  /** withWrite runs `fn` under the write lease, renewed while it runs; as `Mutex.withLock`. */
  withWrite<T>(fn: (lease: Lease<Token>) => T | PromiseLike<T>, options?: WithLockOptions): Promise<T> {
    return withLease((o) => this.write(o), fn, options);
  }

  /** inspect reports the lock's holders (each with its mode) and waiters. */
  inspect(options?: CallOptions): Promise<LockInfo<Token>> {
    return this.#host.inspect(this.#key.name, this.#key.kind, options);
  }

  async #read(options: AcquireOptions | TryAcquireOptions | undefined, wait: boolean): Promise<Lease<Token> | null> {
    const pending = this.#host.acquireLease(this.#key, 'shared', RWLOCK_LIMIT, options, wait);
    this.#reads.add(pending);
    try {
      const lease = await pending;
      if (lease) this.#reads.add(lease);
      return lease;
    } finally {
      this.#reads.delete(pending);
    }
  }

  async #write(options: AcquireOptions | TryAcquireOptions | undefined, wait: boolean): Promise<Lease<Token> | null> {
    for (const read of this.#reads) {
      if (read instanceof Promise) throw new LockUpgradeError(this.name);
      if (read.held) throw new LockUpgradeError(this.name);
      this.#reads.delete(read);
    }
    const lease = await this.#host.acquireLease(this.#key, 'exclusive', RWLOCK_LIMIT, options, wait);
    if (lease) this.#writes.add(lease);
    return lease;
  }
}
