/**
 * etcd: a newcomer refused for its permits (its limit) has put its key before it read the
 * queue, and deletes it after. Until then, another newcomer of those permits can find only
 * such keys just ahead of it and be let into the queue; it must never hold next to an entry
 * of other permits. The refused newcomers are played by keys put by hand, caught between
 * their put and their delete.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { storeCall } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import type { GrantRequest } from '../../src/store.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

describe('etcd: permits', () => {
  it('a waiter let in behind the keys of refused newcomers holds only once the entries of other permits are gone', async () => {
    const store = createEtcdStore(cluster.client(), { prefix: `permits-${randomBytes(4).toString('hex')}/` });
    const raw = cluster.client();
    const key = { kind: 'semaphore', name: 's' } as const;
    const pfx = store.resourcePrefix(key);
    const ask = (owner: string, limit: number): GrantRequest => ({ key, owner, mode: 'shared', limit, ttlMs: 10_000, enqueue: true, queueTtlMs: 10_000 });
    try {
      assert.equal((await store.grant(ask('a'.repeat(32), 1), storeCall(5000))).granted, true, 'the holder of 1 permit');
      // Three newcomers of 3 permits, refused for it, their keys not deleted yet.
      for (let i = 1; i <= 3; i++) await raw.put(`${pfx}refused-${i}`).value(`shared 3 ${String(i).repeat(32)}`);
      const queued = await store.grant(ask('b'.repeat(32), 3), storeCall(5000));
      assert.deepEqual(queued, { granted: false, position: 4 }, 'the keys just ahead state 3 permits: let in, queued');
      await raw.delete().prefix(`${pfx}refused-`);
      await sleep(200);
      // Fewer than 3 keys ahead, but the one left holds 1 permit: the waiter stays queued.
      const again = await store.grant(ask('b'.repeat(32), 3), storeCall(5000));
      assert.equal(again.granted, false, 'held next to the holder of 1 permit');
      assert.equal(await store.release(key, 'a'.repeat(32), storeCall(5000)), true);
      assert.equal((await store.grant(ask('b'.repeat(32), 3), storeCall(5000))).granted, true, 'holds once the holder of 1 permit is gone');
      assert.deepEqual(await store.grant(ask('c'.repeat(32), 1), storeCall(5000)), { granted: false, limitInUse: 3 });
    } finally {
      await store.close();
    }
  });
});
