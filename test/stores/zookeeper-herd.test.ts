/**
 * No herd on ZooKeeper: a release fires exactly one watch among 10, 50 and 200 waiters (each
 * waiter watches only its predecessor), and only that waiter asks again. The waiters' store
 * runs on a real node-zookeeper-client client that is tapped (every watch it delivers is
 * counted), on a real server.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBaton, type GrantRequest, type Lease } from '../../src/index.js';
import { createZooKeeperStore, type ZooKeeperClient } from '../../src/stores/zookeeper/index.js';
import { startZooKeeper, type ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';
import { wrapStore } from '../helpers/wrap-store.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** tap wraps a real client: calls go through unchanged; every watch delivered is counted. */
function tap(client: ZooKeeperClient): { client: ZooKeeperClient; fired: () => number } {
  let fired = 0;
  const counted = <W extends ((...args: never[]) => void) | undefined>(watcher: W): W => (watcher ? (((...args: never[]) => {
    fired++;
    watcher(...args);
  }) as W) : watcher);
  const tapped: ZooKeeperClient = Object.create(client as object) as ZooKeeperClient;
  tapped.getData = (path, watcher, callback) => client.getData(path, counted(watcher), callback);
  tapped.exists = (path, watcher, callback) => client.exists(path, counted(watcher), callback);
  tapped.getChildren = (path, watcher, callback) => client.getChildren(path, counted(watcher), callback);
  return { client: tapped, fired: () => fired };
}

describe('no herd on ZooKeeper', () => {
  let server: ZooKeeperEnsemble;
  before(async () => {
    server = await startZooKeeper(1);
  });
  after(() => server.stop());

  for (const waiters of [10, 50, 200]) {
    it(`a release fires one watch and one grant among ${waiters} waiters`, async () => {
      const root = `/herd${waiters}`;
      const holderBaton = createBaton(createZooKeeperStore(server.client({ sessionTimeout: 10_000 }), { root, closeClient: true }));
      const { client, fired } = tap(server.client({ sessionTimeout: 10_000 }));
      let grants = 0;
      const store = createZooKeeperStore(client, { root, closeClient: true });
      const baton = createBaton(wrapStore(store, { grant: (request: GrantRequest, call) => (grants++, store.grant(request, call)) }), { queuePollMs: 60_000 });
      try {
        const holder = await holderBaton.mutex('m').acquire({ ttlMs: 60_000 });
        const pending: Promise<Lease<bigint>>[] = [];
        for (let i = 0; i < waiters; i++) pending.push(baton.mutex('m').acquire({ ttlMs: 60_000, timeoutMs: 60_000 }) as Promise<Lease<bigint>>);
        for (const end = Date.now() + 30_000; (await holderBaton.inspect('m')).waiters.length < waiters; await sleep(20)) {
          assert.ok(Date.now() < end, 'the waiters queued within 30 s');
        }
        await sleep(300);
        const [firedBefore, grantsBefore] = [fired(), grants];
        await holder.release();
        const first = await Promise.race(pending);
        await sleep(500);
        assert.equal(fired() - firedBefore, 1, 'watches fired by one release');
        assert.equal(grants - grantsBefore, 1, 'waiters that asked again after one release');
        assert.deepEqual((await holderBaton.inspect('m')).holders.map((h) => h.owner), [first.owner]);
        assert.equal((await holderBaton.inspect('m')).waiters.length, waiters - 1);
      } finally {
        await baton.close();
        await holderBaton.close();
      }
    });
  }
});
