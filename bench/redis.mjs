// Benchmarks of the Redis store against what a Node user would pick instead, in one run and
// against one redis-server that this script starts (loopback, temporary dir, no persistence):
//   - raw: SET NX PX to take, EVALSHA compare-and-delete to give back (ioredis): the
//     classic recipe, two round trips a cycle, no fencing token;
//   - BLPOP/RPUSH passing one token through a list: the ideal hand-off for one hot key;
//   - redlock 5.0.0-beta.2 and @sesamecare-oss/redlock 1.4 on one server, defaults and tuned;
//   - redis-semaphore 5.8's Mutex, defaults and tuned.
// Usage: npm run build && node --expose-gc bench/redis.mjs [--seconds 3] [--workers 8] [--only seq,tasks,hot,heap] [--hold 1,0] [--warm 8] [--contenders baton,...]
// Prints tables with ratios; nothing here is asserted. See docs/benchmarks.md.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import RedlockV5 from 'redlock';
import { Redlock as SesameRedlock } from '@sesamecare-oss/redlock';
import { Mutex as SemaphoreMutex } from 'redis-semaphore';
import { createBaton, monotonicNow } from 'baton-lock';
import { createRedisStore } from 'baton-lock/redis';
import { fmt, freePort, heapPerHeld, hotKeyStats, rate, table } from './lib.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    workers: { type: 'string', default: '8' },
    tasks: { type: 'string', default: '32' },
    leases: { type: 'string', default: '10000' },
    only: { type: 'string', default: 'seq,tasks,hot,heap' },
    hold: { type: 'string', default: '1,0' },
    warm: { type: 'string', default: '8' },
    contenders: { type: 'string' },
    role: { type: 'string' },
    target: { type: 'string' },
    port: { type: 'string' },
  },
});
const seconds = Number(values.seconds);
const only = new Set(values.only.split(','));
// --contenders baton,redlock5: only these besides the baselines (raw, BLPOP), for a quick look.
const picked = values.contenders ? new Set(['raw', 'blpop', ...values.contenders.split(',')]) : null;
const pick = (ids) => (picked ? ids.filter((id) => picked.has(id)) : ids);
const TTL_MS = 10_000;

// ---- The server -------------------------------------------------------------------------------

async function startServer() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const ping = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    ping.on('error', () => undefined);
    try {
      await ping.connect();
      const version = (await ping.info('server')).match(/redis_version:(\S+)/)?.[1];
      ping.disconnect();
      return {
        port,
        version,
        async stop() {
          child.kill('SIGKILL');
          await new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)));
          rmSync(dir, { recursive: true, force: true });
        },
      };
    } catch (error) {
      ping.disconnect();
      if (i > 100 || child.exitCode !== null) throw new Error(`redis-server did not start on port ${port}`, { cause: error });
      await sleep(50);
    }
  }
}

/** A client that counts the commands it sends, so a table can show round trips per cycle. */
function client(port) {
  const redis = new Redis({ port, host: '127.0.0.1' });
  redis.on('error', () => undefined);
  redis.sent = 0;
  redis.names = new Set();
  const send = redis.sendCommand.bind(redis);
  redis.sendCommand = (command, stream) => {
    redis.sent++;
    redis.names.add(command.name.toLowerCase());
    return send(command, stream);
  };
  return redis;
}

// ---- The contenders ----------------------------------------------------------------------------
// Each makes { acquire(key) -> handle, release(handle), close(), redis }. `acquire` waits until
// granted: a peer that gives up after its own retry budget is simply asked again, as a user would.
const COMPARE_AND_DELETE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
const REDLOCK_TUNED = { retryCount: -1, retryDelay: 10, retryJitter: 5 };
const SEMAPHORE_TUNED = { retryInterval: 1 };

const CONTENDERS = {
  raw: {
    label: 'raw SET NX PX + EVALSHA compare-and-delete',
    async make(port) {
      const redis = client(port);
      const sha = await redis.script('LOAD', COMPARE_AND_DELETE);
      let n = 0;
      const id = `${process.pid}-${Math.random().toString(16).slice(2)}`;
      return {
        redis,
        async acquire(key) {
          const value = `${id}-${n++}`;
          while ((await redis.set(key, value, 'PX', TTL_MS, 'NX')) !== 'OK') await sleep(1);
          return { key, value };
        },
        release: ({ key, value }) => redis.evalsha(sha, 1, key, value),
        close: () => redis.quit(),
      };
    },
  },
  blpop: {
    label: 'BLPOP/RPUSH token passing (ideal)',
    async make(port) {
      const redis = client(port);
      return {
        redis,
        async acquire(key) {
          await redis.blpop(`list:${key}`, 0);
          return key;
        },
        release: (key) => redis.rpush(`list:${key}`, 't'),
        close: () => redis.quit(),
        // The list holds the one token while nobody has it.
        setup: async (key) => {
          await redis.del(`list:${key}`);
          await redis.rpush(`list:${key}`, 't');
        },
      };
    },
  },
  baton: {
    label: 'baton (fencing token, FIFO, hand-off by pub/sub)',
    async make(port) {
      const redis = client(port);
      const baton = createBaton(createRedisStore(redis));
      return {
        redis,
        baton,
        async acquire(key) {
          const lease = await baton.mutex(key).acquire({ ttlMs: TTL_MS });
          if (typeof lease.token !== 'bigint') throw new Error('no fencing token');
          return lease;
        },
        release: (lease) => lease.release(),
        close: async () => {
          await baton.close();
          await redis.quit();
        },
      };
    },
  },
  ...Object.fromEntries(
    [
      ['redlock5', 'redlock 5.0.0-beta.2', RedlockV5],
      ['sesame', '@sesamecare-oss/redlock 1.4', SesameRedlock],
    ].flatMap(([id, name, Redlock]) => [
      [`${id}`, { label: `${name}, defaults (retry 200±100 ms, 10 times)`, settings: {}, Redlock }],
      [`${id}-tuned`, { label: `${name}, tuned (retry 10±5 ms, no limit)`, settings: REDLOCK_TUNED, Redlock }],
    ]).map(([id, { label, settings, Redlock }]) => [id, {
      label,
      async make(port) {
        const redis = client(port);
        const redlock = new Redlock([redis], settings);
        redlock.on('error', () => undefined);
        return {
          redis,
          async acquire(key) {
            for (;;) {
              try {
                return await redlock.acquire([key], TTL_MS);
              } catch {
                // Out of retries: ask again.
              }
            }
          },
          release: (lock) => redlock.release(lock),
          close: () => redis.quit(),
        };
      },
    }]),
  ),
  ...Object.fromEntries([
    ['semaphore', 'redis-semaphore 5.8 Mutex, defaults (retry every 10 ms)', {}],
    ['semaphore-tuned', 'redis-semaphore 5.8 Mutex, tuned (retry every 1 ms)', SEMAPHORE_TUNED],
  ].map(([id, label, options]) => [id, {
    label,
    async make(port) {
      const redis = client(port);
      return {
        redis,
        async acquire(key) {
          for (;;) {
            const mutex = new SemaphoreMutex(redis, key, { lockTimeout: TTL_MS, ...options });
            try {
              await mutex.acquire();
              return mutex;
            } catch {
              // Timed out (10 s by default): ask again.
            }
          }
        },
        release: (mutex) => mutex.release(),
        close: () => redis.quit(),
      };
    },
  }])),
};

// ---- Scenarios -------------------------------------------------------------------------------
/** Runs `cycle` back to back for `ms` after a short warm-up; returns cycles per second. */

/**
 * The server's own time per cycle: INFO commandstats' microseconds of the commands the
 * client sent (a script's time includes the calls it makes, which are not added again).
 */
async function serverMicros(port, c, run) {
  const admin = new Redis({ port, host: '127.0.0.1' });
  await admin.config('RESETSTAT');
  await run();
  const info = await admin.info('commandstats');
  admin.disconnect();
  let usec = 0;
  for (const [, name, micros] of info.matchAll(/^cmdstat_([^:]+):calls=\d+,usec=(\d+)/gm)) if (c.redis.names.has(name)) usec += Number(micros);
  return usec;
}

async function sequential(id, port) {
  const c = await CONTENDERS[id].make(port);
  const key = `seq:${id}`;
  const cycle = async () => c.release(await c.acquire(key));
  await cycle();
  const before = c.redis.sent;
  const probe = 2000;
  const usec = await serverMicros(port, c, async () => {
    for (let i = 0; i < probe; i++) await cycle();
  });
  const commands = (c.redis.sent - before) / probe;
  const perSec = await rate(cycle, seconds * 1000);
  await c.close();
  return { perSec, commands, serverUs: usec / probe };
}

async function concurrent(id, port, tasks) {
  const c = await CONTENDERS[id].make(port);
  const keys = Array.from({ length: tasks }, (_, i) => `par:${id}:${i}`);
  let n = 0;
  let counting = false;
  let stop = false;
  const loops = keys.map(async (key) => {
    while (!stop) {
      await c.release(await c.acquire(key));
      if (counting) n++;
    }
  });
  await sleep(200);
  counting = true;
  const start = monotonicNow();
  await sleep(seconds * 1000);
  counting = false;
  const elapsed = monotonicNow() - start;
  stop = true;
  await Promise.all(loops);
  await c.close();
  return n / (elapsed / 1000);
}

// Hot key: worker processes loop acquire -> hold -> release on one key between two instants
// of the shared monotonic clock, and report [asked, granted, released] for every grant.
async function worker(id, port, holdMs) {
  const c = await CONTENDERS[id].make(port);
  const key = 'hot';
  const warm = `warm:${process.pid}`;
  await c.setup?.(warm);
  await c.release(await c.acquire(warm)); // connection, scripts and subscription ready
  process.send('ready');
  const { begin, start, end } = await new Promise((resolve) => process.once('message', resolve));
  const times = [];
  let cpuAtStart = null;
  while (monotonicNow() < begin);
  while (monotonicNow() < end) {
    if (cpuAtStart === null && monotonicNow() >= start) cpuAtStart = process.cpuUsage();
    const asked = monotonicNow();
    const handle = await c.acquire(key);
    const granted = monotonicNow();
    if (holdMs > 0) await sleep(holdMs);
    const released = monotonicNow();
    await c.release(handle);
    times.push([asked, granted, released]);
  }
  const cpu = process.cpuUsage(cpuAtStart ?? undefined);
  await c.close();
  process.send({ times, cpuUs: cpu.user + cpu.system });
}

async function hotKey(id, port, workers, holdMs, ms) {
  const setup = await CONTENDERS[id].make(port);
  await setup.redis.del('hot');
  await setup.setup?.('hot');
  await setup.close();
  const children = Array.from({ length: workers }, () =>
    fork(fileURLToPath(import.meta.url), ['--role', 'worker', '--target', id, '--port', String(port), '--hold', String(holdMs)]));
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve))));
  const results = children.map((child) => new Promise((resolve) => child.once('message', resolve)));
  // The workers contend for --warm seconds before the measured window, so that each
  // contender's code runs compiled, as in a service that has been up for a while.
  const begin = monotonicNow() + 50;
  const start = begin + Number(values.warm) * 1000;
  const end = start + ms;
  for (const child of children) child.send({ begin, start, end });
  // Redis's own CPU over the window, read when it opens and when the workers report.
  const admin = client(port);
  const serverCpu = async () => {
    const info = await admin.info('cpu');
    return (Number(/used_cpu_user:([\d.]+)/.exec(info)[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)[1])) * 1e6;
  };
  await sleep(Math.max(0, start - monotonicNow()));
  const serverAtStart = await serverCpu();
  const reports = await Promise.all(results);
  const serverUs = (await serverCpu()) - serverAtStart;
  admin.disconnect();
  const stats = hotKeyStats(reports.map(({ times }) => times.filter(([, granted]) => granted >= start && granted <= end)), ms);
  const locks = stats.counts.reduce((a, b) => a + b, 0);
  // Workers run a little past the window (their last lock), so this slightly overstates the per-lock cost.
  return { ...stats, workerCpuPerLock: reports.reduce((sum, r) => sum + r.cpuUs, 0) / locks, serverCpuPerLock: serverUs / locks };
}

// ---- Heap per held lease -----------------------------------------------------------------------
async function heapPerLease(id, port, n) {
  const c = await CONTENDERS[id].make(port);
  // baton's leases renew themselves here, as in bench/local.mjs; the peers hold what their acquire returns.
  const acquire = id === 'baton' ? (key) => c.baton.mutex(key).acquire({ ttlMs: 600_000, autoRenew: true }) : (key) => c.acquire(key);
  const warm = await acquire('heap:warm');
  const { bytes, held } = await heapPerHeld((i) => acquire(`heap:${id}:${i}`), n);
  for (const handle of [warm, ...held]) await c.release(handle);
  await c.close();
  return bytes;
}


async function main() {
  const server = await startServer();
  const { port } = server;
  try {
    console.log(`node ${process.version}, redis-server ${server.version} on loopback (no persistence), ${cpus().length} cores, load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}, ${seconds} s per measurement`);
    if (only.has('seq')) await reportSequential(port);
    if (only.has('tasks')) await reportConcurrent(port, Number(values.tasks));
    if (only.has('hot')) for (const holdMs of values.hold.split(',').map(Number)) await reportHotKey(port, Number(values.workers), holdMs);
    if (only.has('heap')) await reportHeap(port, Number(values.leases));
  } finally {
    await server.stop();
  }
}

const UNCONTENDED = pick(['raw', 'baton', 'redlock5', 'sesame', 'semaphore']);

async function reportSequential(port) {
  const seq = {};
  for (const id of UNCONTENDED) seq[id] = await sequential(id, port);
  table('Sequential acquire+release cycles per second (one client, one key, never contended)', ['lock', 'cycles/s', 'commands sent per cycle', 'server µs per cycle', '÷ raw'],
    UNCONTENDED.map((id) => [CONTENDERS[id].label, fmt(seq[id].perSec), fmt(seq[id].commands, 2), fmt(seq[id].serverUs, 1), `${fmt(seq[id].perSec / seq.raw.perSec, 2)}x`]));
}

async function reportConcurrent(port, tasks) {
  const par = {};
  for (const id of UNCONTENDED) par[id] = await concurrent(id, port, tasks);
  table(`${tasks} concurrent tasks on distinct keys (one client), cycles per second`, ['lock', 'cycles/s', '÷ raw'],
    UNCONTENDED.map((id) => [CONTENDERS[id].label, fmt(par[id]), `${fmt(par[id] / par.raw, 2)}x`]));
}

async function reportHotKey(port, workers, holdMs) {
  const ids = pick(['blpop', 'baton', 'redlock5', 'redlock5-tuned', 'sesame', 'sesame-tuned', 'semaphore', 'semaphore-tuned']);
  const hot = {};
  for (const id of ids) hot[id] = await hotKey(id, port, workers, holdMs, seconds * 1000);
  const ideal = hot.blpop;
  table(`One hot key, ${workers} processes, hold ${holdMs} ms (times in ms; ratios vs the BLPOP ideal)`,
    ['lock', 'locks/s', '÷ ideal', 'handoff p50', 'handoff p99', 'wait p50', 'wait p99', 'wait max', 'max ÷ ideal', 'per worker', 'Jain', 'CPU µs per lock: workers', 'server'],
    ids.map((id) => {
      const r = hot[id];
      return [CONTENDERS[id].label, fmt(r.locksPerSec), `${fmt(r.locksPerSec / ideal.locksPerSec, 2)}x`, fmt(r.handoffP50, 2), fmt(r.handoffP99, 2), fmt(r.waitP50, 1), fmt(r.waitP99, 1), fmt(r.waitMax, 1), `${fmt(r.waitMax / ideal.waitMax, 2)}x`, r.counts.join('/'), fmt(r.jain, 3), fmt(r.workerCpuPerLock), fmt(r.serverCpuPerLock)];
    }));
}

async function reportHeap(port, n) {
  const ids = ['baton', 'redlock5', 'sesame', 'semaphore'];
  const notes = {
    baton: 'Lease + its record, renewed by the one keep-alive timer',
    redlock5: 'Lock object; no renewal',
    sesame: 'Lock object; no renewal',
    semaphore: 'Mutex object with its own refresh timer (on by default)',
  };
  const heap = {};
  for (const id of ids) heap[id] = await heapPerLease(id, port, n);
  table(`JS heap per held lock, ${n} held at once (one process)`, ['lock', 'bytes', 'what is held'], ids.map((id) => [CONTENDERS[id].label, String(heap[id]), notes[id]]));
  if (!globalThis.gc) console.log('(run with node --expose-gc for steadier heap figures)');
}

if (values.role === 'worker') await worker(values.target, Number(values.port), Number(values.hold));
else await main();
