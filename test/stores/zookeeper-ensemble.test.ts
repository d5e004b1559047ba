/**
 * The contract suite on a 3-server ZooKeeper ensemble (each store's client lists every server),
 * and a holder whose server is killed: its session moves to another server and its lease
 * survives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createZooKeeperStore } from '../../src/stores/zookeeper/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startZooKeeper, zookeeperBacking, type ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';

let ensemble: ZooKeeperEnsemble;
before(async () => {
  ensemble = await startZooKeeper(3);
});
after(() => ensemble.stop());

runContractSuite({ name: 'zookeeper (3 servers)', scale: 2, sessionTtlMs: 1000, backing: zookeeperBacking(() => ensemble) });

describe('zookeeper ensemble: the server a holder talks to dies', () => {
  it('the session moves to another server, the lease survives, and nobody else gets the lock', async () => {
    // The holder's client knows server 1 first: it is connected there.
    const holderStore = createZooKeeperStore(ensemble.client({ sessionTimeout: 4000, servers: [0, 1, 2] }), { root: '/moves', closeClient: true });
    const other = createBaton(createZooKeeperStore(ensemble.client({ sessionTimeout: 4000, servers: [1, 2] }), { root: '/moves', closeClient: true }));
    const holder = createBaton(holderStore);
    try {
      const lease = await holder.mutex('m').acquire({ ttlMs: 20_000, autoRenew: true });
      // Which server the holder talks to is the driver's choice: kill each in turn, restarting it, while the lease lives.
      for (const i of [0, 1, 2]) {
        await ensemble.kill(i);
        await new Promise((r) => setTimeout(r, 1500));
        assert.equal(lease.signal.aborted, false, `the lease survived the death of server ${i + 1}`);
        assert.equal(await other.mutex('m').tryAcquire({ ttlMs: 5000 }).catch(() => null), null, 'nobody else gets the lock');
        await ensemble.start(i);
      }
      await lease.release();
      assert.ok(await other.mutex('m').tryAcquire({ ttlMs: 5000 }));
    } finally {
      await holder.close();
      await other.close();
    }
  });
});
