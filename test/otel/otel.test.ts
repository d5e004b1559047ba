/**
 * baton-lock/otel with the OpenTelemetry SDK (a real MeterProvider, read through the SDK's
 * in-memory exporter) on the memory and SQLite stores: every instrument's values and
 * attributes after an acquire, a contention, a timeout, an abort, a refused request, a lease
 * lost (expired, revoked), a failed renewal and releases; the counts back to 0 after close.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { createBaton, StoreUnavailableError, type Baton, type LockStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { BUCKETS, instrument } from '../../src/otel/index.js';
import { wrapStore } from '../helpers/wrap-store.js';
import { until, within } from '../helpers/wait.js';

/** A real SDK pipeline: MeterProvider, a reader that exports on demand into memory. */
function sdk() {
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const provider = new MeterProvider({ readers: [reader] });
  return {
    provider,
    /** Collects now: the metrics by name. */
    async collect(): Promise<Map<string, MetricData>> {
      exporter.reset();
      await reader.forceFlush();
      const all = exporter.getMetrics().flatMap((r) => r.scopeMetrics.flatMap((s) => s.metrics));
      return new Map(all.map((m) => [m.descriptor.name, m]));
    },
    shutdown: () => provider.shutdown(),
  };
}

type Point = { attributes: Record<string, unknown>; value: unknown };

function points(m: Map<string, MetricData>, name: string): Point[] {
  const metric = m.get(name);
  return metric ? (metric.dataPoints as Point[]) : [];
}

/** The value of a sum (counter, up-down counter) with exactly these attributes; 0 when none. */
function sum(m: Map<string, MetricData>, name: string, attributes: Record<string, unknown>): number {
  const point = points(m, name).find((p) => sameAttributes(p.attributes, attributes));
  return point ? (point.value as number) : 0;
}

/** The count of a histogram's recordings with exactly these attributes. */
function count(m: Map<string, MetricData>, name: string, attributes: Record<string, unknown>): number {
  const point = points(m, name).find((p) => sameAttributes(p.attributes, attributes));
  return point ? (point.value as { count: number }).count : 0;
}

function sameAttributes(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

interface Backing {
  name: string;
  /** Two stores on one backing, as two processes would have. */
  connect(): LockStore;
  cleanup(): void;
}

const dir = mkdtempSync(join(tmpdir(), 'baton-otel-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const backings: (() => Backing)[] = [
  () => {
    const store = createMemoryStore();
    return { name: 'memory', connect: () => wrapStore(store, { close: async () => undefined }), cleanup: () => void store.close() };
  },
  () => {
    const path = join(dir, `locks-${Math.random().toString(16).slice(2)}.db`);
    return { name: 'sqlite', connect: () => createSqliteStore({ path }), cleanup: () => undefined };
  },
];

for (const make of backings) {
  const backing = make();
  describe(`otel metrics on the ${backing.name} store`, { timeout: 60_000 }, () => {
    after(() => backing.cleanup());

    it('every instrument reports what happened, with kind, store and outcome attributes and no lock name', async () => {
      const { provider, collect, shutdown } = sdk();
      const a = createBaton(backing.connect(), { minBackoffMs: 5, maxBackoffMs: 20 });
      const b = createBaton(backing.connect(), { minBackoffMs: 5, maxBackoffMs: 20 });
      const store = a.store.name;
      const ia = instrument(a, { meterProvider: provider, storeOperations: true });
      const ib = instrument(b, { meterProvider: provider });
      const mutex = { 'baton.lock.kind': 'mutex', 'baton.store': store };
      try {
        // Acquired at once.
        const first = await a.mutex('job').acquire({ ttlMs: 10_000 });
        // Busy (tryAcquire), then a timeout: two contentions.
        assert.equal(await b.mutex('job').tryAcquire(), null);
        await assert.rejects(b.mutex('job').acquire({ timeoutMs: 50 }), { code: 'LOCK_TIMEOUT' });
        // Aborted while waiting.
        const controller = new AbortController();
        const aborted = b.mutex('job').acquire({ signal: controller.signal });
        // A waiter that gets it when `first` is released: waiters is 1 while it waits.
        const waiting = b.mutex('job').acquire({ ttlMs: 10_000 });
        await until(async () => sum(await collect(), 'baton.lock.waiters', mutex) === 2, 'two waiters counted');
        controller.abort();
        await assert.rejects(aborted, { name: 'AbortError' });
        let m = await collect();
        assert.equal(sum(m, 'baton.lock.waiters', mutex), 1);
        assert.equal(sum(m, 'baton.lock.held', mutex), 1);
        await first.release();
        const second = await within(waiting, 10_000, 'the waiter gets the lock');
        m = await collect();
        assert.equal(sum(m, 'baton.lock.waiters', mutex), 0);
        assert.equal(sum(m, 'baton.lock.held', mutex), 1, 'one holder: b');
        // Refused: a semaphore asked with other permits than its holder's.
        const permit = await a.semaphore('pool', { permits: 2 }).acquire();
        await assert.rejects(b.semaphore('pool', { permits: 3 }).acquire({ timeoutMs: 1000 }), { code: 'INVALID_ARGUMENT' });
        await permit.release();
        // Lost: revoked by a forced release, found at the next extend.
        await a.forceRelease('job');
        await assert.rejects(second.extend(), { code: 'LEASE_LOST', reason: 'revoked' });
        // Lost: expired (no renewal).
        const short = await a.mutex('short').acquire({ ttlMs: 200 });
        await until(() => !short.held, 'the short lease expires', { ms: 5000 });

        m = await collect();
        const acquire = 'baton.lock.acquire.duration';
        assert.equal(count(m, acquire, { ...mutex, 'baton.acquire.outcome': 'acquired' }), 3, 'first, second, short');
        assert.equal(count(m, acquire, { ...mutex, 'baton.acquire.outcome': 'busy' }), 1);
        assert.equal(count(m, acquire, { ...mutex, 'baton.acquire.outcome': 'timeout' }), 1);
        assert.equal(count(m, acquire, { ...mutex, 'baton.acquire.outcome': 'aborted' }), 1);
        const semaphore = { 'baton.lock.kind': 'semaphore', 'baton.store': store };
        assert.equal(count(m, acquire, { ...semaphore, 'baton.acquire.outcome': 'acquired' }), 1);
        assert.equal(count(m, acquire, { ...semaphore, 'baton.acquire.outcome': 'error', 'error.type': 'INVALID_ARGUMENT' }), 1);
        assert.equal(points(m, acquire).length, 6, 'no other attribute sets');

        const hold = 'baton.lock.hold.duration';
        assert.equal(count(m, hold, { ...mutex, 'baton.hold.outcome': 'released' }), 1);
        assert.equal(count(m, hold, { ...semaphore, 'baton.hold.outcome': 'released' }), 1);
        assert.equal(count(m, hold, { ...mutex, 'baton.hold.outcome': 'lost', 'baton.lost.reason': 'revoked' }), 1);
        assert.equal(count(m, hold, { ...mutex, 'baton.hold.outcome': 'lost', 'baton.lost.reason': 'expired' }), 1);
        const expired = points(m, hold).find((p) => p.attributes['baton.lost.reason'] === 'expired')!.value as { sum: number };
        assert.ok(expired.sum >= 0.15 && expired.sum < 5, `the expired lease was held about its TTL (0.2 s), got ${expired.sum} s`);

        assert.equal(sum(m, 'baton.lock.contentions', mutex), 4, 'tryAcquire, timeout, aborted, waiter');
        assert.equal(sum(m, 'baton.lease.lost', { ...mutex, 'baton.lost.reason': 'revoked' }), 1);
        assert.equal(sum(m, 'baton.lease.lost', { ...mutex, 'baton.lost.reason': 'expired' }), 1);
        assert.equal(sum(m, 'baton.lock.held', mutex), 0);
        assert.equal(sum(m, 'baton.lock.held', semaphore), 0);

        // Store operations: only a's, which asked for them.
        const op = 'baton.store.operation.duration';
        for (const verb of ['grant', 'release', 'forceRelease']) {
          assert.ok(count(m, op, { 'baton.store': store, 'baton.store.operation': verb }) >= 1, `a ${verb} was timed`);
        }
        assert.equal(count(m, op, { 'baton.store': store, 'baton.store.operation': 'grant' }), 3, 'a made three grants: first, the permit, short');
        for (const point of points(m, op)) assert.ok(!('baton.lock.name' in point.attributes));

        // Units and advised buckets.
        assert.equal(m.get(acquire)!.descriptor.unit, 's');
        assert.equal(m.get(acquire)!.dataPointType, DataPointType.HISTOGRAM);
        const buckets = (points(m, acquire)[0]!.value as { buckets: { boundaries: number[] } }).buckets.boundaries;
        assert.deepEqual(buckets, [...BUCKETS.acquire]);
        assert.deepEqual((points(m, hold)[0]!.value as { buckets: { boundaries: number[] } }).buckets.boundaries, [...BUCKETS.hold]);
        for (const name of [acquire, hold, 'baton.lock.contentions', 'baton.lease.lost', 'baton.lock.held', 'baton.lock.waiters']) {
          for (const point of points(m, name)) assert.ok(!('baton.lock.name' in point.attributes), `${name} has no lock name by default`);
        }
      } finally {
        ia.stop();
        ib.stop();
        await a.close();
        await b.close();
        await shutdown();
      }
    });

    it('held and waiting return to 0 after close, and a lock name attribute only through the mapping', async () => {
      const { provider, collect, shutdown } = sdk();
      const a = createBaton(backing.connect());
      const b = createBaton(backing.connect(), { minBackoffMs: 5, maxBackoffMs: 20 });
      const lockName = (name: string) => (name.startsWith('tenant-') ? 'tenant-*' : name);
      instrument(a, { meterProvider: provider, lockName });
      instrument(b, { meterProvider: provider, lockName });
      const attrs = (name: string) => ({ 'baton.lock.kind': 'mutex', 'baton.store': a.store.name, 'baton.lock.name': name });
      try {
        await a.mutex('tenant-1').acquire({ ttlMs: 10_000 });
        await a.mutex('tenant-2').acquire({ ttlMs: 10_000 });
        await a.mutex('deploy').acquire({ ttlMs: 10_000, autoRenew: true });
        const waiter = b.mutex('deploy').acquire().catch((error: unknown) => error);
        await until(async () => sum(await collect(), 'baton.lock.waiters', attrs('deploy')) === 1, 'the waiter is counted');
        let m = await collect();
        assert.equal(sum(m, 'baton.lock.held', attrs('tenant-*')), 2);
        assert.equal(sum(m, 'baton.lock.held', attrs('deploy')), 1);
        await b.close();
        assert.equal((await waiter as Error).name, 'ClosedError');
        await a.close();
        m = await collect();
        for (const name of ['baton.lock.held', 'baton.lock.waiters']) {
          assert.ok(points(m, name).length > 0, `${name} still reports`);
          for (const point of points(m, name)) assert.equal(point.value, 0, `${name} ${JSON.stringify(point.attributes)} is back to 0`);
        }
        // Leases given back by close() end as released, and are not counted lost.
        assert.equal(count(m, 'baton.lock.hold.duration', { ...attrs('tenant-*'), 'baton.hold.outcome': 'released' }), 2);
        assert.equal(points(m, 'baton.lease.lost').length, 0);
        assert.equal(count(m, 'baton.lock.acquire.duration', { ...attrs('deploy'), 'baton.acquire.outcome': 'aborted' }), 1, 'closed while waiting: aborted');
      } finally {
        await a.close();
        await b.close();
        await shutdown();
      }
    });
  });
}

describe('otel metrics, store-independent', { timeout: 30_000 }, () => {
  it('a failed automatic renewal is counted, then the lost lease; store calls that fail carry error.type', async () => {
    const { provider, collect, shutdown } = sdk();
    const inner = createMemoryStore();
    let failing = false;
    const store = wrapStore(inner, {
      extend: async (key, owner, ttlMs, call) => {
        if (failing) throw new StoreUnavailableError('memory', 'injected: the store stops answering');
        return inner.extend(key, owner, ttlMs, call);
      },
    });
    const baton = createBaton(store);
    const stop = instrument(baton, { meterProvider: provider, storeOperations: true });
    try {
      const lease = await baton.mutex('renewed').acquire({ ttlMs: 300, autoRenew: true });
      failing = true;
      await until(() => !lease.held, 'the lease is lost once renewals fail until its deadline', { ms: 5000 });
      const m = await collect();
      const mutex = { 'baton.lock.kind': 'mutex', 'baton.store': 'memory' };
      assert.ok(sum(m, 'baton.lease.renewal.failures', mutex) >= 1);
      assert.equal(sum(m, 'baton.lease.lost', { ...mutex, 'baton.lost.reason': 'expired' }), 1);
      assert.ok(count(m, 'baton.store.operation.duration', { 'baton.store': 'memory', 'baton.store.operation': 'extend', 'error.type': 'STORE_UNAVAILABLE' }) >= 1);
    } finally {
      stop[Symbol.dispose]();
      await baton.close();
      await shutdown();
    }
  });

  it('uses the global meter provider of @opentelemetry/api when given none, and records nothing without one', async () => {
    const { provider, collect, shutdown } = sdk();
    const baton = createBaton(createMemoryStore());
    try {
      instrument(baton).stop(); // no global provider: a no-op
      metrics.setGlobalMeterProvider(provider);
      const stop = instrument(baton);
      await (await baton.mutex('g').acquire()).release();
      stop.stop();
      await (await baton.mutex('g').acquire()).release();
      const m = await collect();
      assert.equal(count(m, 'baton.lock.acquire.duration', { 'baton.lock.kind': 'mutex', 'baton.store': 'memory', 'baton.acquire.outcome': 'acquired' }), 1, 'recorded until stopped');
    } finally {
      metrics.disable();
      await baton.close();
      await shutdown();
    }
  });

  it('makes at most 3 recordings per acquire/release cycle (2 uncontended), none for held and waiting', async () => {
    const { provider, shutdown } = sdk();
    let recordings = 0;
    const counting = {
      getMeter(name: string) {
        const meter = provider.getMeter(name);
        return {
          createHistogram: (n: string, o?: object) => {
            const h = meter.createHistogram(n, o);
            return { record: (v: number, a?: Record<string, string>) => (recordings++, h.record(v, a)) };
          },
          createCounter: (n: string, o?: object) => {
            const c = meter.createCounter(n, o);
            return { add: (v: number, a?: Record<string, string>) => (recordings++, c.add(v, a)) };
          },
          createObservableUpDownCounter: (n: string, o?: object) => meter.createObservableUpDownCounter(n, o),
        };
      },
    };
    const store = createMemoryStore();
    const a = createBaton(store);
    const b = createBaton(store);
    instrument(a, { meterProvider: counting });
    instrument(b, { meterProvider: counting });
    try {
      await (await a.mutex('c').acquire()).release();
      assert.equal(recordings, 2, 'uncontended: acquire and hold');
      const held = await a.mutex('c').acquire();
      recordings = 0;
      const waiting = b.mutex('c').acquire();
      await until(() => recordings === 1, 'the contention is recorded');
      await held.release();
      recordings = 0;
      await (await waiting).release();
      assert.equal(recordings, 2, "the waiter's acquire and hold, after its contention: 3 in its cycle");
    } finally {
      await a.close();
      await b.close();
      await shutdown();
    }
  });

  it('refuses bad options with a typed error', () => {
    const baton = createBaton(createMemoryStore());
    assert.throws(() => instrument(baton, { lockName: 'yes' as unknown as () => string }), { code: 'INVALID_ARGUMENT', argument: 'lockName' });
    assert.throws(() => instrument(baton, { meterProvider: {} as never }), { code: 'INVALID_ARGUMENT', argument: 'meterProvider' });
    assert.throws(() => instrument(baton, { lockname: () => 'x' } as never), { code: 'INVALID_ARGUMENT', argument: 'options.lockname' });
    void (baton as Baton).close();
  });
});
