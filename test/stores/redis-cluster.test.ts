/** The contract suite on a real Redis Cluster of three masters, through ioredis's Cluster client. */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError, createBaton } from '../../src/index.js';
import { openRedisCluster } from '../../src/stores/redis/connect.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { openStore, parseStoreUrl, type RedisClusterStoreUrl } from '../../src/url.js';
import { runContractSuite } from '../contract/suite.js';
import { createFaultProxy } from '../faults/proxy.js';
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

describe('redis+cluster:// store URLs', () => {
  it('opens a store from one seed node, finds every master, and quits its client on close', async () => {
    const baton = createBaton(await openStore(`redis+cluster://127.0.0.1:${cluster.nodes[0]!.port}?prefix=urltest`));
    const names = Array.from({ length: 12 }, (_, i) => `u-${i}`);
    const leases = await Promise.all(names.map((name) => baton.mutex(name).acquire({ ttlMs: 5000 })));
    assert.ok(leases.every((lease) => typeof lease.token === 'bigint'));
    assert.deepEqual((await baton.list()).map((l) => l.name).sort(), [...names].sort());
    for (const lease of leases) await lease.release();
    await baton.close();
  });

  it('with a natMap, reaches every master through the addresses it maps them to, never directly', async () => {
    const proxies = await Promise.all(cluster.nodes.map((node) => createFaultProxy({ port: node.port })));
    try {
      const parsed = parseStoreUrl(`redis+cluster://${proxies.map((p) => `127.0.0.1:${p.port}`).join(',')}?prefix=nat`) as RedisClusterStoreUrl;
      const natMap = Object.fromEntries(cluster.nodes.map((node, i) => [`127.0.0.1:${node.port}`, { host: '127.0.0.1', port: proxies[i]!.port }]));
      const baton = createBaton(await openRedisCluster(parsed, { natMap }));
      const leases = await Promise.all(Array.from({ length: 12 }, (_, i) => baton.mutex(`n-${i}`).acquire({ ttlMs: 5000 })));
      // Every master holds some of the 12 locks, and each master's proxy carries connections.
      assert.deepEqual(proxies.map((p) => p.connections > 0), [true, true, true]);
      // Cutting one master's proxy cuts this client off that master: it had no direct connection.
      proxies[0]!.set('blackhole');
      const owned = await Promise.all(leases.map((lease) => Promise.race([lease.extend(5000).then(() => 'answered'), new Promise((done) => setTimeout(done, 300, 'no answer'))])));
      assert.ok(owned.includes('no answer') && owned.includes('answered'), owned.join(', '));
      proxies[0]!.set('pass');
      for (const lease of leases) await lease.release();
      await baton.close();
    } finally {
      for (const proxy of proxies) await proxy.close();
    }
  });

  it('while every node resets connections, the wake-up subscription reconnects after a delay, not in a loop, and wakes the waiter after', async () => {
    const proxies = await Promise.all(cluster.nodes.map((node) => createFaultProxy({ port: node.port })));
    try {
      const parsed = parseStoreUrl(`redis+cluster://${proxies.map((p) => `127.0.0.1:${p.port}`).join(',')}?prefix=wake`) as RedisClusterStoreUrl;
      const natMap = Object.fromEntries(cluster.nodes.map((node, i) => [`127.0.0.1:${node.port}`, { host: '127.0.0.1', port: proxies[i]!.port }]));
      const waiter = createBaton(await openRedisCluster(parsed, { natMap }));
      const holder = createBaton(await openStore(`redis+cluster://127.0.0.1:${cluster.nodes[0]!.port}?prefix=wake`));
      const held = await holder.mutex('w').acquire({ ttlMs: 10_000 });
      const waiting = waiter.mutex('w').acquire({ ttlMs: 5000, timeoutMs: 8000 });
      await new Promise((done) => setTimeout(done, 300)); // queued, and subscribed
      const accepted = (): number => proxies.reduce((sum, p) => sum + p.accepted, 0);
      const before = accepted();
      for (const proxy of proxies) proxy.set('reset');
      await new Promise((done) => setTimeout(done, 1000));
      const attempts = accepted() - before;
      for (const proxy of proxies) proxy.set('pass');
      // ioredis's own cluster subscriber reconnected about 2 000 times in such a second.
      assert.ok(attempts < 200, `${attempts} connections in 1 s of resets`);
      await new Promise((done) => setTimeout(done, 1000)); // the subscription is back
      const released = performance.now();
      await held.release();
      const lease = await waiting;
      // Woken by the release: without a wake-up it would wait for the holder's 10 s TTL.
      assert.ok(performance.now() - released < 1000, `granted ${(performance.now() - released).toFixed(0)} ms after the release`);
      await lease.release();
      await waiter.close();
      await holder.close();
    } finally {
      for (const proxy of proxies) await proxy.close();
    }
  });

  it('fails with StoreUnavailableError, without the password, when no seed node can be reached', async () => {
    await assert.rejects(openStore('redis+cluster://admin:hunter2@127.0.0.1:1,127.0.0.1:2'), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(error.message, /^Cannot reach the Redis Cluster at redis\+cluster:\/\/127\.0\.0\.1:1,127\.0\.0\.1:2: connect ECONNREFUSED 127\.0\.0\.1:1; connect ECONNREFUSED 127\.0\.0\.1:2$/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });
});
