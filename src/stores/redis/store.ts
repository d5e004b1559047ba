import { createHash, randomBytes } from 'node:crypto';
import { timeLeft } from '../../core/call.js';
import { systemClock } from '../../core/clock.js';
import { checkBoolean, checkOptions } from '../../core/validate.js';
import { WakeLatches } from '../../core/wake-latch.js';
import { ClosedError, InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import { CLOSE_TIMEOUT_MS, type ExtendResult, type GrantRequest, type GrantResult, type HandOff, type HoldMode, type LockKind, type LockStore, type MarkRequest, type MarkState, type ResourceKey, type ResourceState, type StoreCall } from '../../store.js';
import { commandsFor, type RedisClient, type RedisCommands, type Subscription } from './client.js';
import { isReplyError, watchConnection, type ConnectionWatch } from './reach.js';
import { DOWNGRADE, EXTEND, FORCE_RELEASE, GRANT, INSPECT, MARK, PRUNE, RELEASE } from './scripts.js';


/** A hand-off with the id of the waiter's request its TTL is dated from. */
interface DatedHandOff extends HandOff {
  readonly ask: string;
}

/** RedisStoreOptions configures `createRedisStore`. */
export interface RedisStoreOptions {
  /** Prefix of every key. Default `baton`. */
  prefix?: string;
  /** Wake waiters by pub/sub when a lock frees. Default true; with false, waiters only poll. */
  notify?: boolean;
  /** Quit the client on `close()`; for a client the store was given to own (`openStore` does). Default false. */
  closeClient?: boolean;
  /**
   * Keep a fence per lock and issue fencing tokens. Default true. With false, tokens are 0n
   * (`guarantees.fencing` is false) and a lock leaves no key behind once its entries are
   * gone: for the nodes of a `quorum`, which cannot use per-node tokens anyway.
   */
  fencing?: boolean;
}

/** A compiled script: its source and SHA1, run by EVALSHA with one fallback to EVAL. */
interface Script {
  readonly source: string;
  readonly sha: string;
}

const script = (source: string): Script => ({ source, sha: createHash('sha1').update(source).digest('hex') });
const SCRIPTS = { grant: script(GRANT), extend: script(EXTEND), release: script(RELEASE), forceRelease: script(FORCE_RELEASE), inspect: script(INSPECT), prune: script(PRUNE), downgrade: script(DOWNGRADE), mark: script(MARK) };

/**
 * RedisStore keeps locks on one Redis server, on the server's clock: every operation is one
 * Lua script (one round trip), tokens come from a counter in the same script, waiting is
 * FIFO, and a release grants the lock to the waiters that may now hold and publishes each
 * grant to its process: the wake-up is the grant, with no round trip after it.
 * It holds locks only as long as Redis keeps its data: see docs/guarantees.md.
 *
 * A command sent to Redis cannot be taken back: a call whose caller gave up (its deadline or
 * signal, which baton's core enforces by racing every call) may still run on the server when
 * it answers again; core then gives back a grant nobody waits for. `close()` drops the
 * store's own connections (and the client's, with `closeClient`) when its bound runs out.
 */
export class RedisStore<F extends boolean = true> implements LockStore {
  readonly name = 'redis';
  readonly guarantees: { readonly clock: 'server'; readonly scope: 'network'; readonly fencing: F; readonly fifo: true; readonly notify: boolean; readonly outlivesClient: true; readonly mixedModes: true };
  readonly defaultTimeoutMs = 5000;
  readonly #client: RedisCommands;
  readonly #connection: ConnectionWatch;
  readonly #prefix: string;
  readonly #closeClient: boolean;
  /** '1' when the scripts keep a fence, else '0'. */
  readonly #fenced: '1' | '0';
  /** This store's wake-up channel; waiters record it in their entries. */
  readonly #channel: string;
  readonly #latches = new WakeLatches(systemClock);
  #subscription: Promise<Subscription> | null = null;
  /** The subscription is up: grants name the channel without waiting for it. */
  #subscribed = false;
  /** Each waiting owner's latest request id, to tell a current hand-off from a stale one. */
  readonly #asks = new Map<string, string>();
  #asked = 0;
  #closed = false;
  /** Aborts when `close()` runs out of time: every connection of the store ends at once. */
  readonly #drop = new AbortController();

  constructor(client: RedisClient, options?: RedisStoreOptions) {
    const o = checkOptions<RedisStoreOptions>(options, 'options', ['prefix', 'notify', 'closeClient', 'fencing']);
    const fencing = checkBoolean(o.fencing, 'fencing') ?? true;
    if (o.prefix !== undefined && (typeof o.prefix !== 'string' || o.prefix.length === 0 || /[{}:]/.test(o.prefix))) {
      throw new InvalidArgumentError('prefix', `Expected \`prefix\` to be a non-empty string without "{", "}" or ":", got ${String(o.prefix)}`);
    }
    this.#client = commandsFor(client);
    this.#connection = watchConnection(client);
    this.#closeClient = o.closeClient ?? false;
    this.#prefix = o.prefix ?? 'baton';
    this.#channel = `${this.#prefix}:wake:${randomBytes(8).toString('hex')}`;
    this.#fenced = fencing ? '1' : '0';
    this.guarantees = Object.freeze({ clock: 'server', scope: 'network', fencing: fencing as F, fifo: true, notify: checkBoolean(o.notify, 'notify') ?? true, outlivesClient: true, mixedModes: true } as const);
  }

  async grant(request: GrantRequest, _call?: StoreCall): Promise<GrantResult> {
    // A mutex's holder lives in the classic `SET NX PX` key, for services that use that recipe:
    // it holds one exclusive entry. Every other kind keeps each entry's mode and limit.
    if (request.key.kind === 'mutex' && (request.mode !== 'exclusive' || request.limit !== 1)) {
      throw new InvalidArgumentError('mode', `The Redis store keeps a mutex as one exclusive holder; got mode ${request.mode} with limit ${request.limit}`);
    }
    const wake = request.enqueue && this.guarantees.notify ? (this.#subscribed ? this.#channel : await this.#subscribe()) : '';
    // Each request of a waiter gets an id, saved in its queue entry and echoed by a hand-off:
    // core dates a hand-off's TTL from its latest request, so a hand-off based on an older
    // one (its message delayed, or crossing a newer request) is taken only as a wake-up.
    const ask = wake ? String(++this.#asked) : '';
    if (ask) this.#asks.set(request.owner, ask);
    const reply = await this.#latches.during(request.owner, request.enqueue, async () => {
      const raw = (await this.#run(SCRIPTS.grant, request.key, request.owner, request.mode, request.limit, request.ttlMs, request.enqueue ? 1 : 0, request.queueTtlMs, request.value ?? '', wake, ask)) as string | [number, number, number?];
      return { raw, granted: typeof raw === 'string', limitInUse: typeof raw !== 'string' && Number(raw[0]) === -1 ? Number(raw[1]) : undefined };
    });
    if (typeof reply.raw === 'string') {
      this.#asks.delete(request.owner);
      return { granted: true, token: BigInt(reply.raw) };
    }
    if (reply.limitInUse !== undefined) {
      this.#asks.delete(request.owner);
      return { granted: false, limitInUse: reply.limitInUse };
    }
    const [, position, retryAfterMs] = reply.raw;
    return { granted: false, position: Number(position), ...(Number(retryAfterMs) >= 0 ? { retryAfterMs: Number(retryAfterMs) } : {}) };
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, _call?: StoreCall): Promise<ExtendResult> {
    return (await this.#run(SCRIPTS.extend, key, owner, ttlMs)) === 1 ? HELD : NOT_HELD;
  }

  async release(key: ResourceKey, owner: string, _call?: StoreCall): Promise<boolean> {
    this.#latches.forget(owner);
    this.#asks.delete(owner);
    return (await this.#run(SCRIPTS.release, key, owner)) === 1;
  }

  async downgrade(key: ResourceKey, owner: string, _call?: StoreCall): Promise<boolean> {
    return (await this.#run(SCRIPTS.downgrade, key, owner)) === 1;
  }

  /** advanceMark keeps the mark in its own hash, `{prefix:kind:name}:m`, which has no TTL and which no other script touches. */
  async advanceMark(key: ResourceKey, request: MarkRequest, _call?: StoreCall): Promise<MarkState & { advanced: boolean }> {
    const [at, note, hasNote, advanced] = (await this.#run(SCRIPTS.mark, key, request.to, request.note ?? '', request.note === undefined ? 0 : 1, request.renote ? 1 : 0, MARK_KEY)) as [string, string, number, number];
    return { at: Number(at), ...(Number(hasNote) === 1 ? { note } : {}), advanced: Number(advanced) === 1 };
  }

  async listMarks(filter?: { kind?: LockKind }, _call?: StoreCall): Promise<(MarkState & { key: ResourceKey })[]> {
    const marks: (MarkState & { key: ResourceKey })[] = [];
    for (const key of await this.#resources(filter, ':m')) {
      const { advanced: _, ...state } = await this.advanceMark(key, { to: -1 });
      if (state.at >= 0) marks.push({ key, ...state });
    }
    return marks;
  }

  async forceRelease(key: ResourceKey, _call?: StoreCall): Promise<number> {
    return Number(await this.#run(SCRIPTS.forceRelease, key));
  }

  async inspect(key: ResourceKey, _call?: StoreCall): Promise<ResourceState> {
    const raw = JSON.parse(String(await this.#run(SCRIPTS.inspect, key))) as {
      fence: string;
      entries: { owner: string; mode: HoldMode; held: number; token: string; ttl: number; left: number; value: string; foreign?: number }[] | Record<string, never>;
      empty?: boolean;
    };
    const entries = raw.empty || !Array.isArray(raw.entries) ? [] : raw.entries;
    return {
      key: { kind: key.kind, name: key.name },
      fence: BigInt(raw.fence),
      holders: entries.filter((e) => e.held === 1).map((e) => ({ owner: e.owner, mode: e.mode, token: BigInt(e.token), ttlMs: e.ttl, expiresInMs: e.left, ...(e.value ? { value: e.value } : {}), ...(e.foreign === 1 ? { foreign: true } : {}) })),
      waiters: entries.filter((e) => e.held !== 1).map((e, position) => ({ owner: e.owner, mode: e.mode, position, expiresInMs: e.left })),
    };
  }

  async list(filter?: { kind?: LockKind }, _call?: StoreCall): Promise<ResourceState[]> {
    const states: ResourceState[] = [];
    for (const key of await this.#resources(filter)) states.push(await this.inspect(key));
    return states;
  }

  /**
   * prune removes the keys of every resource that nobody holds or waits for, one script per
   * resource. A fenced resource stays while its fence is ahead of the server's clock in
   * microseconds (more than one grant per microsecond since its first use, or a clock set
   * back): a name used again starts its fence at that clock.
   */
  async prune(filter?: { kind?: LockKind }, call?: StoreCall): Promise<number> {
    let removed = 0;
    for (const key of await this.#resources(filter)) {
      if (call?.signal.aborted) break;
      if ((await this.#run(SCRIPTS.prune, key)) === 1) removed++;
    }
    return removed;
  }

  /** Every resource with keys under the prefix (of one kind), in the order of their keys. */
  async #resources(filter?: { kind?: LockKind }, suffix = ':s'): Promise<ResourceKey[]> {
    // The prefix and kind are matched as they are, not as glob patterns (a prefix `a*` lists only its own keys).
    const pattern = `{${globLiteral(this.#prefix)}:${filter?.kind ? globLiteral(filter.kind) : '*'}:*}${suffix}`;
    const keys = new Set(await this.#call(() => this.#client.scan(pattern)));
    return [...keys].sort().map((key) => {
      const inner = key.slice(1, -1 - suffix.length);
      const first = inner.indexOf(':');
      const second = inner.indexOf(':', first + 1);
      return { kind: inner.slice(first + 1, second) as LockKind, name: inner.slice(second + 1) };
    });
  }

  async wait(_key: ResourceKey, owner: string, call: StoreCall): Promise<HandOff | void> {
    const handOff = (await this.#latches.wait(owner, timeLeft(call), call.signal)) as DatedHandOff | undefined;
    // A hand-off kept from before this owner's latest request is only a wake-up.
    if (!handOff || handOff.ask !== this.#asks.get(owner)) return;
    this.#asks.delete(owner);
    return { token: handOff.token, ttlMs: handOff.ttlMs };
  }

  /**
   * close stops the wake-up subscription; the client you passed stays open unless
   * `closeClient` was set. When `call` ends first (by default after `CLOSE_TIMEOUT_MS`), the
   * connections are dropped without waiting for Redis.
   */
  async close(call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#latches.fireAll();
    this.#connection.stop();
    const limit = call?.signal ?? NEVER_SIGNAL;
    const timer = setTimeout(() => this.#drop.abort(), call ? timeLeft(call) : CLOSE_TIMEOUT_MS);
    timer.unref();
    const drop = (): void => this.#drop.abort();
    limit.addEventListener('abort', drop, { once: true });
    try {
      const subscription = await Promise.race([this.#subscription?.catch(() => null) ?? null, aborted(this.#drop.signal)]);
      await subscription?.close(this.#drop.signal);
      if (this.#closeClient) await this.#client.quit(this.#drop.signal).catch(() => undefined);
    } finally {
      clearTimeout(timer);
      limit.removeEventListener('abort', drop);
      // A subscription still being made is dropped as soon as it exists.
      this.#drop.abort();
    }
  }

  /** unreachable: why Redis is out of reach (its address and the client's last connection error), while the client is not connected. */
  unreachable(): string | undefined {
    return this.#closed ? undefined : this.#connection.unreachable();
  }

  /** plainKey is where a mutex's holder lives for the classic recipe: `{prefix:mutex:name}`. */
  plainKey(name: string): string {
    return `{${this.#prefix}:mutex:${name}}`;
  }

  /** Subscribes to this store's channel on first need; returns the channel. */
  async #subscribe(): Promise<string> {
    // `owner` alone wakes a waiter to ask again; `owner token ttlMs ask` is a hand-off, taken
    // as one only if `ask` is the waiter's latest request (see `grant`).
    this.#subscription ??= this.#client.subscribe(this.#channel, (message) => {
      const [owner = '', token, ttlMs, ask] = message.split(' ');
      const current = token && ttlMs && ask !== undefined && ask === this.#asks.get(owner);
      const handOff: DatedHandOff | undefined = current ? { token: BigInt(token), ttlMs: Number(ttlMs), ask } : undefined;
      this.#latches.fire(owner, handOff);
    }, this.#drop.signal);
    try {
      await this.#call(() => this.#subscription!);
    } catch (error) {
      this.#subscription = null;
      throw error;
    }
    this.#subscribed = true;
    return this.#channel;
  }

  /**
   * Runs a script on a resource by EVALSHA, loading it with EVAL once if the server does not
   * know it (NOSCRIPT). KEYS are the resource's four keys (see lua/common.lua); the kind goes last.
   */
  #run(compiled: Script, resource: ResourceKey, ...args: (string | number | typeof MARK_KEY)[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ClosedError('This Redis store'));
    // A client without an offline queue fails a command sent while it makes its first
    // connection: the command waits for that connection instead (core bounds the wait).
    const connecting = this.#client.firstConnection?.();
    if (connecting) return connecting.then(() => this.#run(compiled, resource, ...args), (error: unknown) => Promise.reject(this.#failure(error)));
    const tag = `{${this.#prefix}:${resource.kind}:${resource.name}}`;
    const mark = args.at(-1) === MARK_KEY;
    const keys = [mark ? `${tag}:m` : `${tag}:s`, tag, `${tag}:h`, `${tag}:q`];
    const argv = (mark ? args.slice(0, -1) : args).map(String);
    argv.push(this.#fenced, resource.kind);
    return this.#client.evalsha(compiled.sha, keys, argv).catch((error: unknown) => {
      if (!String((error as Error).message).startsWith('NOSCRIPT')) throw this.#failure(error);
      return this.#client.eval(compiled.source, keys, argv).catch((again: unknown) => {
        throw this.#failure(again);
      });
    });
  }

  /** The error of a failed command: what Redis answered, or, when the client is not connected, where and why it cannot reach Redis. */
  #failure(error: unknown): Error {
    if (error instanceof ClosedError) return error;
    const message = (error as Error).message;
    const unreachable = isReplyError(error) ? undefined : this.#connection.unreachable(message);
    return new StoreUnavailableError('redis', unreachable ?? `Redis failed: ${message}`, { cause: error });
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('This Redis store');
    try {
      return await operation();
    } catch (error) {
      throw this.#failure(error);
    }
  }
}

/** globLiteral escapes the characters that a Redis MATCH pattern reads as wildcards. */
function globLiteral(text: string): string {
  return text.replace(/[*?[\]\\]/g, '\\$&');
}

/** The last argument of `#run` that puts the resource's mark hash (`:m`) in place of its state hash (`:s`) as KEYS[1]. */
const MARK_KEY = Symbol('mark');
const HELD: ExtendResult = Object.freeze({ held: true });
const NOT_HELD: ExtendResult = Object.freeze({ held: false });
const NEVER_SIGNAL = new AbortController().signal;

/** aborted resolves with null when `signal` aborts. */
function aborted(signal: AbortSignal): Promise<null> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(null);
    else signal.addEventListener('abort', () => resolve(null), { once: true });
  });
}

/**
 * createRedisStore makes a store on your connected client: ioredis (`new Redis(url)`, `new
 * Cluster(nodes)`) or node-redis (`await createClient({ url }).connect()`, `createCluster`).
 */
export function createRedisStore(client: RedisClient, options?: RedisStoreOptions & { fencing?: true }): RedisStore<true>;
export function createRedisStore(client: RedisClient, options: RedisStoreOptions & { fencing: false }): RedisStore<false>;
export function createRedisStore(client: RedisClient, options?: RedisStoreOptions): RedisStore<boolean>;
export function createRedisStore(client: RedisClient, options?: RedisStoreOptions): RedisStore<boolean> {
  return new RedisStore(client, options);
}
