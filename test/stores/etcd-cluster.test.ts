/**
 * The etcd store on a real 3-member cluster on loopback: the contract suite, and failover.
 * etcd3 spreads its calls over every member it is given, so each client talks to every
 * member, the leader included; killing one is killing a member the client talks to.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createBaton, LeaseLostError } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(3);
});
after(() => cluster.stop());

runContractSuite({
  name: 'etcd (3-member cluster)',
  scale: 2,
  sessionTtlMs: 1000,
  backing: async () => {
    const prefix = `t${randomBytes(4).toString('hex')}/`;
    const client = cluster.client();
    return {
      connect: () => createEtcdStore(client, { prefix, sessionTtlMs: 1000 }),
      restart: () => cluster.restart(),
      cleanup: async () => client.close(),
    };
  },
});

describe('etcd store: failover in a 3-member cluster', () => {
  it('killing the leader, then bringing it back: held leases survive, a queued waiter keeps its place and is woken', async () => {
    const a = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const b = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const leases = await Promise.all(['x', 'y', 'z'].map((name) => a.mutex(`fail-${name}`).acquire({ ttlMs: 3000, autoRenew: true })));
    const lost: string[] = [];
    a.on('lost', (event) => lost.push(`${event.name}: ${event.reason}`));
    const waiting = b.mutex('fail-x').acquire({ ttlMs: 3000, timeoutMs: 30_000 });
    while ((await b.inspect('fail-x')).waiters.length < 1) await sleep(10);

    const leader = await cluster.leader();
    assert.ok(leader >= 0, 'the cluster has a leader');
    await cluster.kill(leader);
    // Several session TTLs and lease TTLs pass with one member gone.
    await sleep(7000);
    assert.deepEqual(lost, [], 'no lease was lost');
    for (const lease of leases) assert.equal(lease.signal.aborted, false, `${lease.name} still held`);
    assert.equal(await b.mutex('fail-y').tryAcquire(), null, 'the others still see the leases held');
    await cluster.start(leader);

    await leases[0]!.release();
    const next = await waiting;
    assert.ok(next.token > leases[0]!.token);
    await next.release();
    for (const lease of leases.slice(1)) await lease.release();
    await assert.rejects(leases[0]!.release(), (error: unknown) => !(error instanceof LeaseLostError));
    await a.close();
    await b.close();
  });
});
