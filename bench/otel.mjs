// The cost of baton's observability per acquire/release cycle: the same sequential cycle
// without metrics, with baton-lock/otel on the OpenTelemetry SDK (a MeterProvider whose
// reader collects every second into memory, as an exporter would), with store operations
// timed too, and with a logger attached (which times every store call for slow-call logs).
// Configurations alternate in rounds and the median round is kept, so that the machine's
// load drifts over all of them alike; CPU time per cycle (this process's) is reported beside
// the rate, since it moves less with other processes' load.
// Usage: npm run build && node bench/otel.mjs [--seconds 2] [--rounds 5]
// Prints tables with ratios; nothing here is asserted. See docs/benchmarks.md.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { createBaton, monotonicNow } from 'baton-lock';
import { createMemoryStore } from 'baton-lock/memory';
import { instrument } from 'baton-lock/otel';
import { createSqliteStore } from 'baton-lock/sqlite';
import { fmt, rate, table } from './lib.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '2' }, rounds: { type: 'string', default: '5' } } });
const ms = Number(values.seconds) * 1000;
const rounds = Number(values.rounds);

const silent = { debug() {}, info() {}, warn() {}, error() {} };

/** Each configuration makes a baton over `store`, possibly instrumented, and says how to end it. */
const configs = [
  ['no metrics', (store) => ({ baton: createBaton(store), end: async () => {} })],
  ['otel (default instruments)', (store) => withSdk(store, {})],
  ['otel + storeOperations', (store) => withSdk(store, { storeOperations: true })],
  ['otel + lockName mapping', (store) => withSdk(store, { lockName: (name) => name })],
  ['logger only', (store) => ({ baton: createBaton(store, { logger: silent }), end: async () => {} })],
];

function withSdk(store, options) {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 1000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const baton = createBaton(store);
  const instrumentation = instrument(baton, { ...options, meterProvider });
  return {
    baton,
    end: async () => {
      instrumentation.stop();
      await meterProvider.shutdown();
    },
  };
}

/** Cycles per second (wall clock) and this process's CPU time per cycle in µs (less moved by other processes' load). */
async function measure(makeStore, config) {
  const { baton, end } = config[1](makeStore());
  const lock = baton.mutex('seq');
  const cycle = async () => (await lock.acquire({ ttlMs: 10_000 })).release();
  await rate(cycle, 300);
  let n = 0;
  const cpu = process.cpuUsage();
  const start = monotonicNow();
  while (monotonicNow() - start < ms) {
    await cycle();
    n++;
  }
  const wallS = (monotonicNow() - start) / 1000;
  const used = process.cpuUsage(cpu);
  await end();
  await baton.close();
  return { rate: n / wallS, cpuUs: (used.user + used.system) / n };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const dir = mkdtempSync(join(tmpdir(), 'baton-bench-otel-'));
try {
  console.log(`node ${process.version}, ${ms / 1000} s per measurement, ${rounds} rounds, median kept`);
  const stores = [
    ['memory', () => createMemoryStore()],
    ['SQLite (synchronous=NORMAL)', () => createSqliteStore({ path: join(dir, 'otel.db'), durability: 'normal' })],
  ];
  for (const [storeName, makeStore] of stores) {
    const results = configs.map(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const [i, config] of configs.entries()) results[i].push(await measure(makeStore, config));
    }
    const base = median(results[0].map((r) => r.rate));
    const baseCpu = median(results[0].map((r) => r.cpuUs));
    table(`${storeName}: sequential acquire+release cycles`, ['configuration', 'cycles/s', '÷ no metrics', 'CPU µs/cycle', 'added CPU µs/cycle'], configs.map(([name], i) => {
      const r = median(results[i].map((x) => x.rate));
      const cpu = median(results[i].map((x) => x.cpuUs));
      return [name, fmt(r), `${fmt(r / base, 2)}x`, fmt(cpu, 1), i === 0 ? '-' : fmt(cpu - baseCpu, 1)];
    }));
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
