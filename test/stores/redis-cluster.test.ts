/** The contract suite on a real Redis Cluster of three masters, through ioredis's Cluster client. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-server.js';

let cluster: RedisCluster;
before(async () => {
  cluster = await startRedisCluster(3);
});
after(() => cluster.stop());

runContractSuite({
  name: 'redis cluster (3 masters)',
  backing: async () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    return {
      connect: () => createRedisStore(cluster.client(), { prefix }),
      restart: () => cluster.restart(),
      cleanup: async () => undefined,
    };
  },
});

describe('redis cluster', () => {
  it('spreads locks over every master, keeps each lock in one slot, and lists them all', async () => {
    const client = cluster.client();
    const baton = createBaton(createRedisStore(client, { prefix: 'spread' }));
    const names = Array.from({ length: 24 }, (_, i) => `job-${i}`);
    const leases = await Promise.all(names.map((name) => baton.mutex(name).acquire({ ttlMs: 10_000 })));
    const perMaster = await Promise.all(client.nodes('master').map(async (node) => (await node.keys('{spread:*')).length));
    assert.equal(perMaster.length, 3);
    assert.ok(perMaster.every((n) => n > 0), `keys per master: ${perMaster.join(', ')}`);
    // Each lock is a hash and a plain key under one hash tag: they must share a slot.
    for (const name of names.slice(0, 4)) {
      const [a, b] = await Promise.all([client.cluster('KEYSLOT', `{spread:mutex:${name}}:s`), client.cluster('KEYSLOT', `{spread:mutex:${name}}`)]);
      assert.equal(a, b);
    }
    assert.deepEqual((await baton.list()).map((l) => l.name).sort(), [...names].sort());
    for (const lease of leases) await lease.release();
    await baton.close();
  });
});
