/**
 * A mutex's or semaphore's keys reuse a few names a session, since etcd keeps every deleted
 * key in its index until the cluster is compacted (never, by default): a lock that wrote a
 * new name on every acquisition would get slower with use. The owner travels in the value.
 * Counted on a real etcd, through a watch of every put under the lock's prefix.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import type { IKeyValue } from 'etcd3';
import { createBaton } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

/** Runs `work`, and returns the names of every key put under `pfx` meanwhile. */
async function namesPut(pfx: string, work: () => Promise<void>): Promise<Set<string>> {
  const names = new Set<string>();
  const watcher = await cluster.client().watch().prefix(pfx).only('put').create();
  watcher.on('put', (kv: IKeyValue) => names.add(kv.key.toString()));
  try {
    await work();
    // A write after the work: once its put arrives, every earlier one has too.
    const marker = `${pfx}~marker`;
    const seen = new Promise<void>((resolve) => watcher.on('put', (kv: IKeyValue) => kv.key.toString() === marker && resolve()));
    await cluster.client().put(marker).value('');
    await seen;
    names.delete(marker);
    await cluster.client().delete().key(marker);
  } finally {
    await watcher.cancel();
  }
  return names;
}

describe('etcd: key names', () => {
  it('a mutex used 100 times by one store writes one key name, with the owner in its value', async () => {
    const prefix = `names-${randomBytes(4).toString('hex')}/`;
    const store = createEtcdStore(cluster.client(), { prefix });
    const baton = createBaton(store);
    try {
      const owners: string[] = [];
      const names = await namesPut(`${prefix}mutex/m/`, async () => {
        for (let i = 0; i < 100; i++) {
          const lease = await baton.mutex('m').acquire({ ttlMs: 5000 });
          if (i === 50) assert.deepEqual((await baton.inspect('m')).holders.map((h) => h.owner), [lease.owner], 'inspect names the owner');
          owners.push(lease.owner);
          await lease.release();
        }
      });
      assert.equal(new Set(owners).size, 100, 'every acquisition has its own owner');
      assert.deepEqual([...names], [`${prefix}mutex/m/${await store.sessionLeaseId()}`], 'one name: the session lease, as etcd\'s own recipe writes it');
    } finally {
      await baton.close();
    }
  });

  it('a semaphore held three times at once by one store uses three names, again and again', async () => {
    const prefix = `names-${randomBytes(4).toString('hex')}/`;
    const store = createEtcdStore(cluster.client(), { prefix });
    const baton = createBaton(store);
    try {
      const names = await namesPut(`${prefix}semaphore/s/`, async () => {
        for (let round = 0; round < 20; round++) {
          const leases = await Promise.all([0, 1, 2].map(() => baton.semaphore('s', { permits: 3 }).acquire({ ttlMs: 5000 })));
          const state = await baton.inspect('s', 'semaphore');
          assert.deepEqual(state.holders.map((h) => h.owner).sort(), leases.map((l) => l.owner).sort());
          await Promise.all(leases.map((lease) => lease.release()));
        }
      });
      const hex = await store.sessionLeaseId();
      assert.deepEqual([...names].sort(), [`${hex}`, `${hex}_1`, `${hex}_2`].map((n) => `${prefix}semaphore/s/${n}`).sort());
    } finally {
      await baton.close();
    }
  });
});
