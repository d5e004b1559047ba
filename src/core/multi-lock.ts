import { InvalidArgumentError, LockTimeoutError } from '../errors.js';
import { monotonicNow } from './clock.js';
import { promptSignal, type Lease } from './lease.js';
import type { AcquireOptions, CallOptions, TryAcquireOptions } from './options.js';
import { checkName, checkOptions, checkTimeout } from './validate.js';

/** MultiLockHost: what a multi-lock needs from its baton instance: one mutex acquisition. */
export interface MultiLockHost<Token extends bigint | null> {
  acquireMutex(name: string, options: AcquireOptions | TryAcquireOptions, wait: boolean): Promise<Lease<Token> | null>;
}

const LOCK_ALL_OPTIONS = ['ttlMs', 'timeoutMs', 'signal', 'autoRenew', 'label'] as const;
const TRY_ALL_OPTIONS = ['ttlMs', 'autoRenew', 'signal', 'label'] as const;

/**
 * canonicalOrder: the names, distinct, sorted by the bytes of their UTF-8 form (the order of
 * the keys the stores keep them under, the same in every process whatever its locale). Two
 * callers that take overlapping sets in this order never wait for each other in a cycle.
 */
export function canonicalOrder(names: unknown): string[] {
  if (!Array.isArray(names) || names.length === 0) {
    throw new InvalidArgumentError('names', `Expected \`names\` to be a non-empty array of lock names, got ${Array.isArray(names) ? 'an empty array' : typeof names}`);
  }
  const checked = names.map((name, i) => checkName(name, `names[${i}]`));
  const bytes = new Map(checked.map((name) => [name, Buffer.from(name, 'utf8')]));
  if (bytes.size !== checked.length) {
    const seen = new Set<string>();
    const twice = checked.find((name) => (seen.has(name) ? true : (seen.add(name), false)));
    throw new InvalidArgumentError('names', `Expected \`names\` to be distinct, got "${twice}" more than once`);
  }
  return [...bytes.keys()].sort((a, b) => Buffer.compare(bytes.get(a)!, bytes.get(b)!));
}

/**
 * lockAll takes the mutexes `names` in canonical order, all or nothing: when one cannot be
 * had (timeout, abort, a store error, close), those already taken are released in reverse
 * order before it rejects. `timeoutMs` bounds the whole; `null` from a try (`wait` false)
 * when any is busy.
 */
export async function lockAll<Token extends bigint | null>(host: MultiLockHost<Token>, names: unknown, options: AcquireOptions | TryAcquireOptions | undefined, wait: boolean): Promise<MultiLease<Token> | null> {
  const o = checkOptions<AcquireOptions>(options, 'options', wait ? LOCK_ALL_OPTIONS : TRY_ALL_OPTIONS);
  const order = canonicalOrder(names);
  const timeoutMs = wait ? checkTimeout(o.timeoutMs ?? Infinity) : 0;
  const deadline = monotonicNow() + timeoutMs;
  const taken: Lease<Token>[] = [];
  try {
    for (const name of order) {
      let lease: Lease<Token> | null;
      if (wait) {
        const left = Math.max(0, Math.floor(deadline - monotonicNow()));
        try {
          lease = await host.acquireMutex(name, { ...o, timeoutMs: Number.isFinite(timeoutMs) ? left : Infinity }, true);
        } catch (error) {
          // A part's timeout is the whole's: report the budget that was given.
          if (error instanceof LockTimeoutError) throw new LockTimeoutError(name, timeoutMs, { cause: error.cause });
          throw error;
        }
      } else {
        lease = await host.acquireMutex(name, o, false);
      }
      if (!lease) {
        await releaseAll(taken);
        return null;
      }
      taken.push(lease);
    }
  } catch (error) {
    await releaseAll(taken);
    throw error;
  }
  return new MultiLease<Token>(taken);
}

/** releaseAll gives back `leases` in reverse order, each as well as it can (a lost one has nothing to give back). */
async function releaseAll(leases: readonly Lease<bigint | null>[], options?: CallOptions): Promise<unknown[]> {
  const errors: unknown[] = [];
  for (const lease of [...leases].reverse()) {
    try {
      await lease.release(options);
    } catch (error) {
      errors.push(error);
    }
  }
  return errors;
}

/**
 * MultiLease holds several mutexes as one: one `signal` that aborts (with the part's
 * `LeaseLostError`) as soon as any part is lost, one `release()` that gives every part back in
 * reverse order, `await using`. `leases` are the parts in canonical order; `tokens` each
 * part's fencing token by name: pass each to the resource that part protects.
 */
export class MultiLease<Token extends bigint | null = bigint> implements AsyncDisposable {
  /** The parts, in the order they were taken (canonical order). */
  readonly leases: readonly Lease<Token>[];
  #controller: AbortController | null = null;
  #released = false;

  /** @internal */
  constructor(leases: readonly Lease<Token>[]) {
    this.leases = Object.freeze([...leases]);
  }

  /** names of the parts, in canonical order. */
  get names(): string[] {
    return this.leases.map((lease) => lease.name);
  }

  /** tokens: each part's fencing token, by name. */
  get tokens(): ReadonlyMap<string, Token> {
    return new Map(this.leases.map((lease) => [lease.name, lease.token]));
  }

  /** held: every part is held (each re-checks its deadline). */
  get held(): boolean {
    return this.leases.every((lease) => lease.held);
  }

  /** expiresAt: the earliest `expiresAt` of the parts: when the first of them ends unless renewed. */
  get expiresAt(): number {
    return Math.min(...this.leases.map((lease) => lease.expiresAt));
  }

  /**
   * signal aborts when any part is lost, with that part's `LeaseLostError` as its reason; not
   * on a normal release. Like a lease's, its `aborted`, `reason` and `throwIfAborted()`
   * re-check every part's deadline when read.
   */
  get signal(): AbortSignal {
    if (!this.#controller) {
      const controller = new AbortController();
      this.#controller = controller;
      let lostOne = false;
      const check = (): void => {
        if (lostOne) return;
        const lost = this.leases.find((lease) => lease.signal.aborted);
        if (!lost) return;
        lostOne = true;
        controller.abort(lost.signal.reason);
      };
      for (const lease of this.leases) lease.signal.addEventListener('abort', () => check(), { once: true });
      promptSignal(controller.signal, check);
      check();
    }
    return this.#controller.signal;
  }

  /** extend sets every part's TTL to `ttlMs` from now (default: each part's current TTL); rejects with the first part's error if any fails. */
  async extend(ttlMs?: number, options?: CallOptions): Promise<void> {
    const outcomes = await Promise.allSettled(this.leases.map((lease) => lease.extend(ttlMs, options)));
    const failed = outcomes.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;
  }

  /**
   * release gives every part back, in reverse order, each even when another fails. Rejects
   * with the first part's error (a `LeaseLostError` for a part that was lost, a
   * `LockNotHeldError` when called twice) once all were tried.
   */
  async release(options?: CallOptions): Promise<void> {
    this.#released = true;
    const errors = await releaseAll(this.leases, options);
    if (errors.length > 0) throw errors[0];
  }

  /** Symbol.asyncDispose releases every part still held; a lost part was already reported through `signal`. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const errors = await releaseAll(this.leases.filter((lease) => lease.held));
    const other = errors.find((error) => !(error instanceof Error && 'code' in error && (error.code === 'LEASE_LOST' || error.code === 'NOT_HELD')));
    if (other) throw other;
  }

  toJSON(): { names: string[]; tokens: Record<string, string | null>; expiresAt: number; held: boolean } {
    return {
      names: this.names,
      tokens: Object.fromEntries(this.leases.map((lease) => [lease.name, lease.token === null ? null : String(lease.token)])),
      expiresAt: this.expiresAt,
      held: this.held,
    };
  }
}
