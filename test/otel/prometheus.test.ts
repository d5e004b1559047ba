/**
 * baton-lock/prometheus with prom-client's own Registry on the memory and SQLite stores: the
 * same events as the OpenTelemetry test give the same values under Prometheus names, held
 * and waiting return to 0 after close, and two instances share one registry.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import client from 'prom-client';
import { createBaton, type LockStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { instrumentPrometheus } from '../../src/prometheus/index.js';
import { until } from '../helpers/wait.js';
import { wrapStore } from '../helpers/wrap-store.js';

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };

async function values(registry: client.Registry, name: string): Promise<Value[]> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return metric ? (metric.values as Value[]) : [];
}

function pick(vals: Value[], labels: Record<string, string>, metricName?: string): number {
  const found = vals.find((v) => (metricName === undefined || v.metricName === metricName) && Object.keys(labels).length === Object.keys(v.labels).filter((k) => k !== 'le').length && Object.entries(labels).every(([k, x]) => v.labels[k] === x));
  return found ? found.value : 0;
}

const dir = mkdtempSync(join(tmpdir(), 'baton-prom-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const backings: [string, () => () => LockStore][] = [
  ['memory', () => {
    const store = createMemoryStore();
    return () => wrapStore(store, { close: async () => undefined });
  }],
  ['sqlite', () => {
    const path = join(dir, `locks-${Math.random().toString(16).slice(2)}.db`);
    return () => createSqliteStore({ path });
  }],
];

for (const [name, make] of backings) {
  describe(`prometheus metrics on the ${name} store`, { timeout: 60_000 }, () => {
    it('acquired, busy, timeout, contentions, released, revoked, and counts back to 0 after close; two instances in one registry', async () => {
      const connect = make();
      const registry = new client.Registry();
      const a = createBaton(connect(), { minBackoffMs: 5, maxBackoffMs: 20 });
      const b = createBaton(connect(), { minBackoffMs: 5, maxBackoffMs: 20 });
      instrumentPrometheus(a, { client, registry, storeOperations: true });
      instrumentPrometheus(b, { client, registry });
      const store = a.store.name;
      const mutex = { kind: 'mutex', store };
      try {
        const first = await a.mutex('job').acquire({ ttlMs: 10_000 });
        assert.equal(await b.mutex('job').tryAcquire(), null);
        await assert.rejects(b.mutex('job').acquire({ timeoutMs: 50 }), { code: 'LOCK_TIMEOUT' });
        const waiting = b.mutex('job').acquire({ ttlMs: 10_000 });
        await until(async () => pick(await values(registry, 'baton_lock_waiters'), mutex) === 1, 'the waiter is counted');
        assert.equal(pick(await values(registry, 'baton_lock_held'), mutex), 1);
        await first.release();
        const second = await waiting;
        await a.forceRelease('job');
        await assert.rejects(second.extend(), { code: 'LEASE_LOST' });
        const acquire = await values(registry, 'baton_lock_acquire_duration_seconds');
        const count = 'baton_lock_acquire_duration_seconds_count';
        assert.equal(pick(acquire, { ...mutex, outcome: 'acquired' }, count), 2);
        assert.equal(pick(acquire, { ...mutex, outcome: 'busy' }, count), 1);
        assert.equal(pick(acquire, { ...mutex, outcome: 'timeout' }, count), 1);
        const hold = await values(registry, 'baton_lock_hold_duration_seconds');
        assert.equal(pick(hold, { ...mutex, outcome: 'released' }, 'baton_lock_hold_duration_seconds_count'), 1);
        assert.equal(pick(hold, { ...mutex, outcome: 'lost', reason: 'revoked' }, 'baton_lock_hold_duration_seconds_count'), 1);
        assert.equal(pick(await values(registry, 'baton_lock_contentions_total'), mutex), 3);
        assert.equal(pick(await values(registry, 'baton_lease_lost_total'), { ...mutex, reason: 'revoked' }), 1);
        const ops = await values(registry, 'baton_store_operation_duration_seconds');
        assert.equal(pick(ops, { store, operation: 'grant' }, 'baton_store_operation_duration_seconds_count'), 1, "a's one grant");
        assert.ok((await registry.metrics()).includes('# TYPE baton_lock_acquire_duration_seconds histogram'));
        await a.mutex('other').acquire();
        assert.equal(pick(await values(registry, 'baton_lock_held'), mutex), 1);
      } finally {
        await a.close();
        await b.close();
      }
      assert.equal(pick(await values(registry, 'baton_lock_held'), mutex), 0);
      assert.equal(pick(await values(registry, 'baton_lock_waiters'), mutex), 0);
    });
  });
}

describe('prometheus options', () => {
  it('refuses a missing client, and instances that disagree on lock names in one registry', () => {
    const baton = createBaton(createMemoryStore());
    const registry = new client.Registry();
    assert.throws(() => instrumentPrometheus(baton, {} as never), { code: 'INVALID_ARGUMENT', argument: 'client' });
    instrumentPrometheus(baton, { client, registry, lockName: (n) => n });
    assert.throws(() => instrumentPrometheus(baton, { client, registry }), { code: 'INVALID_ARGUMENT', argument: 'lockName' });
    void baton.close();
  });
});
