// Benchmarks of the PostgreSQL store against PostgreSQL's own advisory locks, in one run, on one
// server that this script starts (loopback, temporary data directory; test/helpers/postgres-server.ts):
//   - pg_try_advisory_lock / pg_advisory_unlock on a connection of its own: the floor for a
//     lock on PostgreSQL (two round trips a cycle), with no TTL, no token, no queue (busy: retry every 5 ms);
//   - blocking pg_advisory_lock / pg_advisory_unlock: the server queues the waiters;
//   - baton's PostgreSQL mutex on a pg Pool: a lease row with a TTL on the server's clock and a
//     fencing token, one function call per acquire and per release, woken by LISTEN/NOTIFY.
// Names become advisory keys by hashtextextended(name, 0), as the usual libraries do.
// Usage: npm run bench:postgres  (= build, tsc -p tsconfig.test.json, node --expose-gc bench/postgres.mjs
//        [--seconds 3] [--rounds 3] [--workers 8] [--held 1000] [--only cycles,hot,connections])
// Prints tables with ratios; nothing here is asserted. See docs/benchmarks.md.
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { createBaton, monotonicNow } from 'baton-lock';
import { createPostgresStore } from 'baton-lock/postgres';
import { fmt, rate as rateFor, table } from './lib.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, workers: { type: 'string', default: '8' }, rounds: { type: 'string', default: '3' }, held: { type: 'string', default: '1000' }, only: { type: 'string', default: 'cycles,hot,connections' }, role: { type: 'string' }, target: { type: 'string' }, url: { type: 'string' }, hold: { type: 'string', default: '0' }, verbose: { type: 'boolean' } } });
const seconds = Number(values.seconds);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const SCHEMA = 'bench';

// ---- The contenders: each makes `{ take(key), give(handle), close() }`.
async function contender(target, url) {
  if (target === 'try-advisory' || target === 'advisory') {
    const client = new pg.Client({ connectionString: url });
    client.on('error', () => undefined);
    await client.connect();
    const lock = target === 'advisory' ? 'SELECT pg_advisory_lock(hashtextextended($1, 0))' : 'SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok';
    return {
      async take(key) {
        for (;;) {
          const { rows } = await client.query(lock, [key]);
          if (target === 'advisory' || rows[0].ok) return key;
          await sleep(5);
        }
      },
      give: (key) => client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [key]),
      close: () => client.end(),
    };
  }
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  pool.on('error', () => undefined);
  const baton = createBaton(createPostgresStore(pool, { schema: SCHEMA, closeClient: true }));
  await (await baton.mutex('warm').acquire({ ttlMs: 10_000 })).release();
  return {
    take: (key) => baton.mutex(key).acquire({ ttlMs: 10_000, autoRenew: false }),
    give: (lease) => lease.release(),
    close: () => baton.close(),
  };
}

// ---- Worker processes for the hot-key scenario ----------------------------------------------
async function worker(target, url, ms, holdMs) {
  const c = await contender(target, url);
  const times = [];
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  const end = monotonicNow() + ms;
  while (monotonicNow() < end) {
    const asked = monotonicNow();
    const handle = await c.take(`hot-${target}`);
    const granted = monotonicNow();
    if (holdMs > 0) await sleep(holdMs);
    await c.give(handle);
    times.push([asked, granted, monotonicNow()]);
  }
  process.send(times);
  // The others may still wait for the lock: stay until every worker is done (the parent says so).
  await new Promise((resolve) => process.once('message', resolve));
  await c.close();
  process.exit(0);
}

async function hotKey(target, url, workers, ms, holdMs) {
  const children = Array.from({ length: workers }, () => fork(fileURLToPath(import.meta.url), ['--role', 'worker', '--target', target, '--url', url, '--seconds', String(ms / 1000), '--hold', String(holdMs)]));
  const next = (child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`a ${target} worker exited with code ${code}`)));
  });
  await Promise.all(children.map(next));
  const results = children.map(next);
  for (const child of children) child.send('go');
  const perWorker = await Promise.all(results);
  const exited = children.map((child) => new Promise((resolve) => child.once('exit', resolve)));
  for (const child of children) child.send('stop');
  await Promise.all(exited);
  return perWorker;
}

/** The hot-key figures over rounds: locks/s is the median round; waits and Jain's index pool every round. */
function summarize(rounds, ms) {
  const rates = [];
  const waits = [];
  const counts = rounds[0].map(() => 0);
  for (const perWorker of rounds) {
    // Only grants inside the window count: a worker's last grant may come after the others stopped.
    const all = perWorker.flat();
    rates.push(all.length / (ms / 1000));
    for (const [asked, granted] of all) waits.push(granted - asked);
    perWorker.forEach((times, w) => (counts[w] += times.length));
  }
  waits.sort((a, b) => a - b);
  const sum = counts.reduce((a, b) => a + b, 0);
  const jain = (sum * sum) / (counts.length * counts.reduce((a, b) => a + b * b, 0));
  const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)];
  return { locksPerSec: median, rates, waitP50: waits[Math.floor(waits.length / 2)], waitMax: waits.at(-1), counts, jain };
}

const NAMES = { 'try-advisory': 'pg_try_advisory_lock + pg_advisory_unlock', advisory: 'pg_advisory_lock (blocking) + pg_advisory_unlock', baton: 'baton PostgreSQL mutex (TTL, fencing token)' };

async function cycles(url, rounds) {
  const targets = ['try-advisory', 'advisory', 'baton'];
  const samples = Object.fromEntries(targets.map((t) => [t, []]));
  const contenders = {};
  for (const target of targets) contenders[target] = await contender(target, url);
  for (let round = 0; round < rounds; round++) {
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      const c = contenders[target];
      samples[target].push(await rateFor(async () => c.give(await c.take(`seq-${target}`)), (seconds * 1000) / rounds, 300));
    }
  }
  for (const target of targets) await contenders[target].close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(samples['try-advisory']);
  table(`Sequential acquire + release, one client, one key; median of ${rounds} rounds (each round's in brackets)`, ['lock', 'cycles/s', '÷ try-advisory pair'],
    targets.map((t) => [NAMES[t], `${fmt(median(samples[t]))} (${samples[t].map((x) => fmt(x)).join(', ')})`, `${fmt(median(samples[t]) / base, 2)}x`]));
}

/** Server connections of this process's role, counted by the server. */
async function connections(admin, applicationName) {
  const { rows } = await admin.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [applicationName]);
  return rows[0].n;
}

async function connectionCount(url, admin, held) {
  // baton: one pool for every lock of the process, plus its LISTEN connection.
  const pool = new pg.Pool({ connectionString: url, max: 10, application_name: 'bench-baton' });
  pool.on('error', () => undefined);
  const baton = createBaton(createPostgresStore(pool, { schema: SCHEMA, closeClient: true, listen: () => new pg.Client({ connectionString: url, application_name: 'bench-baton' }) }));
  const leases = [];
  // 50 acquisitions at a time, as concurrent tasks of an app would take them.
  for (let i = 0; i < held; i += 50) leases.push(...(await Promise.all(Array.from({ length: Math.min(50, held - i) }, (_, j) => baton.mutex(`conn-${i + j}`).acquire({ ttlMs: 600_000 })))));
  // One waiter, so that the LISTEN connection is up too.
  const waiting = baton.mutex('conn-0').acquire({ ttlMs: 600_000, timeoutMs: 2000 }).catch(() => null);
  await sleep(500);
  const batonConnections = await connections(admin, 'bench-baton');
  await waiting;
  for (const lease of leases) await lease.release();
  await baton.close();
  // Advisory locks on a pool: a session lock stays with the connection that took it, so each
  // held lock keeps its connection checked out until it is released on that same connection.
  const advisoryHeld = Math.min(held, 150);
  const apool = new pg.Pool({ connectionString: url, max: advisoryHeld + 10, application_name: 'bench-advisory' });
  apool.on('error', () => undefined);
  const pinned = [];
  for (let i = 0; i < advisoryHeld; i += 50) {
    pinned.push(...(await Promise.all(Array.from({ length: Math.min(50, advisoryHeld - i) }, async (_, j) => {
      const client = await apool.connect();
      await client.query('SELECT pg_advisory_lock(hashtextextended($1, 0))', [`adv-${i + j}`]);
      return client;
    }))));
  }
  const advisoryConnections = await connections(admin, 'bench-advisory');
  for (const [i, client] of pinned.entries()) {
    await client.query('SELECT pg_advisory_unlock(hashtextextended($1, 0))', [`adv-${i}`]);
    client.release();
  }
  await apool.end();
  table(`Server connections while locks are held`, ['lock', 'locks held', 'connections'], [
    [NAMES.baton + ', one pg Pool (max 10) + its LISTEN connection', String(held), String(batonConnections)],
    ['pg_advisory_lock on a pg Pool, each held lock keeping its connection', String(advisoryHeld), String(advisoryConnections)],
  ]);
}

async function main() {
  let helpers;
  try {
    helpers = await import('../build/test/helpers/postgres-server.js');
  } catch (error) {
    throw new Error('bench/postgres.mjs starts its server with the test helpers: run `node node_modules/typescript/bin/tsc -p tsconfig.test.json` first', { cause: error });
  }
  const server = await helpers.startPostgres({ max_connections: '300' });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  try {
    const { rows } = await admin.query('SHOW server_version');
    console.log(`node ${process.version}, PostgreSQL ${rows[0].server_version} on loopback (fsync off, synchronous_commit on), ${seconds} s per measurement, ${values.rounds} rounds (every contender in turn in each, the order reversed every other round), ${values.workers} worker processes for the hot key`);
    const rounds = Number(values.rounds);
    const only = new Set(values.only.split(','));
    if (only.has('cycles')) await cycles(server.url, rounds);
    if (only.has('hot')) {
      const workers = Number(values.workers);
      for (const holdMs of [0, 1]) {
        const hotTargets = ['advisory', 'baton'];
        const runs = Object.fromEntries(hotTargets.map((t) => [t, []]));
        for (let round = 0; round < rounds; round++) {
          for (const target of round % 2 === 0 ? hotTargets : [...hotTargets].reverse()) {
            if (values.verbose) console.error(`hot key, hold ${holdMs} ms, round ${round + 1}: ${target}`);
            runs[target].push(await hotKey(target, server.url, workers, seconds * 1000, holdMs));
          }
        }
        const hot = Object.fromEntries(hotTargets.map((t) => [t, summarize(runs[t], seconds * 1000)]));
        table(`One hot lock, ${workers} processes, hold ${holdMs} ms, ${rounds} rounds of ${seconds} s (locks/s: median round, each round's in brackets; waits in ms over all rounds)`, ['lock', 'locks/s', '÷ pg_advisory_lock', 'wait p50', 'worst wait', '÷ its worst wait', 'per worker', 'Jain'],
          hotTargets.map((t) => [NAMES[t], `${fmt(hot[t].locksPerSec)} (${hot[t].rates.map((x) => fmt(x)).join(', ')})`, `${fmt(hot[t].locksPerSec / hot.advisory.locksPerSec, 2)}x`, fmt(hot[t].waitP50, 2), fmt(hot[t].waitMax, 1), `${fmt(hot[t].waitMax / hot.advisory.waitMax, 2)}x`, hot[t].counts.join('/'), fmt(hot[t].jain, 3)]));
      }
    }
    if (only.has('connections')) await connectionCount(server.url, admin, Number(values.held));
  } finally {
    await admin.end();
    await server.stop();
  }
}

if (values.role === 'worker') await worker(values.target, values.url, seconds * 1000, Number(values.hold));
else await main();
