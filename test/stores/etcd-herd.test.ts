/**
 * No herd on etcd: a release notifies at most `permits` waiters, however long the queue; and
 * the waiter next in line holds on the release's deletion with no round trip of its own. The
 * waiters' store runs on a real etcd3 client that is tapped (every watcher it makes, every
 * deletion etcd delivers to one, every KV call), on a real etcd member.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { createBaton, type GrantRequest, type Lease } from '../../src/index.js';
import { createEtcdStore, type EtcdClient } from '../../src/stores/etcd/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';
import { wrapStore } from '../helpers/wrap-store.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** WatchTap: the watches of one client: what each live watcher covers, and the deletions delivered. */
interface WatchTap {
  client: EtcdClient;
  /** Live watchers whose range covers `key` (a key watch on it, or a prefix or range watch around it). */
  covering(key: string): number;
  /** Deletions of `key` that etcd delivered to a live watcher. */
  delivered(key: string): number;
  watchers(): number;
  /** Live watchers that etcd has confirmed (from then on they get every deletion). */
  connected(): number;
  /** KV calls (transactions, ranges, deletions) made so far. */
  kvCalls(): number;
}

/** tap wraps a real etcd3 client: calls go through unchanged; watches are recorded. */
function tap(client: Etcd3): WatchTap {
  const live = new Map<Watcher, { start: string; end: string | null }>();
  const confirmed = new Set<Watcher>();
  const deletions = new Map<string, number>();
  let kvCalls = 0;
  const kv = new Proxy(client.kv, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        kvCalls++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  const watch = (): ReturnType<Etcd3['watch']> => {
    const builder = client.watch();
    const proxy: ReturnType<Etcd3['watch']> = new Proxy(builder, {
      get(target, property, receiver) {
        if (property === 'watcher') {
          return () => {
            const watcher = target.watcher();
            const request = watcher.request;
            const range = { start: Buffer.from(request.key!).toString(), end: request.range_end ? Buffer.from(request.range_end).toString() : null };
            live.set(watcher, range);
            watcher.once('connected', () => confirmed.add(watcher));
            watcher.on('delete', (kv: IKeyValue) => {
              const key = kv.key.toString();
              deletions.set(key, (deletions.get(key) ?? 0) + 1);
            });
            const cancel = watcher.cancel.bind(watcher);
            watcher.cancel = () => {
              live.delete(watcher);
              confirmed.delete(watcher);
              return cancel();
            };
            return watcher;
          };
        }
        const value = Reflect.get(target, property, receiver) as unknown;
        if (typeof value !== 'function') return value;
        // The builder's setters return the builder: return the proxy instead, so the chain stays tapped.
        return (...args: unknown[]) => {
          const result = (value as (...a: unknown[]) => unknown).apply(target, args);
          return result === target ? proxy : result;
        };
      },
    });
    return proxy;
  };
  return {
    client: { kv, leaseClient: client.leaseClient, close: () => client.close(), watch } as unknown as EtcdClient,
    covering: (key) => [...live.values()].filter(({ start, end }) => (end === null ? key === start : key >= start && key < end)).length,
    delivered: (key) => deletions.get(key) ?? 0,
    watchers: () => live.size,
    connected: () => confirmed.size,
    kvCalls: () => kvCalls,
  };
}

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

describe('etcd store: no herd', () => {
  const PERMITS = 3;

  /**
   * Queues `waiters` on a semaphore of 3 permits held by 3 leases, releases the newest holder
   * (the key with the most waiters close behind it), and reports how many waiters watched its
   * key and how many got its deletion.
   */
  async function notifiedByRelease(waiters: number): Promise<{ covering: number; delivered: number; watchers: number }> {
    const prefix = `herd${randomBytes(4).toString('hex')}/`;
    const holderStore = createEtcdStore(cluster.client(), { prefix, sessionTtlMs: 5000 });
    const watched = tap(cluster.client());
    const waiterStore = createEtcdStore(watched.client, { prefix, sessionTtlMs: 5000 });
    // Counts the waiters whose first grant came back queued: by then their watches exist.
    const queued = new Set<string>();
    const counted = wrapStore(waiterStore, {
      grant: async (request: GrantRequest) => {
        const result = await waiterStore.grant(request);
        if (!result.granted && request.enqueue) queued.add(request.owner);
        return result;
      },
    });
    const a = createBaton(holderStore);
    // A long poll period, so that what the waiters do is what the watches tell them.
    const b = createBaton(counted, { queuePollMs: 10_000 });
    try {
      const holders: Lease<bigint>[] = [];
      for (let i = 0; i < PERMITS; i++) holders.push(await a.semaphore('s', { permits: PERMITS }).acquire({ ttlMs: 60_000 }));
      const pending = Array.from({ length: waiters }, () => b.semaphore('s', { permits: PERMITS }).acquire({ ttlMs: 60_000, timeoutMs: 120_000 }));
      for (const waiting of pending) waiting.catch(() => undefined);
      while (queued.size < waiters || watched.connected() < watched.watchers()) await sleep(20);
      const watchers = watched.watchers();

      const newest = holders[PERMITS - 1]!;
      const key = holderStore.keyOf(newest.owner)!;
      const covering = watched.covering(key);
      await newest.release();
      await Promise.race(pending);
      // Every watcher of the key gets its deletion (etcd guarantees delivery); wait for all of them.
      while (watched.delivered(key) < covering) await sleep(10);
      return { covering, delivered: watched.delivered(key), watchers };
    } finally {
      await b.close();
      await a.close();
    }
  }

  it('a release notifies at most `permits` waiters, as many with 200 waiters as with 10', async (t) => {
    const runs = new Map<number, { covering: number; delivered: number; watchers: number }>();
    for (const waiters of [10, 50, 200]) runs.set(waiters, await notifiedByRelease(waiters));
    t.diagnostic(`semaphore of ${PERMITS} permits, waiters notified by a release (watching its key / got its deletion): ${[...runs].map(([n, r]) => `${n} waiters: ${r.covering} / ${r.delivered}`).join('; ')}`);
    for (const [waiters, run] of runs) {
      assert.equal(run.covering, PERMITS, `with ${waiters} waiters, the ${PERMITS} waiters just behind the released key watch it, and no others`);
      assert.equal(run.delivered, PERMITS, `with ${waiters} waiters, etcd delivered its deletion ${run.delivered} times`);
      assert.equal(run.watchers, PERMITS * waiters, `each waiter watches the ${PERMITS} keys just ahead of it`);
    }
  });

  it('a mutex waiter watches exactly its predecessor', async () => {
    const prefix = `herd${randomBytes(4).toString('hex')}/`;
    const holderStore = createEtcdStore(cluster.client(), { prefix, sessionTtlMs: 5000 });
    const watched = tap(cluster.client());
    const waiterStore = createEtcdStore(watched.client, { prefix, sessionTtlMs: 5000 });
    const a = createBaton(holderStore);
    const b = createBaton(waiterStore, { queuePollMs: 10_000 });
    try {
      const holder = await a.mutex('m').acquire({ ttlMs: 60_000 });
      const pending = Array.from({ length: 20 }, () => b.mutex('m').acquire({ ttlMs: 60_000, timeoutMs: 120_000 }));
      for (const waiting of pending) waiting.catch(() => undefined);
      while ((await a.inspect('m')).waiters.length < 20 || watched.connected() < 20) await sleep(20);
      assert.equal(watched.watchers(), 20, 'one watcher a waiter');
      const key = holderStore.keyOf(holder.owner)!;
      assert.equal(watched.covering(key), 1, 'only the first waiter watches the holder');
      await holder.release();
      const first = await Promise.race(pending);
      assert.equal(watched.delivered(key), 1);
      await first.release();
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a waiter with only the holder ahead holds on the holder\'s deletion, without another round trip', async () => {
    const prefix = `herd${randomBytes(4).toString('hex')}/`;
    const holderStore = createEtcdStore(cluster.client(), { prefix, sessionTtlMs: 5000 });
    const watched = tap(cluster.client());
    const a = createBaton(holderStore);
    const b = createBaton(createEtcdStore(watched.client, { prefix, sessionTtlMs: 5000 }), { queuePollMs: 10_000 });
    try {
      for (const [kind, take] of [
        ['mutex', (baton: typeof a) => baton.mutex('first')],
        ['semaphore', (baton: typeof a) => baton.semaphore('first', { permits: 2 })],
      ] as const) {
        const holders = await Promise.all(Array.from({ length: kind === 'mutex' ? 1 : 2 }, () => take(a).acquire({ ttlMs: 60_000 })));
        const waiting = take(b).acquire({ ttlMs: 60_000, timeoutMs: 60_000 });
        while ((await a.inspect('first', kind)).waiters.length < 1 || watched.connected() < holders.length) await sleep(10);
        const before = watched.kvCalls();
        await holders[0]!.release();
        const next = await waiting;
        assert.equal(watched.kvCalls(), before, `the ${kind} waiter made no KV call between the release and its grant`);
        assert.ok(next.token! > holders[0]!.token!);
        await next.release();
        for (const holder of holders.slice(1)) await holder.release();
      }
    } finally {
      await b.close();
      await a.close();
    }
  });

  it('a deletion between a waiter\'s read and the creation of its watch still wakes it (no poll: a missed one would stall)', async () => {
    const prefix = `herd${randomBytes(4).toString('hex')}/`;
    // Two stores hand one mutex back and forth, holding it for no time: a waiter's predecessor
    // is often deleted between the read that finds it and the watch on it. The poll period is
    // longer than the acquire timeout, so only the store's own wake-ups can keep this going.
    const stores = [0, 1].map(() => createBaton(createEtcdStore(cluster.client(), { prefix, sessionTtlMs: 5000 }), { queuePollMs: 120_000 }));
    try {
      let last = 0n;
      await Promise.all(stores.map(async (baton) => {
        for (let i = 0; i < 100; i++) {
          const lease = await baton.mutex('pingpong').acquire({ ttlMs: 10_000, timeoutMs: 60_000 });
          assert.ok(lease.token! > last, 'tokens increase');
          last = lease.token!;
          await lease.release();
        }
      }));
    } finally {
      await Promise.all(stores.map((baton) => baton.close()));
    }
  });
});
