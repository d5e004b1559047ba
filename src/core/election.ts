import { InvalidArgumentError, LockNotHeldError, UnsupportedError } from '../errors.js';
import type { LockStore, ResourceKey, ResourceState, StoreCall } from '../store.js';
import { bounded, type CallObserver } from './call.js';
import type { Clock } from './clock.js';
import type { Lease } from './lease.js';
import type { AcquireOptions, CallOptions } from './options.js';
import { checkName, checkOptions, checkSignal } from './validate.js';
import { WakeLatch } from './wake-latch.js';

/** Leader: who leads an election now, and the value it proclaimed. */
export interface Leader<Token extends bigint | null = bigint> {
  /** The leader's owner id (for a leader that is not baton's, such as `etcdctl elect`, its store's own id). */
  readonly owner: string;
  readonly value: string;
  /** The leader's fencing token: it increases with every new term. `null` where the store issues none, as the leader's `lease.token` is. */
  readonly token: Token;
}

/** ObserveOptions for `observe`. */
export interface ObserveOptions {
  /** Ends the iteration (it returns; it does not throw). */
  signal?: AbortSignal;
}

/** What an election needs from its baton instance. */
export interface ElectionHost<Token extends bigint | null> {
  readonly store: LockStore;
  readonly clock: Clock;
  readonly pollMs: number;
  readonly closed: AbortSignal;
  campaign(key: ResourceKey, value: string, options: AcquireOptions | undefined): Promise<Lease<Token>>;
  /** A bounded call: the instance's store timeout (or `options.timeoutMs`), the caller's signal and the instance's close. */
  call(options?: CallOptions, signal?: AbortSignal): StoreCall;
  /** Keeps the process alive while the caller awaits `promise`, and makes `close()` wait for it. */
  run<T>(operation: () => Promise<T>): Promise<T>;
  /** Hears how each store call ended. */
  readonly observer?: CallObserver;
}

/**
 * Election is a handle on one leader election: a mutex of kind `election` whose holder
 * carries a value. `campaign` waits to lead (in arrival order), `proclaim` changes the
 * leader's value, `resign` steps down, `observe` follows the leader. Leadership is a lease:
 * pass `lease.signal` to the leader's work, and `lease.token` to what it writes.
 */
export class Election<Token extends bigint | null = bigint> {
  readonly #host: ElectionHost<Token>;
  readonly #key: ResourceKey;

  /** @internal */
  constructor(host: ElectionHost<Token>, name: string) {
    this.#host = host;
    this.#key = { kind: 'election', name: checkName(name) };
  }

  get name(): string {
    return this.#key.name;
  }

  /**
   * campaign waits until this caller leads, with `value` proclaimed, and resolves with the
   * leadership's lease. Same options and errors as `acquire` (`timeoutMs`, `signal`, `ttlMs`, `autoRenew`).
   */
  campaign(value: string, options?: AcquireOptions): Promise<Lease<Token>> {
    if (typeof value !== 'string') return Promise.reject(new InvalidArgumentError('value', `Expected \`value\` to be a string, got ${typeof value}`));
    return this.#host.campaign(this.#key, value, options);
  }

  /**
   * proclaim sets the value of a leadership without giving it up. Rejects with
   * `LockNotHeldError` when `lease` no longer leads, and with `UnsupportedError` when the
   * store cannot change a value in place (it has no `proclaim`).
   */
  async proclaim(lease: Lease<Token>, value: string, options?: CallOptions): Promise<void> {
    if (typeof value !== 'string') throw new InvalidArgumentError('value', `Expected \`value\` to be a string, got ${typeof value}`);
    if (lease.kind !== 'election' || lease.name !== this.#key.name) throw new InvalidArgumentError('lease', `Expected a lease of the election "${this.#key.name}"`);
    if (!lease.held) throw new LockNotHeldError(this.#key.name, `The leadership of "${this.#key.name}" was released or lost`);
    const store = this.#host.store;
    if (!store.proclaim) throw new UnsupportedError(store.name, 'proclaim', 'it cannot change a leader\'s value in place; resign and campaign again');
    const call = this.#host.call(options);
    const proclaimed = await this.#host.run(() => bounded(call, (c) => store.proclaim!(this.#key, lease.owner, value, c), { store, verb: 'proclaim', observer: this.#host.observer }));
    if (!proclaimed) {
      throw new LockNotHeldError(this.#key.name, `The leadership of "${this.#key.name}" is no longer held by this lease`);
    }
  }

  /** resign steps down: the same as `lease.release()`. */
  resign(lease: Lease<Token>): Promise<void> {
    return lease.release();
  }

  /** leader reports who leads now, or null. */
  async leader(options?: CallOptions): Promise<Leader<Token> | null> {
    return this.#leaderOf(await this.#host.run(() => this.#inspect(this.#host.call(options))));
  }

  /** The leader a report names; without fencing, the number the store reports in place of a token is left out (null). */
  #leaderOf(state: ResourceState): Leader<Token> | null {
    const holder = state.holders[0];
    if (!holder) return null;
    return { owner: holder.owner, value: holder.value ?? '', token: (this.#host.store.guarantees.fencing ? holder.token : null) as Token };
  }

  #inspect(call: StoreCall): Promise<ResourceState> {
    const store = this.#host.store;
    return bounded(call, (c) => store.inspect(this.#key, c), { store, verb: 'inspect', observer: this.#host.observer });
  }

  /**
   * observe yields the leader now, then again each time it changes (another leader, a new
   * value, or null when nobody leads). Notified by stores that can watch (`watch`), else
   * polled every `queuePollMs`. Ends when `signal` aborts or the baton instance closes.
   */
  async *observe(options?: ObserveOptions): AsyncGenerator<Leader<Token> | null, void, undefined> {
    const o = checkOptions<ObserveOptions>(options, 'options', ['signal']);
    const userSignal = checkSignal(o.signal);
    const signal = userSignal ? AbortSignal.any([userSignal, this.#host.closed]) : this.#host.closed;
    const latch = new WakeLatch();
    const stop = this.#host.store.watch?.(this.#key, () => latch.fire()) ?? null;
    let last: string | undefined;
    try {
      while (!signal.aborted) {
        let state: ResourceState;
        try {
          state = await this.#inspect(this.#host.call(undefined, signal));
        } catch (error) {
          if (signal.aborted) return;
          throw error;
        }
        const leader = this.#leaderOf(state);
        const seen = leader ? `${leader.token}\u0000${leader.owner}\u0000${leader.value}` : '';
        if (seen !== last) {
          last = seen;
          yield leader;
        }
        try {
          await latch.wait(this.#host.clock, this.#host.pollMs, signal);
        } catch {
          return;
        }
      }
    } finally {
      stop?.();
    }
  }
}
