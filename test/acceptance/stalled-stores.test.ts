/**
 * Acceptance of the store contract's time bounds against stores that stop answering, with
 * real servers on loopback and real signals: a server SIGSTOPped (its sockets stay open and
 * nothing answers, as in a partition), a fault proxy in blackhole mode, a SQLite file whose
 * write lock another process holds while SIGSTOPped, and the memory store wrapped so that it
 * never answers (the one stall that is a wrapper). The client is a process of its own
 * (test/fixtures/stall-client.ts) so that the test can see it exit by itself.
 *
 * The promises, from the contract, and the tolerance each is given here:
 * - `acquire({ timeoutMs: 1000 })` rejects with LockTimeoutError within 1.1 s, with no
 *   tolerance added: core ends it at its deadline + the final try's 40 ms + up to one 10 ms
 *   sweep, 1 041-1 060 ms as measured here, so the 100 ms margin is the promise's own;
 * - `acquire({ signal })` rejects with the signal's reason within 100 ms of the abort, with no
 *   tolerance added (measured 1-55 ms: one sweep, and the queued place's 40 ms clean-up);
 * - `close()` returns within CLOSE_TIMEOUT_MS + CLOSE_TOLERANCE_MS. close() aims 20 ms under its
 *   bound and its last step waits on a timer (measured 980-995 ms, 700-720 ms on SQLite); the
 *   150 ms are for that timer and this process's reading of it firing late on a loaded 2-core
 *   machine, never for work close() does past its bound;
 * - the process exits by itself within EXIT_WITHIN_MS of printing `closed`: nothing it opened
 *   may keep it alive (a socket, a reconnect timer, a subscription, a gRPC call). Measured
 *   8-20 ms, and up to ~1.3 s on etcd, where etcd3 waits up to 1 s before it closes a channel
 *   still connecting;
 * - no unhandled rejection and no uncaught exception, before or after close.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { CLOSE_TIMEOUT_MS, monotonicNow } from '../../src/index.js';
import { DYNALITE_CREDENTIALS, DYNALITE_REGION, startDynalite } from '../helpers/dynalite-server.js';
import { startEtcd } from '../helpers/etcd-server.js';
import { Fixture, killProcess } from '../helpers/process.js';
import { startRedis, startRedisCluster, type RedisServer } from '../helpers/redis-server.js';
import { createFaultProxy } from '../faults/proxy.js';

const require = createRequire(import.meta.url);

const TIMEOUT_BOUND_MS = 1100;
const ABORT_BOUND_MS = 100;
const CLOSE_TOLERANCE_MS = 150;
const EXIT_WITHIN_MS = 2000;

/** A stall the test can start and end: SIGSTOP and SIGCONT, or a proxy's blackhole and pass. */
interface Stall {
  readonly url: string;
  /**
   * What `acquire({ timeoutMs })` rejects with: LockTimeoutError, or for a Redlock quorum
   * QuorumError, which it documents (docs/errors.md) for too few nodes answering: each node's
   * call is cut at `nodeTimeoutMs`, and the quorum says which failed instead of waiting on.
   */
  readonly rejectsWith?: string;
  stall(): void | Promise<void>;
  resume(): void;
}

/**
 * Runs the client on `stall.url`, stalls the store once the client is warm, lets the client
 * measure, and checks each promise. Clean-up (resume, then kill the client) runs whatever
 * happens, and a clean-up failure never replaces the test's own.
 */
async function measureStall(t: TestContext, stall: Stall): Promise<void> {
  const client = new Fixture('stall-client.js', [stall.url], {}, { stdin: true });
  try {
    await client.waitFor((e) => e.e === 'ready', 20_000);
    await stall.stall();
    client.send('go');
    const timeout = await client.waitFor((e) => e.e === 'timeout', 10_000);
    const abort = await client.waitFor((e) => e.e === 'abort', 10_000);
    const closed = await client.waitFor((e) => e.e === 'closed', 10_000);
    const exit = await Promise.race([client.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), EXIT_WITHIN_MS + 1000).unref())]);
    const exitedAt = monotonicNow();
    const resources = client.events.findLast((e) => e.e === 'resources');
    const unhandled = client.events.filter((e) => e.e === 'unhandled');
    const exitMs = exitedAt - closed.at;
    t.diagnostic(`acquire timeout settled in ${fmt(timeout.ms)} ms (${String(timeout.name)}), abort rejected ${fmt(abort.ms)} ms after it, close took ${fmt(closed.ms)} ms, exited ${exit ? fmt(exitMs) : '>3000'} ms after closed`);

    assert.deepEqual(unhandled, [], 'no unhandled rejection or uncaught exception');
    assert.equal(timeout.name, stall.rejectsWith ?? 'LockTimeoutError', `acquire({ timeoutMs: 1000 }) rejected with ${String(timeout.name)}: ${String(timeout.message)}`);
    assert.ok((timeout.ms as number) <= TIMEOUT_BOUND_MS, `acquire({ timeoutMs: 1000 }) settled after ${fmt(timeout.ms)} ms`);
    assert.equal(abort.sameReason, true, `acquire({ signal }) rejected with ${String(abort.name)}: ${String(abort.message)}, not the signal's reason`);
    assert.ok((abort.ms as number) <= ABORT_BOUND_MS, `acquire({ signal }) rejected ${fmt(abort.ms)} ms after the abort`);
    assert.ok((closed.ms as number) <= CLOSE_TIMEOUT_MS + CLOSE_TOLERANCE_MS, `close() took ${fmt(closed.ms)} ms`);
    assert.ok(exit !== null && exitMs <= EXIT_WITHIN_MS, `the client did not exit within ${EXIT_WITHIN_MS} ms of closing; active resources: ${JSON.stringify(resources?.active)}`);
    assert.deepEqual(exit, { code: 0, signal: null }, client.stderr);
  } finally {
    stall.resume();
    client.kill('SIGKILL');
    await client.exited;
  }
}

const fmt = (ms: unknown): string => (typeof ms === 'number' ? ms.toFixed(1) : String(ms));

/** Runs `body` on `server`s, then stops them whatever happens; a failure to stop is reported only when `body` passed. */
async function withServers<S extends { stop(): Promise<void> }>(servers: S[], body: () => Promise<void>): Promise<void> {
  let failed = false;
  try {
    await body();
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    const stops = await Promise.allSettled(servers.map((server) => server.stop()));
    const error = stops.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (error && !failed) throw error.reason;
  }
}

const paused = (servers: readonly RedisServer[], url: string): Stall => ({
  url,
  stall: () => servers.forEach((s) => s.pause()),
  resume: () => servers.forEach((s) => s.resume()),
});

describe('a stalled store: acquire, abort and close keep their bounds, and the process exits', { timeout: 120_000 }, () => {
  it('memory, wrapped so that no call ever answers', async (t) => {
    await measureStall(t, { url: 'memory:', stall: () => undefined, resume: () => undefined });
  });

  it('SQLite, its write lock held by a SIGSTOPped process', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-stall-'));
    const path = join(dir, 'locks.db');
    let locker: ChildProcess | null = null;
    try {
      await measureStall(t, {
        url: `sqlite:${path}`,
        stall: async () => {
          // Another process takes the database's write lock, and is stopped holding it.
          const script = `
            const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
            const db = new Database(${JSON.stringify(path)});
            db.exec('BEGIN IMMEDIATE');
            process.stdout.write('locked\\n');
            setInterval(() => {}, 1000);
          `;
          locker = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
          await new Promise<void>((resolve, reject) => {
            const timer = setTimeout(() => reject(new Error('the locking process did not take the write lock within 10 s')), 10_000);
            locker!.stdout!.once('data', () => {
              clearTimeout(timer);
              resolve();
            });
          });
          locker.kill('SIGSTOP');
        },
        resume: () => void locker?.kill('SIGCONT'),
      });
    } finally {
      await killProcess(locker);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('Redis, SIGSTOPped', async (t) => {
    const server = await startRedis();
    await withServers([server], () => measureStall(t, paused([server], server.url)));
  });

  it('Redis, behind a fault proxy in blackhole mode', async (t) => {
    const server = await startRedis();
    const proxy = await createFaultProxy({ port: server.port });
    await withServers([server, { stop: () => proxy.close() }], () => measureStall(t, {
      url: `redis://127.0.0.1:${proxy.port}`,
      stall: () => proxy.set('blackhole'),
      resume: () => proxy.set('pass'),
    }));
  });

  it('a Redlock quorum of 3 Redis servers, all SIGSTOPped', async (t) => {
    const servers: RedisServer[] = [];
    await withServers(servers, async () => {
      for (let i = 0; i < 3; i++) servers.push(await startRedis());
      await measureStall(t, { ...paused(servers, `redis+quorum://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`), rejectsWith: 'QuorumError' });
    });
  });

  it('a Redis Cluster of 3 masters, all SIGSTOPped', async (t) => {
    const cluster = await startRedisCluster(3);
    await withServers([cluster], () => measureStall(t, paused([...cluster.nodes], `redis+cluster://${cluster.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`)));
  });

  it('DynamoDB (dynalite), SIGSTOPped', async (t) => {
    // The client's SDK finds its credentials in the environment it inherits; dynalite checks none.
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: DYNALITE_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: DYNALITE_CREDENTIALS.secretAccessKey });
    const server = await startDynalite();
    await withServers([server], () => measureStall(t, {
      url: `dynamodb://127.0.0.1:${server.port}/stalled?region=${DYNALITE_REGION}&create=true`,
      stall: () => server.pause(),
      resume: () => server.resume(),
    }));
  });

  it('etcd, its member SIGSTOPped', async (t) => {
    const cluster = await startEtcd(1);
    await withServers([cluster], () => measureStall(t, {
      url: `etcd://${cluster.endpoints[0]!.slice('http://'.length)}`,
      stall: () => cluster.pause(0),
      resume: () => cluster.resume(0),
    }));
  });

  it('etcd, behind a fault proxy in blackhole mode', async (t) => {
    const cluster = await startEtcd(1);
    const port = Number(new URL(cluster.endpoints[0]!).port);
    const proxy = await createFaultProxy({ port });
    await withServers([cluster, { stop: () => proxy.close() }], () => measureStall(t, {
      url: `etcd://127.0.0.1:${proxy.port}`,
      stall: () => proxy.set('blackhole'),
      resume: () => proxy.set('pass'),
    }));
  });
});
