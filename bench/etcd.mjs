// Benchmarks of the etcd store against what a Node user of etcd would pick instead, in one run,
// on one etcd member that this script starts (loopback, temporary data directory, default timings):
//   - raw lease + txn: one lease kept alive, a put-if-absent transaction to take, a delete to give
//     back: the floor for a lock on etcd (two writes per cycle), with no queue, token or renewal;
//   - etcd3's Lock (etcd3 1.1.2): a try-lock with a lease per acquisition; retried every 5 ms when busy;
//   - etcd3's Election: campaign / resign, a queue on create revisions with a watch, like baton's.
// Usage: npm run bench:etcd  (= npm run build && node --expose-gc bench/etcd.mjs [--seconds 3] [--rounds 3] [--workers 8] [--tasks 32] [--only cycles,hot,heap])
// Prints tables with ratios; nothing here is asserted. See docs/benchmarks.md.
import { fork, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3, EtcdLockFailedError } from 'etcd3';
import { createBaton, monotonicNow } from 'baton-lock';
import { createEtcdStore } from 'baton-lock/etcd';
import { fmt, freePort, heapPerHeld, rate as rateFor, table } from './lib.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, workers: { type: 'string', default: '8' }, tasks: { type: 'string', default: '32' }, rounds: { type: 'string', default: '3' }, only: { type: 'string', default: 'cycles,hot,heap' }, role: { type: 'string' }, verbose: { type: 'boolean' }, target: { type: 'string' }, endpoint: { type: 'string' } } });
const seconds = Number(values.seconds);
const rate = (cycle, ms = seconds * 1000) => rateFor(cycle, ms, 300);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ---- The contenders: each makes `{ cycle(key), close() }` where a cycle takes and gives back the lock `key`.
async function contender(target, endpoint) {
  const client = new Etcd3({ hosts: endpoint });
  if (target === 'raw') {
    const lease = client.lease(10);
    const id = await lease.grant();
    return {
      async take(key) {
        for (let attempt = 0; ; attempt++) {
          const reply = await client.kv.txn({
            compare: [{ key: Buffer.from(key), target: 'Create', result: 'Equal', create_revision: 0 }],
            success: [{ request_put: { key: Buffer.from(key), value: Buffer.alloc(0), lease: id } }],
            failure: [],
          });
          if (reply.succeeded) return key;
          await sleep(5);
        }
      },
      give: (key) => client.kv.deleteRange({ key: Buffer.from(key) }),
      close: async () => { await lease.revoke(); client.close(); },
    };
  }
  if (target === 'etcd3-lock') {
    return {
      async take(key) {
        for (;;) {
          const lock = client.lock(key).ttl(10);
          try {
            return await lock.acquire();
          } catch (error) {
            if (!(error instanceof EtcdLockFailedError)) throw error;
            await sleep(5);
          }
        }
      },
      give: (lock) => lock.release(),
      close: async () => client.close(),
    };
  }
  if (target === 'etcd3-election') {
    return {
      take: (key) => client.election(key, 10).campaign('x').wait(),
      give: (campaign) => campaign.resign(),
      close: async () => client.close(),
    };
  }
  const baton = createBaton(createEtcdStore(client, { closeClient: true }));
  await (await baton.mutex('warm').acquire({ ttlMs: 10_000 })).release(); // the session grant is not part of the measurement
  return {
    take: (key) => baton.mutex(key).acquire({ ttlMs: 10_000 }),
    give: (lease) => lease.release(),
    close: () => baton.close(),
  };
}

/** Runs `cycle` back to back for the measurement time after a short warm-up; returns cycles per second. */

/** `tasks` concurrent loops, each on its own key; returns cycles per second in all. */
async function parallel(c, tasks, prefix, ms = seconds * 1000) {
  let n = 0;
  let counting = false;
  const start = monotonicNow() + 300;
  const end = start + ms;
  await Promise.all(Array.from({ length: tasks }, async (_, i) => {
    while (monotonicNow() < end) {
      const handle = await c.take(`${prefix}-${i}`);
      await c.give(handle);
      if (monotonicNow() >= start) n++;
    }
  }));
  void counting;
  return n / (ms / 1000);
}

// ---- Worker processes for the hot-key scenario ----------------------------------------------
async function worker(target, endpoint, ms) {
  const c = await contender(target, endpoint);
  const times = [];
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  const end = monotonicNow() + ms;
  while (monotonicNow() < end) {
    const asked = monotonicNow();
    const handle = await c.take(`hot-${target}`);
    const granted = monotonicNow();
    await c.give(handle);
    times.push([asked, granted, monotonicNow()]);
  }
  process.send(times);
  await c.close();
  process.exit(0);
}

async function hotKey(target, endpoint, workers, ms) {
  const children = Array.from({ length: workers }, () => fork(fileURLToPath(import.meta.url), ['--role', 'worker', '--target', target, '--endpoint', endpoint, '--seconds', String(ms / 1000)]));
  await Promise.all(children.map((child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`a ${target} worker exited with code ${code}`)));
  })));
  const results = children.map((child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`a ${target} worker exited with code ${code}`)));
  }));
  for (const child of children) child.send('go');
  const perWorker = await Promise.all(results);
  await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)))));
  return perWorker;
}

/**
 * The figures of the hot key over `rounds` (each an array of per-worker [asked, granted, released]
 * times): locks/s is the median of the rounds; handoffs, waits, shares and Jain's index pool every round.
 */
function summarize(rounds, ms) {
  const rates = [];
  const handoffs = [];
  const waits = [];
  const counts = rounds[0].map(() => 0);
  for (const perWorker of rounds) {
    const all = perWorker.flat().sort((a, b) => a[1] - b[1]);
    rates.push(all.length / (ms / 1000));
    for (const [asked, granted] of all) waits.push(granted - asked);
    // A handoff: from one holder's release to the next grant (release is stamped after it returns, so a handoff can look negative; those count as 0).
    for (let i = 1; i < all.length; i++) handoffs.push(Math.max(0, all[i][1] - all[i - 1][2]));
    perWorker.forEach((times, w) => (counts[w] += times.length));
  }
  handoffs.sort((a, b) => a - b);
  waits.sort((a, b) => a - b);
  const sum = counts.reduce((a, b) => a + b, 0);
  const jain = (sum * sum) / (counts.length * counts.reduce((a, b) => a + b * b, 0));
  const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)];
  return { locksPerSec: median, rates, handoffP50: q(handoffs, 0.5), handoffP99: q(handoffs, 0.99), waitMax: waits.at(-1), counts, jain };
}

// ---- Heap per held lease ------------------------------------------------------------------------
async function heapPerLease(endpoint, n) {
  const baton = createBaton(createEtcdStore(new Etcd3({ hosts: endpoint }), { closeClient: true }));
  await baton.mutex('warm').acquire({ ttlMs: 600_000 });
  // Warm up the client's buffers with as many calls as the measurement makes, then drop those leases.
  const warm = [];
  for (let i = 0; i < 200; i++) warm.push(await baton.mutex(`warm-${i}`).acquire({ ttlMs: 600_000, autoRenew: true }));
  for (const lease of warm) await lease.release();
  const { bytes } = await heapPerHeld((i) => baton.mutex(`held-${i}`).acquire({ ttlMs: 600_000, autoRenew: true }), n);
  await baton.close();
  return bytes;
}


async function startEtcd(dir) {
  const client = await freePort();
  const peer = await freePort();
  const endpoint = `http://127.0.0.1:${client}`;
  const child = spawn('etcd', ['--name', 'bench', '--data-dir', join(dir, 'etcd'), '--listen-client-urls', endpoint, '--advertise-client-urls', endpoint,
    '--listen-peer-urls', `http://127.0.0.1:${peer}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peer}`, '--initial-cluster', `bench=http://127.0.0.1:${peer}`,
    '--logger', 'zap', '--log-level', 'error'], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    try {
      const response = await fetch(`${endpoint}/health`);
      if ((await response.json()).health === 'true') break;
    } catch {
      if (i > 200) throw new Error('etcd did not start');
    }
    await sleep(50);
  }
  return { endpoint, stop: () => child.kill('SIGKILL') };
}


const NAMES = { raw: 'raw lease + txn (no queue: retry every 5 ms)', baton: 'baton etcd mutex', 'etcd3-lock': "etcd3's Lock (retry every 5 ms)", 'etcd3-election': "etcd3's Election (campaign / resign)" };

/** Sequential cycles and `tasks` tasks on distinct keys, every contender in each round, in turn; the median round is reported. */
async function cycles(endpoint, targets, rounds) {
  const samples = Object.fromEntries(targets.map((t) => [t, { seq: [], par: [] }]));
  const contenders = {};
  for (const target of targets) contenders[target] = await contender(target, endpoint);
  for (let round = 0; round < rounds; round++) {
    // Every other round runs the contenders in reverse order, so that none is always measured
    // first (etcd's database grows with every write of the run, and its fsyncs are noisy).
    for (const target of round % 2 === 0 ? targets : [...targets].reverse()) {
      if (values.verbose) console.error(`round ${round + 1}: ${target}`);
      const c = contenders[target];
      samples[target].seq.push(await rate(async () => c.give(await c.take(`seq-${target}`)), (seconds * 1000) / rounds));
      samples[target].par.push(await parallel(c, Number(values.tasks), `par-${target}`, (seconds * 1000) / rounds));
    }
  }
  for (const target of targets) await contenders[target].close();
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const seq = Object.fromEntries(targets.map((t) => [t, median(samples[t].seq)]));
  const par = Object.fromEntries(targets.map((t) => [t, median(samples[t].par)]));
  const rounds_ = (xs) => `${fmt(median(xs))} (${xs.map((x) => fmt(x)).join(', ')})`;
  table(`Cycles per second (acquire + release), one client; median of ${rounds} rounds (each round's in brackets, in the order measured)`, ['lock', 'sequential, one key', `÷ raw`, `${values.tasks} tasks, distinct keys`, '÷ raw'],
    targets.map((t) => [NAMES[t], rounds_(samples[t].seq), `${fmt(seq[t] / seq.raw, 2)}x`, rounds_(samples[t].par), `${fmt(par[t] / par.raw, 2)}x`]));
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'baton-bench-etcd-'));
  const etcd = await startEtcd(dir);
  try {
    console.log(`node ${process.version}, one etcd member (${etcd.endpoint}), ${seconds} s per measurement (${values.rounds} rounds, every contender in turn in each, the order reversed every other round, median round), ${values.tasks} tasks on distinct keys, ${values.workers} worker processes for the hot key`);
    const targets = ['raw', 'baton', 'etcd3-lock', 'etcd3-election'];

    // The machine is shared and etcd's fsyncs are noisy: every contender is measured in each of
    // `rounds` rounds, in turn, and the median of its rounds is reported.
    const rounds = Number(values.rounds);
    const only = new Set(values.only.split(','));
    if (only.has('cycles')) await cycles(etcd.endpoint, targets, rounds);
    const workers = Number(values.workers);
    if (only.has('hot')) {
      // Like the cycles: every contender in each round, in turn, `seconds` each; locks/s is the median round.
      const hotTargets = ['baton', 'etcd3-election', 'etcd3-lock'];
      const runs = Object.fromEntries(hotTargets.map((t) => [t, []]));
      for (let round = 0; round < rounds; round++) {
        for (const target of hotTargets) {
          if (values.verbose) console.error(`hot key, round ${round + 1}: ${target}`);
          runs[target].push(await hotKey(target, etcd.endpoint, workers, seconds * 1000));
        }
      }
      const hot = Object.fromEntries(hotTargets.map((t) => [t, summarize(runs[t], seconds * 1000)]));
      table(`One hot lock, ${workers} processes, hold 0 ms, ${rounds} rounds of ${seconds} s (locks/s: median round, each round's in brackets; times in ms, over all rounds)`, ['lock', 'locks/s', '÷ etcd3 Election', 'handoff p50', 'handoff p99', 'worst wait', 'per worker', 'Jain'],
        Object.entries(hot).map(([t, r]) => [NAMES[t], `${fmt(r.locksPerSec)} (${r.rates.map((x) => fmt(x)).join(', ')})`, `${fmt(r.locksPerSec / hot['etcd3-election'].locksPerSec, 2)}x`, fmt(r.handoffP50, 2), fmt(r.handoffP99, 2), fmt(r.waitMax, 1), r.counts.join('/'), fmt(r.jain, 3)]));
    }

    if (!only.has('heap')) return;
    const n = 2000;
    table(`JS heap per held lease, ${n} held with auto-renewal on one etcd store`, ['store', 'bytes'], [['etcd (lease + store entry + its TTL timer)', String(await heapPerLease(etcd.endpoint, n))]]);
    if (!globalThis.gc) console.log('(run with node --expose-gc for steadier heap figures)');
  } finally {
    etcd.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (values.role === 'worker') await worker(values.target, values.endpoint, seconds * 1000);
else {
  await main();
  process.exit(0);
}
