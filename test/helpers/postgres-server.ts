/**
 * Starts a real PostgreSQL server on a free loopback port for a test file (initdb into a
 * temporary folder, then `postgres`, both as the user `postgres`: they refuse root), restarts
 * it on the same data, pauses it, and stops it by its PID; and a PgBouncer in transaction
 * mode in front of it. Each backend of PostgreSQL makes a session of its own (setsid), so a
 * signal to the postmaster's group would miss them: pausing (SIGSTOP) and killing signal the
 * postmaster and each of its children by PID. `scripts/setup` installs the servers
 * (Debian packages postgresql and pgbouncer) when they are missing.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { adopt } from './children.js';
import { cleanUp } from './clean-up.js';
import { freePort } from './process.js';

export interface PostgresServer {
  readonly port: number;
  /** The postmaster's PID (a new one after each restart). */
  readonly pid: number;
  /** `postgres://postgres@127.0.0.1:port/postgres`. */
  readonly url: string;
  /** pool: a new pg Pool on the server, ended by `stop()`. */
  pool(options?: pg.PoolConfig): pg.Pool;
  /** restart SIGKILLs the postmaster and its backends and starts it again on the same data (crash recovery). */
  restart(): Promise<void>;
  /** down SIGKILLs the server and leaves it down; `up` starts it again on the same data. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** pause SIGSTOPs the postmaster and every backend: sockets stay open and nothing answers; `resume` SIGCONTs them. */
  pause(): void;
  resume(): void;
  /** query runs one statement on a connection of its own (for a test's checks and faults). */
  query(text: string, values?: unknown[]): Promise<pg.QueryResult>;
  stop(): Promise<void>;
}

/** PgBouncer: a PgBouncer in transaction pooling mode in front of a server. */
export interface PgBouncer {
  readonly port: number;
  readonly pid: number;
  /** `postgres://postgres@127.0.0.1:port/postgres`, through the pooler. */
  readonly url: string;
  stop(): Promise<void>;
}

let owner: { uid: number; gid: number } | null = null;

/** The user `postgres`, which initdb, postgres and pgbouncer run as. */
function postgresUser(): { uid: number; gid: number } {
  owner ??= {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
  return owner;
}

/** A temporary folder owned by the user `postgres`. */
function folderForPostgres(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), name));
  const user = postgresUser();
  chownSync(dir, user.uid, user.gid);
  return dir;
}

/** The PIDs of a process's children (a postmaster's backends and helpers). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)]).toString().split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there is none
  }
}

/** Sends `signal` to a process and each of its children, by PID. */
function signalFamily(pid: number, signal: NodeJS.Signals): void {
  for (const target of [pid, ...childrenOf(pid)]) {
    try {
      process.kill(target, signal);
    } catch {
      // gone meanwhile
    }
  }
}

/** Kills a postmaster and its children (SIGKILL, the postmaster stopped first so that it starts no more) and waits for it to exit, 10 s at most. */
async function killGroup(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    process.kill(child.pid!, 'SIGSTOP');
  } catch {
    // gone
  }
  const family = childrenOf(child.pid!);
  for (const pid of family) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  child.kill('SIGKILL');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`PID ${child.pid} did not exit within 10 s of SIGKILL`)), 10_000);
  })]).finally(() => clearTimeout(timer));
  // Wait until none of them runs, so that a restart finds no old shared memory in use.
  for (const end = Date.now() + 10_000; family.some(running) && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 20));
}

/** running: the process exists and is not a zombie (an exited child whose parent is gone, which nobody may reap). */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Stops a server by fast shutdown (SIGINT: its backends end and the postmaster reaps them, so
 * none is left for an init that may not reap), then SIGKILLs whatever is left after 5 s.
 */
async function shutDown(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  signalFamily(child.pid!, 'SIGCONT');
  child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
  clearTimeout(timer);
  await killGroup(child);
}

/** Polls `check` until it resolves, 20 s at most; then fails with `what` and the last error. */
async function until(check: () => Promise<unknown>, what: string, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`${what} within 20 s: ${(error as Error).message}\n${output()}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

async function ping(port: number): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres', connectionTimeoutMillis: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** startPostgres: a fresh server; `settings` are extra `-c name=value` settings. */
export async function startPostgres(settings: Record<string, string> = {}): Promise<PostgresServer> {
  const dir = folderForPostgres('baton-pg-');
  const data = join(dir, 'data');
  const user = postgresUser();
  execFileSync('initdb', ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale', 'C'], { uid: user.uid, gid: user.gid, stdio: 'pipe', cwd: dir });
  const port = await freePort();
  const pools: pg.Pool[] = [];
  const options = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: dir,
    // A commit is written to the kernel before it answers (a SIGKILLed server loses nothing
    // committed); not synced to disk, which only a host crash would need.
    fsync: 'off',
    max_connections: '200',
    ...settings,
  };
  const args = ['-D', data, '-p', String(port), ...Object.entries(options).flatMap(([name, value]) => ['-c', `${name}=${value}`])];

  let output = '';
  const launch = async (): Promise<ChildProcess> => {
    output = '';
    const child = adopt(spawn('postgres', args, { uid: user.uid, gid: user.gid, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), `postgres on port ${port}`);
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
    try {
      await until(() => ping(port), `postgres did not start serving on port ${port}`, child, () => output);
    } catch (error) {
      await killGroup(child);
      throw error;
    }
    return child;
  };

  let child: ChildProcess;
  try {
    child = await launch();
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const alive = (): boolean => child.exitCode === null && child.signalCode === null;
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  const signalGroup = (signal: NodeJS.Signals): void => {
    if (alive()) signalFamily(child.pid!, signal);
  };
  return {
    port,
    get pid() {
      return child.pid!;
    },
    url,
    pool(extra = {}) {
      const pool = new pg.Pool({ connectionString: url, ...extra });
      pool.on('error', () => undefined); // an idle connection the server dropped; the next query gets a new one
      pools.push(pool);
      return pool;
    },
    async restart() {
      await killGroup(child);
      child = await launch();
    },
    async down() {
      await killGroup(child);
    },
    async up() {
      if (alive()) return;
      child = await launch();
    },
    pause: () => signalGroup('SIGSTOP'),
    resume: () => signalGroup('SIGCONT'),
    async query(text, values) {
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return await client.query(text, values);
      } finally {
        await client.end().catch(() => undefined);
      }
    },
    stop: () => cleanUp(`stop postgres on port ${port}`, {
      'end its pools': async () => {
        signalGroup('SIGCONT');
        await Promise.all(pools.splice(0).map((pool) => Promise.race([pool.end().catch(() => undefined), new Promise((resolve) => setTimeout(resolve, 1000).unref())])));
      },
      'stop the server': () => shutDown(child),
      'remove its folder': () => rmSync(dir, { recursive: true, force: true }),
    }),
  };
}

/** startPgBouncer: a PgBouncer in transaction pooling mode in front of `server`, logging in as `postgres`. */
export async function startPgBouncer(server: PostgresServer, poolSize = 20): Promise<PgBouncer> {
  const dir = folderForPostgres('baton-pgbouncer-');
  const port = await freePort();
  const user = postgresUser();
  const config = join(dir, 'pgbouncer.ini');
  writeFileSync(config, [
    '[databases]',
    `postgres = host=127.0.0.1 port=${server.port} dbname=postgres user=postgres`,
    '[pgbouncer]',
    'listen_addr = 127.0.0.1',
    `listen_port = ${port}`,
    'unix_socket_dir =',
    'auth_type = any',
    'pool_mode = transaction',
    `default_pool_size = ${poolSize}`,
    'max_client_conn = 500',
    'ignore_startup_parameters = extra_float_digits,options',
    'server_reset_query =',
    '',
  ].join('\n'));
  chownSync(config, user.uid, user.gid);
  let output = '';
  const child = adopt(spawn('pgbouncer', [config], { uid: user.uid, gid: user.gid, cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), `pgbouncer on port ${port}`);
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-20_000)));
  try {
    await until(() => ping(port), `pgbouncer did not start serving on port ${port}`, child, () => output);
  } catch (error) {
    await killGroup(child);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    port,
    pid: child.pid!,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: () => cleanUp(`stop pgbouncer on port ${port}`, {
      'kill it': () => killGroup(child),
      'remove its folder': () => rmSync(dir, { recursive: true, force: true }),
    }),
  };
}
