import { randomBytes } from 'node:crypto';
import { storeCall, timeLeft } from '../../core/call.js';
import { systemClock } from '../../core/clock.js';
import { backoffMs, sleep } from '../../core/timing.js';
import { checkBoolean, checkDuration, checkFunction, checkOptions } from '../../core/validate.js';
import { WakeLatches } from '../../core/wake-latch.js';
import { ClosedError, InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import { CLOSE_TIMEOUT_MS, storageKey, type ExtendResult, type GrantRequest, type GrantResult, type HandOff, type HoldMode, type LockKind, type LockStore, type ResourceKey, type ResourceState, type StoreCall } from '../../store.js';
import { Listener, type PgListenClient } from './listen.js';
import { SCHEMA_VERSION, schemaSql, statements, type Statements } from './sql.js';

/** PgRow: one row of a result, by column name. */
export type PgRow = Record<string, unknown>;

/**
 * PgExecutor: anything that runs one statement with bind parameters: a `pg` Pool or Client,
 * or an adapter over another driver (postgres.js's `sql.unsafe(text, values)`, an ORM's raw
 * query). It answers `{ rows }` (node-postgres) or the rows themselves. Called without
 * `values`, it must run a text of several statements (the schema migration) as one simple
 * query. Calls must not run inside a transaction of the caller's: each is its own.
 */
export interface PgExecutor {
  query(text: string, values?: unknown[]): Promise<{ rows: PgRow[] } | PgRow[]>;
}

/** PgPoolClient: a connection checked out of a pool; `release(error)` destroys it. */
export interface PgPoolClient extends PgExecutor {
  release(error?: Error | boolean): void;
  /** A pg client emits `'error'` when its socket dies; the store listens while it has the client checked out, so that it never goes unhandled. */
  on?(event: 'error', listener: (error: Error) => void): unknown;
  removeListener?(event: 'error', listener: (error: Error) => void): unknown;
}

/**
 * PgPool: the part of a `pg.Pool` the store uses when given one: each call checks out a
 * connection, so that a call whose caller gave up (its deadline, its signal) destroys that
 * connection and frees whatever the server does for it, instead of leaving it busy.
 */
export interface PgPool extends PgExecutor {
  connect(): Promise<PgPoolClient>;
  end(): Promise<unknown>;
  readonly totalCount: number;
  /** A pg Pool's connection settings and Client class: from them the store makes its LISTEN connection by default. */
  readonly options?: Record<string, unknown>;
  readonly Client?: new (config: Record<string, unknown>) => PgListenClient;
}

/** PostgresStoreOptions configures `createPostgresStore`. */
export interface PostgresStoreOptions {
  /** Schema of the store's tables and functions, made on first use. Default `baton`. */
  schema?: string;
  /** Prefix of every key, so that several apps can share one schema. Default `baton`. */
  prefix?: string;
  /**
   * Wake waiters by LISTEN/NOTIFY. Default true when the store can make a LISTEN connection
   * (`listen` given, or a `pg.Pool` given); with false, or without a way to listen, waiters
   * poll with backoff and the store's retry hint.
   */
  notify?: boolean;
  /**
   * listen makes the store's LISTEN connection: a new, unconnected `pg.Client` on a direct
   * connection to the server (never one through a transaction pooler, never a pooled one).
   * Default, for a `pg.Pool`: a `Client` with the pool's settings.
   */
  listen?: () => PgListenClient;
  /** End the pool on `close()`; for a pool the store was given to own (`openStore` does). Default false. */
  closeClient?: boolean;
  /** The longest a call takes when its caller sets no tighter bound, in ms. Default 5000. */
  timeoutMs?: number;
}

/** SQLSTATE classes and codes that mean the server could not do the call now, as opposed to a mistake. */
const LOCK_NOT_AVAILABLE = '55P03';
const QUERY_CANCELED = '57014';
const INSUFFICIENT_PRIVILEGE = '42501';
const MISSING = new Set(['42P01', '3F000', '42883']); // undefined table, schema, function

/** PRUNE_BATCH: how many resources one statement of `prune` looks at. */
const PRUNE_BATCH = 500;

/** A JSON entry of `baton_states`. */
interface StateEntry {
  owner: string;
  mode: HoldMode;
  held: boolean;
  token: string | null;
  ttl: number | string;
  left: number | string;
  value: string | null;
}

/**
 * PostgresStore keeps locks as rows of two tables in one PostgreSQL schema, on the server's
 * clock (`clock_timestamp()`): every operation is one PL/pgSQL function called in one
 * statement (see sql.ts), so it is one round trip, holds no lock past its statement, and
 * uses no session state (transaction poolers such as PgBouncer in transaction mode are
 * fine). Tokens come from a fence per resource that only grows, kept with a store-wide floor
 * across prunes. Waiting is FIFO; a release NOTIFYs the waiters that may now hold on their
 * store's channel, which each store LISTENs to on one dedicated connection.
 */
export class PostgresStore implements LockStore {
  readonly name = 'postgres';
  readonly guarantees: { readonly clock: 'server'; readonly scope: 'network'; readonly fencing: true; readonly fifo: true; readonly notify: boolean; readonly outlivesClient: true; readonly mixedModes: true };
  readonly defaultTimeoutMs: number;
  /** schema the store's tables live in. */
  readonly schema: string;
  /** wait: present when the store listens for wake-ups (`guarantees.notify`); see `LockStore.wait`. */
  readonly wait?: (key: ResourceKey, owner: string, call: StoreCall) => Promise<HandOff | void>;
  readonly #executor: PgExecutor;
  readonly #pool: PgPool | null;
  readonly #sql: Statements;
  readonly #prefix: string;
  readonly #closeClient: boolean;
  readonly #latches = new WakeLatches(systemClock);
  readonly #listener: Listener | null;
  readonly #channel: string;
  #ready: Promise<void> | null = null;
  /** The last failure to reach the server, until a call succeeds again. */
  #unreachable: string | undefined;
  #closed = false;

  constructor(executor: PgExecutor, options?: PostgresStoreOptions) {
    if (typeof executor !== 'object' || executor === null || typeof (executor as PgExecutor).query !== 'function') {
      throw new InvalidArgumentError('executor', 'Expected a pg Pool or Client, or an object with query(text, values)');
    }
    const o = checkOptions<PostgresStoreOptions>(options, 'options', ['schema', 'prefix', 'notify', 'listen', 'closeClient', 'timeoutMs']);
    this.schema = checkSchema(o.schema ?? 'baton');
    if (o.prefix !== undefined && (typeof o.prefix !== 'string' || o.prefix.length === 0 || o.prefix.includes(':'))) {
      throw new InvalidArgumentError('prefix', `Expected \`prefix\` to be a non-empty string without ":", got ${String(o.prefix)}`);
    }
    if (o.listen !== undefined) checkFunction(o.listen, 'listen');
    this.#executor = executor;
    this.#pool = isPool(executor) ? executor : null;
    this.#sql = statements(this.schema);
    this.#prefix = o.prefix ?? 'baton';
    this.#closeClient = checkBoolean(o.closeClient, 'closeClient') ?? false;
    this.defaultTimeoutMs = checkDuration(o.timeoutMs ?? 5000, 'timeoutMs');
    this.#channel = `baton_wake_${randomBytes(8).toString('hex')}`;
    const pool = this.#pool;
    const make = o.listen ?? (pool?.Client && pool.options ? () => new pool.Client!({ ...pool.options, keepAlive: true }) : undefined);
    const notify = (checkBoolean(o.notify, 'notify') ?? true) && make !== undefined;
    this.#listener = notify ? new Listener(make!, this.#channel, (owner) => this.#latches.fire(owner), () => this.#wakeAll()) : null;
    if (notify) this.wait = (_key, owner, call) => this.#latches.wait(owner, timeLeft(call), call.signal);
    this.guarantees = Object.freeze({ clock: 'server', scope: 'network', fencing: true, fifo: true, notify, outlivesClient: true, mixedModes: true } as const);
  }

  /** open makes the schema if it is missing or older; every method does it first, so calling it yourself only makes errors come early. */
  open(call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('This PostgreSQL store'));
    this.#ready ??= this.#migrate(call).catch((error: unknown) => {
      this.#ready = null;
      throw error;
    });
    return this.#ready;
  }

  async grant(request: GrantRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<GrantResult> {
    const wake = request.enqueue && this.#listener ? this.#listening() : null;
    return this.#latches.during(request.owner, request.enqueue, async () => {
      const { kind, name } = request.key;
      const row = (await this.#run(this.#sql.grant, [this.#id(request.key), kind, name, request.owner, request.mode, request.limit, request.ttlMs, request.enqueue, request.queueTtlMs, request.value ?? null, wake, waitMs(call)], call))[0]!;
      const status = Number(row.status);
      if (status === 1) return { granted: true, token: BigInt(row.token as string) } as const;
      if (status === 2) return { granted: false, limitInUse: Number(row.lim_in_use) } as const;
      const retry = Number(row.retry_ms);
      return { granted: false, position: Number(row.pos), ...(retry >= 0 ? { retryAfterMs: retry } : {}) } as const;
    });
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ExtendResult> {
    const row = (await this.#run(this.#sql.extend, [this.#id(key), owner, ttlMs, waitMs(call)], call))[0]!;
    return row.held === true ? HELD : NOT_HELD;
  }

  async release(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    this.#latches.forget(owner);
    const row = (await this.#run(this.#sql.release, [this.#id(key), owner, waitMs(call)], call, false))[0]!;
    return row.removed === true;
  }

  async forceRelease(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    const row = (await this.#run(this.#sql.forceRelease, [this.#id(key), waitMs(call)], call, false))[0]!;
    return Number(row.removed);
  }

  async proclaim(key: ResourceKey, owner: string, value: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const row = (await this.#run(this.#sql.proclaim, [this.#id(key), owner, value, waitMs(call)], call))[0]!;
    return row.held === true;
  }

  async inspect(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState> {
    const row = (await this.#run(this.#sql.states, [this.#id(key), null], call))[0];
    return row ? stateOf(row) : { key: { kind: key.kind, name: key.name }, fence: 0n, holders: [], waiters: [] };
  }

  async list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    return (await this.#run(this.#sql.states, [null, this.#idPrefix(filter)], call)).map(stateOf);
  }

  /**
   * prune: see `LockStore.prune`. Resources are looked at `PRUNE_BATCH` at a time, each
   * batch one statement; the highest fence it removes becomes the floor that new names'
   * fences start above. A resource being written at that moment is left for the next prune.
   */
  async prune(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    let removed = 0;
    for (let after = ''; ;) {
      const row = (await this.#run(this.#sql.prune, [this.#idPrefix(filter), after, PRUNE_BATCH], call, false))[0]!;
      removed += Number(row.removed);
      if (row.last === null || row.last === undefined) return removed;
      after = row.last as string;
    }
  }

  /** unreachable: why the server is out of reach (its address, never credentials, and the last connection error), until a call succeeds again. */
  unreachable(): string | undefined {
    return this.#closed ? undefined : this.#unreachable;
  }

  /**
   * close ends the LISTEN connection and wakes local waiters; the pool or client you passed
   * stays open unless `closeClient` was set. When `call` ends first (by default after
   * `CLOSE_TIMEOUT_MS`), the pool's connections are dropped without waiting for the server.
   */
  async close(call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#latches.fireAll();
    this.#listener?.close();
    if (!this.#closeClient) return;
    const bound = call ?? storeCall(CLOSE_TIMEOUT_MS);
    const ending = Promise.resolve()
      .then(() => (this.#pool ? this.#pool.end() : (this.#executor as { end?: () => Promise<unknown> }).end?.()))
      .catch(() => undefined);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeLeft(bound));
      timer.unref();
      bound.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await Promise.race([ending, late]);
    clearTimeout(timer);
    dropSockets(this.#executor);
  }

  /**
   * The channel a waiter records, LISTEN or not: an uncontended grant never waits for the
   * LISTEN connection, which is made in the background on first need. Whenever LISTEN comes
   * up (the first time, or again after a drop), every local waiter asks again, so a waiter
   * queued while nothing listened misses no release.
   */
  #listening(): string {
    const listener = this.#listener!;
    if (!listener.listening) void listener.start();
    return this.#channel;
  }

  /** Once LISTEN is up (again), every local waiter asks again: a wake-up sent while nothing listened was lost. */
  #wakeAll(): void {
    this.#latches.wakeAll();
  }

  /** Runs one statement once the schema is ready; failures become `StoreUnavailableError`. */
  async #run(text: string, values: unknown[], call: StoreCall, idempotent = true): Promise<PgRow[]> {
    if (this.#closed) throw new ClosedError('This PostgreSQL store');
    await this.open(call);
    try {
      return await this.#exec(text, values, call, idempotent);
    } catch (error) {
      // The schema was dropped under a running store: made again on the next call.
      if (MISSING.has(codeOf((error as Error).cause))) this.#ready = null;
      throw error;
    }
  }

  async #migrate(call: StoreCall): Promise<void> {
    try {
      const rows = await this.#exec(this.#sql.version, [], call);
      if (Number(rows[0]?.version) >= SCHEMA_VERSION) return;
    } catch (error) {
      if (!MISSING.has(codeOf((error as Error).cause))) throw error;
    }
    try {
      await this.#exec(schemaSql(this.schema), undefined, call);
    } catch (error) {
      if (codeOf((error as Error).cause) === INSUFFICIENT_PRIVILEGE) {
        throw new StoreUnavailableError('postgres', `The PostgreSQL store cannot make its schema "${this.schema}": ${((error as Error).cause as Error).message}. Grant the user CREATE on the database (or on the schema), or apply docs/postgres-schema.sql as its owner`, { cause: (error as Error).cause });
      }
      throw error;
    }
  }

  /**
   * Runs one statement, bounded by the call. On a pool, it checks out a connection of its own
   * for the statement, and destroys it when the caller gives up (deadline or signal) before
   * the answer: the server's work for it ends with it, and the pool is never left short.
   * While the server cannot be reached (down, restarting, a connection cut), the statement is
   * tried again with backoff until the call's deadline, as a driver's offline queue would:
   * a statement that surely never reached the server always, and one that may have run only
   * when `idempotent` (running it twice answers as once: grant, extend, proclaim, the reads).
   */
  async #exec(text: string, values: unknown[] | undefined, call: StoreCall, idempotent = true): Promise<PgRow[]> {
    const pool = this.#pool;
    for (let attempt = 0; ; attempt++) {
      try {
        let rows: PgRow[];
        if (!pool) {
          rows = rowsOf(await (values === undefined ? this.#executor.query(text) : this.#executor.query(text, values)));
        } else {
          rows = await onPool(pool, text, values, call);
        }
        this.#unreachable = undefined;
        return rows;
      } catch (error) {
        // A caller that gave up gets its own reason, as the contract says, not a failure made of it.
        if (call.signal.aborted) throw call.signal.reason;
        const failure = this.#failure(error);
        const again = isConnectionFailure(error) && (idempotent || isUnsent(error));
        const pause = backoffMs(attempt, 10, 250);
        if (!again || this.#closed || call.signal.aborted || timeLeft(call) <= pause) throw failure;
        await sleep(systemClock, pause, call.signal);
      }
    }
  }

  /** The error of a failed statement: what PostgreSQL answered, or, when it was not reached, where and why. */
  #failure(error: unknown): Error {
    if (error instanceof ClosedError || error instanceof StoreUnavailableError) return error;
    if (error instanceof GaveUp) return new StoreUnavailableError('postgres', `PostgreSQL at ${this.#where()} did not answer by the call's deadline`, { cause: error });
    const code = codeOf(error);
    const message = (error as Error)?.message ?? String(error);
    if (code === LOCK_NOT_AVAILABLE || code === QUERY_CANCELED) {
      return new StoreUnavailableError('postgres', `PostgreSQL did not finish the call in time: ${message} (${code})`, { cause: error });
    }
    if (code.length === 5 && !code.startsWith('08') && !code.startsWith('57')) {
      return new StoreUnavailableError('postgres', `PostgreSQL failed: ${message} (${code})`, { cause: error });
    }
    this.#unreachable = `Cannot reach PostgreSQL at ${this.#where()}: ${message}`;
    return new StoreUnavailableError('postgres', this.#unreachable, { cause: error });
  }

  /** The server's address as the pool's settings give it, without credentials. */
  #where(): string {
    const o = this.#pool?.options ?? (this.#executor as { connectionParameters?: Record<string, unknown> }).connectionParameters;
    if (!o) return 'the server of the given client';
    if (typeof o.connectionString === 'string') {
      try {
        const url = new URL(o.connectionString);
        return `${url.hostname}:${url.port || 5432}`;
      } catch {
        return 'the server of the given connection string';
      }
    }
    return `${String(o.host ?? 'localhost')}:${String(o.port ?? 5432)}`;
  }

  #id(key: ResourceKey): string {
    return storageKey(this.#prefix, key);
  }

  #idPrefix(filter: { kind?: LockKind } | undefined): string {
    return filter?.kind ? `${this.#prefix}:${filter.kind}:` : `${this.#prefix}:`;
  }
}

const HELD: ExtendResult = Object.freeze({ held: true });
const NOT_HELD: ExtendResult = Object.freeze({ held: false });

/** checkSchema: a schema name is an identifier: a letter or underscore, then letters, digits and underscores, 63 at most. */
export function checkSchema(schema: unknown): string {
  if (typeof schema !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new InvalidArgumentError('schema', `Expected \`schema\` to be a PostgreSQL identifier (a letter or "_", then letters, digits or "_", 63 at most), got ${JSON.stringify(schema)}`);
  }
  return schema;
}

/**
 * The ms a call may wait for a resource's row lock on the server: its time left, less a
 * quarter (100 ms at most) so that the server's answer that the lock stayed taken arrives
 * before the client gives up on the call; at least 1.
 */
function waitMs(call: StoreCall): number {
  const left = timeLeft(call);
  return Math.max(1, Math.min(Math.floor(left - Math.min(100, left / 4)), 2 ** 31 - 1));
}

/** The failure of a call whose deadline (or signal) came before the server's answer. */
class GaveUp extends Error {}

function isPool(executor: PgExecutor): executor is PgPool {
  const e = executor as Partial<PgPool>;
  return typeof e.connect === 'function' && typeof e.totalCount === 'number';
}

function rowsOf(result: { rows: PgRow[] } | PgRow[]): PgRow[] {
  return Array.isArray(result) ? result : result.rows;
}

/** Errors of statements that surely never reached the server: the connection for them was never made. */
const unsent = new WeakSet<object>();

function isUnsent(error: unknown): boolean {
  return (typeof error === 'object' && error !== null && unsent.has(error)) || NOT_CONNECTED.has(codeOf(error));
}

/** Codes of a connection that was never made: refused, no route, no such host, the server starting up or shutting down. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', '57P03']);

/** A failure to reach the server or keep a connection to it (no SQLSTATE, class 08, or the server shutting down), as opposed to an answer. */
function isConnectionFailure(error: unknown): boolean {
  const code = codeOf(error);
  return !/^[0-9A-Z]{5}$/.test(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03';
}

function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** Runs a statement on a connection of its own from `pool`, destroyed if the call ends first. */
async function onPool(pool: PgPool, text: string, values: unknown[] | undefined, call: StoreCall): Promise<PgRow[]> {
  call.signal.throwIfAborted();
  let client: PgPoolClient | null = null;
  let gaveUp = false;
  let broken = false;
  const onError = (): void => {
    broken = true;
  };
  let fail!: (error: Error) => void;
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  failed.catch(() => undefined);
  const giveUp = (): void => {
    if (gaveUp) return;
    gaveUp = true;
    if (client) destroy(client);
    fail(call.signal.aborted ? (call.signal.reason as Error) : new GaveUp('no answer by the call\'s deadline'));
  };
  const timer = setTimeout(giveUp, timeLeft(call));
  timer.unref();
  call.signal.addEventListener('abort', giveUp, { once: true });
  try {
    const checkout = pool.connect();
    const c = await Promise.race([checkout, failed]).catch((error: unknown) => {
      // A connection that comes after the caller gave up goes back to the pool, unused.
      checkout.then((late) => late.release(), () => undefined);
      if (!gaveUp && typeof error === 'object' && error !== null) unsent.add(error);
      throw error;
    });
    client = c;
    // The socket dying mid-statement rejects the statement; the client's 'error' event must not go unheard (it would end the process).
    c.on?.('error', onError);
    const result = await Promise.race([values === undefined ? c.query(text) : c.query(text, values), failed]);
    return rowsOf(result);
  } finally {
    clearTimeout(timer);
    call.signal.removeEventListener('abort', giveUp);
    if (client && !gaveUp) {
      const done = client as PgPoolClient;
      if (broken) destroy(done);
      else {
        done.removeListener?.('error', onError);
        done.release();
      }
    }
  }
}

function ignore(): void {}

/** Destroys a pooled connection at once (a stalled server never answers the polite goodbye). */
function destroy(client: PgPoolClient): void {
  // The client is done for: whatever it reports from now on is of no use to anyone.
  client.on?.('error', ignore);
  const stream = (client as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
  try {
    client.release(new Error('baton gave up on the call'));
  } catch {
    // released already
  }
  stream?.destroy?.();
}

/** Destroys the sockets a pg Pool (or Client) the store owns still has, after `end()` had its time. */
function dropSockets(executor: PgExecutor): void {
  const clients = (executor as { _clients?: unknown[] })._clients ?? [executor];
  for (const client of clients) (client as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream?.destroy?.();
}

function stateOf(row: PgRow): ResourceState {
  const entries = (typeof row.entries === 'string' ? JSON.parse(row.entries) : row.entries) as StateEntry[];
  const holders = entries.filter((e) => e.held);
  const waiters = entries.filter((e) => !e.held);
  return {
    key: { kind: row.kind as LockKind, name: row.name as string },
    fence: BigInt(row.fence as string),
    holders: holders.map((e) => ({ owner: e.owner, mode: e.mode, token: BigInt(e.token ?? '0'), ttlMs: Number(e.ttl), expiresInMs: Number(e.left), ...(e.value === null ? {} : { value: e.value }) })),
    waiters: waiters.map((e, position) => ({ owner: e.owner, mode: e.mode, position, expiresInMs: Number(e.left) })),
  };
}

/**
 * createPostgresStore makes a store on a PostgreSQL server reached through `executor`: a `pg`
 * Pool (recommended: calls use its connections, and the store makes its LISTEN connection
 * from its settings), a `pg` Client, or any `{ query(text, values) }`.
 */
export function createPostgresStore(executor: PgExecutor, options?: PostgresStoreOptions): PostgresStore {
  return new PostgresStore(executor, options);
}
