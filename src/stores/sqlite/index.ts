import { existsSync, mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monotonicNow } from '../../core/clock.js';
import { decide, grantable, type QueueEntry } from '../../core/queue.js';
import { backoffMs, sleep } from '../../core/timing.js';
import { systemClock } from '../../core/clock.js';
import { checkDuration, checkOptions } from '../../core/validate.js';
import { ClosedError, InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import { storageKey, type ExtendResult, type GrantRequest, type GrantResult, type HandOff, type LockKind, type LockStore, type ResourceKey, type ResourceState, type StoreCall } from '../../store.js';
import { storeCall, timeLeft } from '../../core/call.js';
import { SCHEMA, SCHEMA_VERSION, SQL } from './schema.js';
import { WakeLatches } from '../../core/wake-latch.js';
import { WakeSocket } from './wake.js';

/** SqliteStatement: the part of a better-sqlite3 statement the store uses. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
  safeIntegers(toggle?: boolean): SqliteStatement;
}

/** SqliteDatabase: the part of a better-sqlite3 `Database` the store uses, so you can pass your own. */
export interface SqliteDatabase {
  prepare(source: string): SqliteStatement;
  exec(source: string): unknown;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  close(): unknown;
  readonly inTransaction: boolean;
}

/** SqliteStoreOptions configures `createSqliteStore`. */
export interface SqliteStoreOptions {
  /** Database file; made (with its folder) if missing. Default: `defaultSqlitePath()`. */
  path?: string;
  /** Your own better-sqlite3 `Database` instead of `path`; the store sets WAL mode on it and leaves it open on `close()`. */
  database?: SqliteDatabase;
  /** Prefix of every key, so that several apps can share one file. Default `baton`. */
  prefix?: string;
  /** How long to keep retrying while another process holds the database's write lock before failing with `StoreUnavailableError`. Default 5000 ms. */
  busyTimeoutMs?: number;
  /**
   * `full` (default) syncs every commit to disk, so a fencing token is never reissued even
   * after the host loses power; `normal` is faster and survives process crashes, not power loss.
   */
  durability?: 'full' | 'normal';
  /** Wake waiters in other processes with a loopback UDP datagram when a lock frees. Default true; with false, waiters only poll. */
  notify?: boolean;
}

/**
 * defaultSqlitePath: `$XDG_STATE_HOME/baton/locks.db`, or `~/.local/state/baton/locks.db`.
 * Every process of one user on the host shares it.
 */
export function defaultSqlitePath(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'baton', 'locks.db');
}

/** An entry read back from the table. */
interface Row extends QueueEntry {
  readonly wakePort: number | null;
}

interface RawRow {
  owner: string;
  seq: bigint;
  mode: 'exclusive' | 'shared';
  lim: bigint;
  held: bigint;
  token: bigint | null;
  ttl_ms: bigint;
  expires_at: number;
  value: string | null;
  wake_port: bigint | null;
}

type Statements = { [K in keyof typeof SQL]: SqliteStatement };

/** A row whose grant lies more than this far in the future was written before the host rebooted (the monotonic clock restarted): its process is gone. */
const FROM_PREVIOUS_BOOT_MS = 1000;

/**
 * SqliteStore keeps locks in one SQLite file shared by every process on the host, in WAL
 * mode. TTLs run on the host's monotonic clock. Waiting is FIFO; a release wakes the next
 * waiter's process by a loopback datagram, and waiters also poll as a fallback.
 */
export class SqliteStore implements LockStore {
  readonly name = 'sqlite';
  readonly guarantees: { readonly clock: 'host'; readonly scope: 'host'; readonly fencing: true; readonly fifo: true; readonly notify: boolean; readonly outlivesClient: true; readonly mixedModes: true };
  /** A call's default bound: the busy timeout, at least 1 s. */
  readonly defaultTimeoutMs: number;
  /** path of the database file, or null when given a `database`. */
  readonly path: string | null;
  readonly #prefix: string;
  readonly #busyTimeoutMs: number;
  readonly #durability: 'full' | 'normal';
  readonly #given: SqliteDatabase | null;
  readonly #latches = new WakeLatches(systemClock);
  readonly #wake = new WakeSocket(this.#latches);
  #db: SqliteDatabase | null = null;
  #sql: Statements | null = null;
  #opening: Promise<void> | null = null;
  #closed = false;

  constructor(options?: SqliteStoreOptions) {
    const o = checkOptions<SqliteStoreOptions>(options, 'options', ['path', 'database', 'prefix', 'busyTimeoutMs', 'durability', 'notify']);
    if (o.path !== undefined && o.database !== undefined) throw new InvalidArgumentError('path', 'Pass either `path` or `database`, not both');
    if (o.path !== undefined && (typeof o.path !== 'string' || o.path.length === 0)) {
      throw new InvalidArgumentError('path', `Expected \`path\` to be a non-empty string, got ${String(o.path)}`);
    }
    if (o.database !== undefined && (typeof o.database !== 'object' || typeof o.database?.prepare !== 'function')) {
      throw new InvalidArgumentError('database', 'Expected `database` to be a better-sqlite3 Database');
    }
    if (o.prefix !== undefined && (typeof o.prefix !== 'string' || o.prefix.length === 0 || o.prefix.includes(':'))) {
      throw new InvalidArgumentError('prefix', `Expected \`prefix\` to be a non-empty string without ":", got ${String(o.prefix)}`);
    }
    if (o.durability !== undefined && o.durability !== 'full' && o.durability !== 'normal') {
      throw new InvalidArgumentError('durability', `Expected \`durability\` to be "full" or "normal", got ${String(o.durability)}`);
    }
    this.#given = o.database ?? null;
    this.path = this.#given ? null : resolve(o.path ?? defaultSqlitePath());
    this.#prefix = o.prefix ?? 'baton';
    this.#busyTimeoutMs = checkDuration(o.busyTimeoutMs ?? 5000, 'busyTimeoutMs', 0);
    this.#durability = o.durability ?? 'full';
    this.guarantees = Object.freeze({ clock: 'host', scope: 'host', fencing: true, fifo: true, notify: o.notify ?? true, outlivesClient: true, mixedModes: true } as const);
    this.defaultTimeoutMs = Math.max(1000, this.#busyTimeoutMs);
  }

  /** open opens the database and makes the schema; every method calls it, so calling it yourself only makes errors come early. */
  open(): Promise<void> {
    if (this.#closed) return Promise.reject(new ClosedError('This SQLite store'));
    this.#opening ??= this.#open();
    return this.#opening;
  }

  async grant(request: GrantRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<GrantResult> {
    const id = storageKey(this.#prefix, request.key);
    const port = request.enqueue && this.guarantees.notify ? await this.#wake.port() : null;
    const { result, wakes } = await this.#latches.during(request.owner, request.enqueue, async () => {
      const outcome = await this.#transaction<GrantResult>(call, 'IMMEDIATE', (sql, now) => {
        const { live, wakes } = this.#live(sql, id, now);
        const mine = live.find((entry) => entry.owner === request.owner);
        if (mine?.held) return { result: { granted: true, token: mine.token! } as const, wakes };
        const decision = decide(live, request, mine, now);
        if (decision.grant) {
          const { fence, seq } = this.#bump(sql, request.key, id, 1, mine ? 0 : 1);
          sql.upsertEntry.run(id, request.owner, mine?.seq ?? seq, request.mode, request.limit, 1, fence, request.ttlMs, now + request.ttlMs, request.value ?? null, null);
          return { result: { granted: true, token: fence } as const, wakes };
        }
        if (request.enqueue) {
          const seq = mine?.seq ?? this.#bump(sql, request.key, id, 0, 1).seq;
          sql.upsertEntry.run(id, request.owner, seq, request.mode, request.limit, 0, null, request.queueTtlMs, now + request.queueTtlMs, request.value ?? null, port);
        }
        return { result: { granted: false, position: decision.position, retryAfterMs: decision.retryAfterMs } as const, wakes };
      });
      return { ...outcome, granted: outcome.result.granted };
    });
    this.#send(wakes, request.owner);
    return result;
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ExtendResult> {
    const id = storageKey(this.#prefix, key);
    const { result, wakes } = await this.#transaction<ExtendResult>(call, 'IMMEDIATE', (sql, now) => {
      const { live, wakes } = this.#live(sql, id, now);
      if (!live.some((entry) => entry.owner === owner && entry.held)) return { result: { held: false }, wakes };
      sql.extendEntry.run(ttlMs, now + ttlMs, id, owner);
      return { result: { held: true }, wakes };
    });
    this.#send(wakes, owner);
    return result;
  }

  async release(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const id = storageKey(this.#prefix, key);
    this.#latches.forget(owner);
    const { result, wakes } = await this.#transaction(call, 'IMMEDIATE', (sql, now) => {
      const { live, wakes } = this.#live(sql, id, now);
      const rest = live.filter((entry) => entry.owner !== owner);
      if (rest.length === live.length) return { result: false, wakes };
      sql.deleteEntry.run(id, owner);
      return { result: true, wakes: grantable(rest) as Row[] };
    });
    this.#send(wakes, owner);
    return result;
  }

  async forceRelease(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    const id = storageKey(this.#prefix, key);
    const { result, wakes } = await this.#transaction(call, 'IMMEDIATE', (sql, now) => {
      const { live, wakes } = this.#live(sql, id, now);
      const removed = sql.deleteHolders.run(id).changes;
      return { result: removed, wakes: removed > 0 ? (grantable(live.filter((entry) => !entry.held)) as Row[]) : wakes };
    });
    this.#send(wakes, null);
    return result;
  }

  async inspect(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState> {
    const id = storageKey(this.#prefix, key);
    return (await this.#transaction(call, 'DEFERRED', (sql, now) => ({ result: this.#state(sql, id, key, now), wakes: [] }))).result;
  }

  async list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    const prefix = filter?.kind ? `${this.#prefix}:${filter.kind}:` : `${this.#prefix}:`;
    const { result } = await this.#transaction(call, 'DEFERRED', (sql, now) => {
      const rows = sql.resources.all(prefix.length, prefix) as { key: string; kind: LockKind; name: string }[];
      return { result: rows.map((row) => this.#state(sql, row.key, { kind: row.kind, name: row.name }, now)), wakes: [] };
    });
    return result;
  }

  wait(_key: ResourceKey, owner: string, call: StoreCall): Promise<HandOff | void> {
    if (!this.guarantees.notify) return sleep(systemClock, timeLeft(call), call.signal);
    return this.#latches.wait(owner, timeLeft(call), call.signal);
  }

  async close(_call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#wake.close();
    await this.#opening?.catch(() => undefined);
    if (this.#db && !this.#given) this.#db.close();
    this.#db = null;
    this.#sql = null;
  }

  async #open(): Promise<void> {
    let db = this.#given;
    if (!db) {
      let Database: new (path: string, options: { timeout: number }) => SqliteDatabase;
      try {
        Database = (await import('better-sqlite3')).default as unknown as typeof Database;
      } catch (error) {
        throw new StoreUnavailableError('sqlite', 'The SQLite store needs the better-sqlite3 package, which is not installed or did not build: run `npm install better-sqlite3`', { cause: error });
      }
      const path = this.path!;
      try {
        makeFolders(dirname(path));
        db = new Database(path, { timeout: 0 });
      } catch (error) {
        throw new StoreUnavailableError('sqlite', `Cannot open the SQLite database at ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    const opened = db;
    try {
      await this.#retryBusy(storeCall(this.#busyTimeoutMs), () => {
        // A short busy timeout inside SQLite; longer waits happen here, without blocking the event loop.
        opened.pragma('busy_timeout = 20');
        opened.pragma('journal_mode = WAL');
        opened.pragma(`synchronous = ${this.#durability === 'full' ? 'FULL' : 'NORMAL'}`);
        if ((opened.pragma('user_version', { simple: true }) as number) < SCHEMA_VERSION) {
          opened.exec('BEGIN IMMEDIATE');
          try {
            opened.exec(SCHEMA);
            opened.pragma(`user_version = ${SCHEMA_VERSION}`);
            opened.exec('COMMIT');
          } catch (error) {
            if (opened.inTransaction) opened.exec('ROLLBACK');
            throw error;
          }
        }
      });
    } catch (error) {
      if (!this.#given) opened.close();
      throw error;
    }
    const sql = {} as Record<keyof typeof SQL, SqliteStatement>;
    for (const name of Object.keys(SQL) as (keyof typeof SQL)[]) sql[name] = opened.prepare(SQL[name]).safeIntegers(true);
    if (this.#closed) {
      if (!this.#given) opened.close();
      throw new ClosedError('This SQLite store');
    }
    this.#db = opened;
    this.#sql = sql;
  }

  /** Runs `body` in one transaction on the host's clock, retrying while another process holds the write lock. */
  async #transaction<T>(call: StoreCall, mode: 'IMMEDIATE' | 'DEFERRED', body: (sql: Statements, now: number) => { result: T; wakes: Row[] }): Promise<{ result: T; wakes: Row[] }> {
    await this.open();
    return this.#retryBusy(call, () => {
      const db = this.#db;
      if (!db || this.#closed) throw new ClosedError('This SQLite store');
      const sql = this.#sql!;
      (mode === 'IMMEDIATE' ? sql.beginImmediate : sql.beginDeferred).run();
      try {
        const outcome = body(sql, monotonicNow());
        sql.commit.run();
        return outcome;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    });
  }

  /**
   * Runs `attempt` until it is not refused for another process's write lock, for up to the
   * busy timeout, and never past the call's deadline or signal.
   */
  async #retryBusy<T>(call: StoreCall, attempt: () => T): Promise<T> {
    const started = monotonicNow();
    for (let i = 0; ; i++) {
      call.signal.throwIfAborted();
      try {
        return attempt();
      } catch (error) {
        if (error instanceof ClosedError) throw error;
        const code = (error as { code?: unknown }).code;
        const busy = typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'));
        const waited = monotonicNow() - started;
        const left = Math.min(this.#busyTimeoutMs - waited, timeLeft(call));
        if (busy && left > 0) {
          await sleep(systemClock, Math.min(left, backoffMs(i, 2, 100)), call.signal);
          continue;
        }
        if (busy) {
          throw new StoreUnavailableError('sqlite', `The SQLite database ${this.path ?? ''} stayed locked by another process for ${Math.round(waited)} ms`, { cause: error });
        }
        if (typeof code === 'string' && code.startsWith('SQLITE_')) {
          throw new StoreUnavailableError('sqlite', `SQLite failed: ${(error as Error).message} (${code})`, { cause: error });
        }
        throw error;
      }
    }
  }

  /** Issues `tokens` (0 or 1) new tokens and takes `arrivals` (0 or 1) new arrival numbers for a resource. */
  #bump(sql: Statements, key: ResourceKey, id: string, tokens: 0 | 1, arrivals: 0 | 1): { fence: bigint; seq: number } {
    const row = sql.bump.get(id, key.kind, key.name, tokens, arrivals) as { fence: bigint; next_seq: bigint };
    return { fence: row.fence, seq: Number(row.next_seq) };
  }

  /** Reads a resource's entries, deletes the dead ones, and lists whom their removal lets hold. */
  #live(sql: Statements, id: string, now: number): { live: Row[]; wakes: Row[] } {
    const live: Row[] = [];
    let dead = 0;
    for (const raw of sql.entries.all(id) as RawRow[]) {
      const row = toRow(raw);
      if (isLive(row, now)) live.push(row);
      else {
        sql.deleteEntry.run(id, row.owner);
        dead++;
      }
    }
    return { live, wakes: dead > 0 ? (grantable(live) as Row[]) : [] };
  }

  #state(sql: Statements, id: string, key: ResourceKey, now: number): ResourceState {
    const fenceRow = sql.fence.get(id) as { fence: bigint } | undefined;
    const live = (sql.entries.all(id) as RawRow[]).map(toRow).filter((row) => isLive(row, now));
    return {
      key: { kind: key.kind, name: key.name },
      fence: fenceRow?.fence ?? 0n,
      holders: live.filter((e) => e.held).map((e) => ({ owner: e.owner, mode: e.mode, token: e.token!, ttlMs: e.ttlMs, expiresInMs: Math.round(e.expiresAt - now), ...(e.value === undefined ? {} : { value: e.value }) })),
      waiters: live.filter((e) => !e.held).map((e, position) => ({ owner: e.owner, mode: e.mode, position, expiresInMs: Math.round(e.expiresAt - now) })),
    };
  }

  #send(wakes: readonly Row[], except: string | null): void {
    for (const row of wakes) if (row.wakePort !== null && row.owner !== except) this.#wake.send(row.wakePort, row.owner);
  }
}

/**
 * makeFolders makes a folder and its missing parents one level at a time. (Node 20's
 * `mkdirSync(..., { recursive: true })` never returns for some paths under /proc.)
 */
function makeFolders(folder: string): void {
  const missing: string[] = [];
  for (let current = folder; !existsSync(current); current = dirname(current)) {
    if (dirname(current) === current) break;
    missing.unshift(current);
  }
  for (const path of missing) mkdirSync(path);
}

function toRow(raw: RawRow): Row {
  return {
    owner: raw.owner,
    seq: Number(raw.seq),
    mode: raw.mode,
    limit: Number(raw.lim),
    held: raw.held === 1n,
    token: raw.token,
    ttlMs: Number(raw.ttl_ms),
    expiresAt: raw.expires_at,
    ...(raw.value === null ? {} : { value: raw.value }),
    wakePort: raw.wake_port === null ? null : Number(raw.wake_port),
  };
}

function isLive(row: Row, now: number): boolean {
  return row.expiresAt > now && row.expiresAt - row.ttlMs <= now + FROM_PREVIOUS_BOOT_MS;
}

/**
 * createSqliteStore makes the embedded store: one database file that every process on the
 * host can share. `createSqliteStore()` uses `defaultSqlitePath()`.
 */
export function createSqliteStore(options?: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
