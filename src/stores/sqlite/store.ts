import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, fchmodSync, linkSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { monotonicNow } from '../../core/clock.js';
import { backoffMs, sleep } from '../../core/timing.js';
import { systemClock } from '../../core/clock.js';
import { checkDuration, checkOptions } from '../../core/validate.js';
import { ClosedError, InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import type { ExtendResult, GrantRequest, GrantResult, HandOff, LockKind, LockStore, MarkRequest, MarkState, ResourceKey, ResourceState, StoreCall } from '../../store.js';
import { storeCall, timeLeft } from '../../core/call.js';
import { isPromise, LeaseTable, type Awaitable, type TableEntry, type TableResource, type TableTx } from '../table/lease-table.js';
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
  /**
   * Database file; made (with its folder) if missing, readable and writable by the folder's
   * group when the folder has the setgid bit (see `defaultSqlitePath()`). Default:
   * `defaultSqlitePath()`, which is `$BATON_SQLITE_PATH` when set, else a file of the user's own.
   */
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
 * defaultSqlitePath: the file of `createSqliteStore()` and of the store URL `sqlite:` (the
 * CLI's default store). `$BATON_SQLITE_PATH` when set and not empty: an absolute file path,
 * else `InvalidArgumentError`. Otherwise a file of the user's own,
 * `$XDG_STATE_HOME/baton/locks.db` or `~/.local/state/baton/locks.db`: every process of
 * that user shares it, but processes of different users (root's cron and an app user's
 * cron) each get their own file and do not exclude each other. For locks that several users
 * share, give them all one file in a folder of a shared group with the setgid bit
 * (`install -d -m 2770 -g baton /var/lib/baton`): the store makes the file there
 * group-writable (0660), and SQLite gives its -wal and -shm files the file's mode.
 */
export function defaultSqlitePath(env: NodeJS.ProcessEnv = process.env): string {
  const shared = env.BATON_SQLITE_PATH;
  if (shared !== undefined && shared !== '') {
    if (!isAbsolute(shared) || shared.endsWith('/')) {
      throw new InvalidArgumentError('BATON_SQLITE_PATH', `Expected \`BATON_SQLITE_PATH\` to be the absolute path of a file, like /var/lib/baton/locks.db, got ${JSON.stringify(shared)}`);
    }
    return shared;
  }
  const state = env.XDG_STATE_HOME && env.XDG_STATE_HOME.startsWith('/') ? env.XDG_STATE_HOME : join(homedir(), '.local', 'state');
  return join(state, 'baton', 'locks.db');
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
 * SqliteStore keeps locks in one SQLite file, in WAL mode, shared by every process on the
 * host that opens that file. TTLs run on the host's monotonic clock. Waiting is FIFO; a release wakes the next
 * waiter's process by a loopback datagram, and waiters also poll as a fallback. The lease
 * algorithm is `LeaseTable` (stores/table); this class gives it transactions of
 * better-sqlite3 and sends the wake-ups it returns.
 */
export class SqliteStore implements LockStore {
  readonly name = 'sqlite';
  readonly guarantees: { readonly clock: 'host'; readonly scope: 'host'; readonly fencing: true; readonly fifo: true; readonly notify: boolean; readonly outlivesClient: true; readonly mixedModes: true };
  /** A call's default bound: the busy timeout, at least 1 s. */
  readonly defaultTimeoutMs: number;
  /** path of the database file, or null when given a `database`. */
  readonly path: string | null;
  readonly #table: LeaseTable<number>;
  readonly #busyTimeoutMs: number;
  readonly #durability: 'full' | 'normal';
  readonly #given: SqliteDatabase | null;
  readonly #latches = new WakeLatches(systemClock);
  readonly #wake = new WakeSocket(this.#latches);
  #db: SqliteDatabase | null = null;
  #sql: Statements | null = null;
  #tx: TableTx<number> | null = null;
  /** A transaction holds the connection; the others wait in `#turns`. */
  #busy = false;
  readonly #turns: (() => void)[] = [];
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
    this.#table = new LeaseTable<number>({ transaction: (mode, call, body) => this.#transaction(mode, call, body) }, { prefix: o.prefix ?? 'baton', restartedAfterMs: FROM_PREVIOUS_BOOT_MS });
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
    const port = request.enqueue && this.guarantees.notify ? await this.#wake.port() : null;
    const { result, wakes } = await this.#latches.during(request.owner, request.enqueue, async () => {
      const outcome = await this.#table.grant(request, port, call);
      return { ...outcome, granted: outcome.result.granted, limitInUse: outcome.result.granted ? undefined : outcome.result.limitInUse };
    });
    this.#send(wakes);
    return result;
  }

  async downgrade(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const { result, wakes } = await this.#table.downgrade(key, owner, call);
    this.#send(wakes);
    return result;
  }

  advanceMark(key: ResourceKey, request: MarkRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<MarkState & { advanced: boolean }> {
    return this.#table.advanceMark(key, request, call);
  }

  listMarks(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<(MarkState & { key: ResourceKey })[]> {
    return this.#table.listMarks(filter, call);
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ExtendResult> {
    const { result, wakes } = await this.#table.extend(key, owner, ttlMs, call);
    this.#send(wakes);
    return result;
  }

  async release(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    this.#latches.forget(owner);
    const { result, wakes } = await this.#table.release(key, owner, call);
    this.#send(wakes);
    return result;
  }

  async forceRelease(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    const { result, wakes } = await this.#table.forceRelease(key, call);
    this.#send(wakes);
    return result;
  }

  inspect(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState> {
    return this.#table.inspect(key, call);
  }

  list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    return this.#table.list(filter, call);
  }

  /** prune: see `LockStore.prune`; the highest fence it removes becomes the floor that new names' fences start above. */
  prune(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    return this.#table.prune(filter, call);
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
    // A transaction in flight finishes first (its statements are synchronous); the ones after it find the store closed.
    const turn = this.#takeTurn();
    if (turn) await turn;
    if (this.#db && !this.#given) this.#db.close();
    this.#db = null;
    this.#sql = null;
    this.#tx = null;
    this.#giveTurn();
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
        makeForGroup(path);
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
    this.#tx = tableTx(sql);
  }

  /**
   * The table driver: runs `body` in one transaction on the host's clock, retrying while
   * another process holds the write lock. better-sqlite3 answers synchronously, so `body`
   * returns its result synchronously and the transaction runs without yielding; should a
   * body ever answer a promise, transactions still take turns on the connection.
   */
  async #transaction<T>(mode: 'write' | 'read', call: StoreCall, body: (tx: TableTx<number>) => Awaitable<T>): Promise<T> {
    await this.open();
    return this.#retryBusy(call, () => {
      const turn = this.#takeTurn();
      return turn ? turn.then(() => this.#run(mode, body)) : this.#run(mode, body);
    });
  }

  /** Runs one attempt of a transaction on the connection, which it holds until the attempt settles. */
  #run<T>(mode: 'write' | 'read', body: (tx: TableTx<number>) => Awaitable<T>): Awaitable<T> {
    let settling = false;
    try {
      const db = this.#db;
      if (!db || this.#closed) throw new ClosedError('This SQLite store');
      const sql = this.#sql!;
      (mode === 'write' ? sql.beginImmediate : sql.beginDeferred).run();
      try {
        const result = body(this.#tx!);
        if (isPromise(result)) {
          settling = true;
          return this.#settle(db, sql, result);
        }
        sql.commit.run();
        return result;
      } catch (error) {
        if (db.inTransaction) db.exec('ROLLBACK');
        throw error;
      }
    } finally {
      if (!settling) this.#giveTurn();
    }
  }

  /** Commits once an asynchronous body settles, or rolls back, and gives the connection on. */
  async #settle<T>(db: SqliteDatabase, sql: Statements, result: Promise<T>): Promise<T> {
    try {
      const value = await result;
      sql.commit.run();
      return value;
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK');
      throw error;
    } finally {
      this.#giveTurn();
    }
  }

  /** Takes the connection: undefined when it was free, else a promise of the turn, in arrival order. */
  #takeTurn(): Promise<void> | undefined {
    if (!this.#busy) {
      this.#busy = true;
      return undefined;
    }
    return new Promise<void>((resolve) => this.#turns.push(resolve));
  }

  #giveTurn(): void {
    const next = this.#turns.shift();
    if (next) next();
    else this.#busy = false;
  }

  /**
   * Runs `attempt` until it is not refused for another process's write lock, for up to the
   * busy timeout, and never past the call's deadline or signal.
   */
  async #retryBusy<T>(call: StoreCall, attempt: () => T | Promise<T>): Promise<T> {
    const started = monotonicNow();
    for (let i = 0; ; i++) {
      call.signal.throwIfAborted();
      try {
        const result = attempt();
        return isPromise(result) ? await result : result;
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

  /** Sends each entry that may now hold its wake-up (entries that did not queue here have no port: they poll). */
  #send(wakes: readonly TableEntry<number>[]): void {
    for (const entry of wakes) if (entry.wake !== null) this.#wake.send(entry.wake, entry.owner);
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

/**
 * makeForGroup: in a folder with the setgid bit, which its group shares, makes the missing
 * database file readable and writable by owner and group (0660) whatever the umask. SQLite
 * alone makes it 0644 less the umask, so the group's other users could only read it; it
 * gives the -wal and -shm files it makes later the database file's mode (and, run as root,
 * its owner and group), so they follow. Elsewhere, or when the file exists, it does nothing.
 * The file is made under another name and linked into place, so that no process opens it
 * before it has its mode.
 */
function makeForGroup(path: string): void {
  if ((statSync(dirname(path)).mode & 0o2000) === 0 || existsSync(path)) return;
  const made = `${path}.${process.pid}-${randomBytes(4).toString('hex')}.new`;
  const fd = openSync(made, 'wx', 0o660);
  try {
    try {
      fchmodSync(fd, 0o660);
    } finally {
      closeSync(fd);
    }
    linkSync(made, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    unlinkSync(made);
  }
}

/** tableTx: the statements, as the lease algorithm asks them inside a transaction of `#transaction`. */
function tableTx(sql: Statements): TableTx<number> {
  return {
    now: monotonicNow,
    entries: (id) => (sql.entries.all(id) as RawRow[]).map(toEntry),
    fence: (id) => (sql.fence.get(id) as { fence: bigint } | undefined)?.fence,
    bump: (resource, tokens, arrivals) => {
      const row = sql.bump.get(resource.id, resource.kind, resource.name, tokens, arrivals, tokens, arrivals) as { fence: bigint; next_seq: bigint };
      return { fence: row.fence, seq: Number(row.next_seq) };
    },
    putEntry: (id, e) => void sql.upsertEntry.run(id, e.owner, e.seq, e.mode, e.limit, e.held ? 1 : 0, e.token, e.ttlMs, e.expiresAt, e.value ?? null, e.wake),
    extendEntry: (id, owner, ttlMs, expiresAt) => void sql.extendEntry.run(ttlMs, expiresAt, id, owner),
    deleteEntry: (id, owner) => void sql.deleteEntry.run(id, owner),
    deleteHolders: (id) => sql.deleteHolders.run(id).changes,
    resources: (idPrefix, after, limit) =>
      ((after === undefined ? sql.resources.all(idPrefix, rangeEnd(idPrefix)) : sql.resourcesAfter.all(idPrefix, rangeEnd(idPrefix), after, limit ?? -1)) as { key: string; kind: LockKind; name: string }[])
        .map((row): TableResource => ({ id: row.key, kind: row.kind, name: row.name })),
    mark: (id) => {
      const row = sql.mark.get(id) as { at: bigint; note: string | null } | undefined;
      return row && (row.note === null ? { at: Number(row.at) } : { at: Number(row.at), note: row.note });
    },
    putMark: (resource, state) => void sql.putMark.run(resource.id, resource.kind, resource.name, state.at, state.note ?? null),
    marks: (idPrefix) =>
      (sql.marks.all(idPrefix.length, idPrefix) as { key: string; kind: LockKind; name: string; at: bigint; note: string | null }[]).map((row) => ({
        resource: { id: row.key, kind: row.kind, name: row.name },
        at: Number(row.at),
        ...(row.note === null ? {} : { note: row.note }),
      })),
    dropResource: (id) => {
      sql.raiseFloor.run(id);
      sql.deleteEntries.run(id);
      sql.deleteResource.run(id);
    },
  };
}

/** rangeEnd: the first key after every key that starts with `idPrefix`, which ends with ":" (`baton:` or `baton:mutex:`). */
function rangeEnd(idPrefix: string): string {
  return `${idPrefix.slice(0, -1)};`;
}

function toEntry(raw: RawRow): TableEntry<number> {
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
    wake: raw.wake_port === null ? null : Number(raw.wake_port),
  };
}

/**
 * createSqliteStore makes the embedded store: one database file that the processes on the
 * host which open it share. `createSqliteStore()` uses `defaultSqlitePath()`:
 * `$BATON_SQLITE_PATH`, else a file of the user's own.
 */
export function createSqliteStore(options?: SqliteStoreOptions): SqliteStore {
  return new SqliteStore(options);
}
