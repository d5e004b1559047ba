// Benchmarks of the one-host stores against what a Node user would pick instead, in one run:
//   - raw SQLite transactions (better-sqlite3): the store's own round-trip limit;
//   - proper-lockfile: the usual inter-process lock file;
//   - async-mutex: the usual in-process mutex, against the memory store.
// Usage: npm run build && node --expose-gc bench/local.mjs [--seconds 3] [--workers 4]
// Prints tables with ratios; nothing here is asserted. See docs/benchmarks.md.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import lockfile from 'proper-lockfile';
import { Mutex } from 'async-mutex';
import { createBaton, monotonicNow } from 'baton-lock';
import { createMemoryStore } from 'baton-lock/memory';
import { createSqliteStore } from 'baton-lock/sqlite';
import { fmt, heapPerHeld, hotKeyStats, rate as rateFor, table } from './lib.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, workers: { type: 'string', default: '4' }, role: { type: 'string' }, target: { type: 'string' }, path: { type: 'string' } } });
const seconds = Number(values.seconds);
const rate = (cycle) => rateFor(cycle, seconds * 1000);


function rawSqlite(path, synchronous) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${synchronous}`);
  db.exec('CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER)');
  db.exec("INSERT OR IGNORE INTO t VALUES ('x', 0)");
  const bump = db.prepare("UPDATE t SET v = v + 1 WHERE k = 'x'");
  const tx = () => {
    db.exec('BEGIN IMMEDIATE');
    bump.run();
    db.exec('COMMIT');
  };
  return { cycle: async () => { tx(); tx(); }, close: () => db.close() };
}

// ---- Worker processes for the hot-key scenario ----------------------------------------------
async function worker(target, path, ms) {
  const times = [];
  let acquire;
  let release;
  let close = async () => {};
  if (target === 'baton') {
    const store = createSqliteStore({ path });
    await store.open(); // opening (WAL switch, schema) is not part of the measurement
    const baton = createBaton(store);
    const lock = baton.mutex('hot');
    acquire = async () => lock.acquire({ ttlMs: 10_000 });
    release = (lease) => lease.release();
    close = () => baton.close();
  } else {
    acquire = () => lockfile.lock(path, { retries: { retries: 1_000_000, factor: 1, minTimeout: 1, maxTimeout: 1 }, stale: 10_000 });
    release = (unlock) => unlock();
  }
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  const end = monotonicNow() + ms;
  while (monotonicNow() < end) {
    const asked = monotonicNow();
    const handle = await acquire();
    const granted = monotonicNow();
    const released = monotonicNow();
    await release(handle);
    times.push([asked, granted, released]);
  }
  await close();
  process.send(times);
}

async function hotKey(target, path, workers, ms) {
  const children = Array.from({ length: workers }, () => fork(fileURLToPath(import.meta.url), ['--role', 'worker', '--target', target, '--path', path, '--seconds', String(ms / 1000)]));
  await Promise.all(children.map((child) => new Promise((resolve) => child.once('message', resolve))));
  const results = children.map((child) => new Promise((resolve) => child.once('message', resolve)));
  for (const child of children) child.send('go');
  return hotKeyStats(await Promise.all(results), ms);
}

// ---- Heap per held lease ------------------------------------------------------------------------
async function heapPerLease(makeStore, n = 10_000) {
  const baton = createBaton(makeStore());
  await baton.mutex('warm').acquire({ ttlMs: 600_000 });
  const { bytes } = await heapPerHeld((i) => baton.mutex(`held-${i}`).acquire({ ttlMs: 600_000, autoRenew: true }), n);
  await baton.close();
  return bytes;
}


async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));
  try {
    console.log(`node ${process.version}, ${seconds} s per measurement, ${values.workers} worker processes for the hot key`);

    // 1. Sequential acquire + release, one client.
    const seq = [];
    for (const sync of ['full', 'normal']) {
      const raw = rawSqlite(join(dir, `raw-${sync}.db`), sync.toUpperCase());
      const rawRate = await rate(raw.cycle);
      raw.close();
      const baton = createBaton(createSqliteStore({ path: join(dir, `baton-${sync}.db`), durability: sync }));
      const lock = baton.mutex('seq');
      const batonRate = await rate(async () => (await lock.acquire({ ttlMs: 10_000 })).release());
      await baton.close();
      seq.push([`SQLite, synchronous=${sync.toUpperCase()}`, 'raw: 2 write transactions', fmt(rawRate), 'baton acquire+release', fmt(batonRate), `${fmt(batonRate / rawRate, 2)}x`]);
    }
    const file = join(dir, 'proper.lock.target');
    writeFileSync(file, '');
    const lockRate = await rate(async () => (await lockfile.lock(file))());
    const sqliteNormal = Number(seq[1][4]);
    seq.push(['lock file', 'proper-lockfile lock+unlock', fmt(lockRate), 'baton SQLite (normal)', fmt(sqliteNormal), `${fmt(sqliteNormal / lockRate, 2)}x`]);
    const mutex = new Mutex();
    const mutexRate = await rate(async () => (await mutex.acquire())());
    const memory = createBaton(createMemoryStore());
    const memLock = memory.mutex('seq');
    const memRate = await rate(async () => (await memLock.acquire({ ttlMs: 10_000 })).release());
    await memory.close();
    seq.push(['in process', 'async-mutex acquire+release', fmt(mutexRate), 'baton memory', fmt(memRate), `${fmt(memRate / mutexRate, 2)}x`]);
    table('Sequential cycles per second (one client, one lock)', ['where', 'peer', 'peer/s', 'baton', 'baton/s', 'baton ÷ peer'], seq);

    // 2. Hot key across processes.
    const workers = Number(values.workers);
    const hot = [];
    for (const [target, path] of [['baton', join(dir, 'hot.db')], ['proper-lockfile', file]]) {
      const r = await hotKey(target, path, workers, seconds * 1000);
      hot.push([target === 'baton' ? 'baton SQLite (FIFO, woken by datagram)' : 'proper-lockfile (retry every 1 ms)', fmt(r.locksPerSec), fmt(r.handoffP50, 2), fmt(r.handoffP99, 2), fmt(r.waitP50, 1), fmt(r.waitP99, 1), fmt(r.waitMax, 1), r.counts.join('/'), fmt(r.jain, 3)]);
    }
    table(`One hot lock, ${workers} processes, hold 0 ms (times in ms)`, ['lock', 'locks/s', 'handoff p50', 'handoff p99', 'wait p50', 'wait p99', 'wait max', 'per worker', 'Jain'], hot);

    // 3. Memory per held lease.
    table('JS heap per held lease, 10 000 held with auto-renewal', ['store', 'bytes'], [
      ['memory (lease + store entry)', String(await heapPerLease(() => createMemoryStore()))],
      ['SQLite (lease only; rows live in SQLite)', String(await heapPerLease(() => createSqliteStore({ path: join(dir, 'heap.db'), durability: 'normal' })))],
    ]);
    if (!globalThis.gc) console.log('(run with node --expose-gc for steadier heap figures)');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.role === 'worker') await worker(values.target, values.path, seconds * 1000);
else await main();
