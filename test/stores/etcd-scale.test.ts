/**
 * The etcd store at scale: leases are kept alive by the store's session, once for all of
 * them, so what a store asks of etcd while it holds leases does not grow with their number.
 * 10 000 leases of 30 s are taken on a 10 s session and held for 25 s (two and a half session
 * TTLs, past the leases' first renewals) with none lost; every call the store makes on its
 * etcd3 client is counted (each KV and Lease call, each keep-alive stream opened and each
 * message written on one, each watcher made or cancelled), and the rate while 10 000 are held
 * is that while 100 are.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Etcd3 } from 'etcd3';
import { createBaton, type Lease } from '../../src/index.js';
import { createEtcdStore, type EtcdClient } from '../../src/stores/etcd/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** counted wraps a real etcd3 client: calls go through unchanged, and each is counted. */
function counted(client: Etcd3): { client: EtcdClient; calls(): number } {
  let calls = 0;
  const countCalls = <T extends object>(target: T, wrap?: (property: string | symbol, result: unknown) => unknown): T => new Proxy(target, {
    get(object, property, receiver) {
      const value = Reflect.get(object, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        calls++;
        const result = (value as (...a: unknown[]) => unknown).apply(object, args);
        return wrap ? wrap(property, result) : result;
      };
    },
  });
  // A keep-alive stream: its opening is a call (above), and so is every message written on it.
  const leaseClient = countCalls(client.leaseClient, (property, result) => {
    if (property !== 'leaseKeepAlive') return result;
    return (result as Promise<{ write: (...args: unknown[]) => boolean }>).then((stream) => {
      const write = stream.write.bind(stream);
      stream.write = (...args: unknown[]) => {
        calls++;
        return write(...args);
      };
      return stream;
    });
  });
  // A watcher made (a create request on the watch stream) and a watcher cancelled are calls.
  const watch = (): ReturnType<Etcd3['watch']> => {
    const builder = client.watch();
    const proxy: ReturnType<Etcd3['watch']> = new Proxy(builder, {
      get(target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          if (property !== 'watcher') return result === target ? proxy : result;
          calls++;
          const watcher = result as ReturnType<ReturnType<Etcd3['watch']>['watcher']>;
          const cancel = watcher.cancel.bind(watcher);
          watcher.cancel = () => {
            calls++;
            return cancel();
          };
          return watcher;
        };
      },
    });
    return proxy;
  };
  return { client: { kv: countCalls(client.kv), leaseClient, watch, close: () => client.close() } as unknown as EtcdClient, calls: () => calls };
}

/** Runs `work` over `items`, at most `limit` at once. */
async function bounded<T>(items: readonly T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++]!);
  }));
}

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

describe('etcd store: many leases', () => {
  it('10 000 leases of 30 s on a 10 s session are held for 25 s with none lost, and etcd is asked as often as with 100', { timeout: 120_000 }, async (t) => {
    const SESSION_TTL_MS = 10_000;
    const LEASE_TTL_MS = 30_000;
    const tapped = counted(cluster.client());
    const baton = createBaton(createEtcdStore(tapped.client, { prefix: `scale${randomBytes(4).toString('hex')}/`, sessionTtlMs: SESSION_TTL_MS }));
    const lost: string[] = [];
    baton.on('lost', (event) => lost.push(`${event.name}: ${event.reason}`));
    const leases: Lease<bigint>[] = [];
    const take = (names: readonly string[]): Promise<void> => bounded(names, 200, async (name) => {
      leases.push(await baton.mutex(name).acquire({ ttlMs: LEASE_TTL_MS, autoRenew: true, timeoutMs: 30_000 }));
    });
    /** The store's etcd calls per second over `ms` from now. */
    const rate = async (ms: number): Promise<number> => {
      const from = tapped.calls();
      const start = performance.now();
      await sleep(ms);
      return ((tapped.calls() - from) * 1000) / (performance.now() - start);
    };
    try {
      const names = Array.from({ length: 10_000 }, (_, i) => `lease-${i}`);
      await take(names.slice(0, 100));
      // One session TTL: three keep-alives.
      const at100 = await rate(SESSION_TTL_MS);

      const started = performance.now();
      await take(names.slice(100));
      const tookMs = performance.now() - started;
      assert.equal(leases.length, 10_000);
      // Two and a half session TTLs, in which every lease is renewed at least twice (every third of its 30 s): by core, locally.
      const at10k = await rate(25_000);

      const held = leases.filter((lease) => !lease.signal.aborted).length;
      t.diagnostic(`took 9 900 leases in ${(tookMs / 1000).toFixed(1)} s (200 at once); etcd calls/s while holding 100: ${at100.toFixed(2)}, while holding 10 000 for 25 s: ${at10k.toFixed(2)}; held at the end: ${held}; lost: ${lost.length}`);
      assert.deepEqual(lost.slice(0, 5), [], `${lost.length} leases lost`);
      assert.equal(held, 10_000, 'every lease is still held');
      assert.ok(at10k > 0, 'the session is kept alive while the leases are held');
      // About equal: the same few keep-alives a session TTL (a window may catch one more or one less).
      assert.ok(at10k <= at100 * 2 + 0.5, `etcd calls/s grew with the leases: ${at100.toFixed(2)} with 100, ${at10k.toFixed(2)} with 10 000`);
    } finally {
      // One revoke takes every key away.
      await baton.close();
    }
  });
});
