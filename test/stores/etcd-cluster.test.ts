/**
 * The etcd store on a real 3-member cluster on loopback: the contract suite, and failover.
 * etcd3 spreads its calls over every member it is given, so each client talks to every
 * member, the leader included; killing one is killing a member the client talks to. The
 * last tests pin clients to one member (etcd3's `ConnectionPool.deterministicOrder`, its
 * switch for tests: every call tries the last host first, then the others) and kill it.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { ConnectionPool } from 'etcd3/lib/connection-pool.js';
import { createBaton, LeaseLostError } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { runContractSuite } from '../contract/suite.js';
import { etcdBacking, startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(3);
});
after(() => cluster.stop());

runContractSuite({ name: 'etcd (3-member cluster)', scale: 2, sessionTtlMs: 1000, backing: etcdBacking(() => cluster) });

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

describe('etcd store: the member a client talks to dies', () => {
  for (const role of ['a follower', 'the leader'] as const) {
    it(`SIGKILL of the one member the holder and its waiter talk to (${role}): they fail over, the lease survives, its session renews through the others and it still excludes; its release lets the waiter in`, async () => {
      const all = [0, 1, 2];
      const leader = await cluster.leader();
      assert.ok(leader >= 0, 'the cluster has a leader');
      const victim = role === 'the leader' ? leader : all.find((i) => i !== leader)!;
      const others = all.filter((i) => i !== victim);
      const prefix = `pin${randomBytes(4).toString('hex')}/`;
      ConnectionPool.deterministicOrder = true;
      const batons = [];
      try {
        // The victim last: the holder's and the waiter's clients try it first on every call; the checker's tries a survivor first.
        const a = createBaton(createEtcdStore(cluster.client([...others, victim]), { prefix, sessionTtlMs: 2000 }));
        const b = createBaton(createEtcdStore(cluster.client([...others, victim]), { prefix, sessionTtlMs: 2000 }));
        const c = createBaton(createEtcdStore(cluster.client([victim, ...others]), { prefix, sessionTtlMs: 2000 }));
        batons.push(a, b, c);
        const lost: string[] = [];
        a.on('lost', (event) => lost.push(`${event.name}: ${event.reason}`));
        const lease = await a.mutex('pinned').acquire({ ttlMs: 3000, autoRenew: true });
        let waiterGot = false;
        const waiting = b.mutex('pinned').acquire({ ttlMs: 3000, timeoutMs: 60_000 }).then((next) => {
          waiterGot = true;
          return next;
        });
        while ((await a.inspect('pinned')).waiters.length < 1) await sleep(10);

        // Pinned: while only the holder and the waiter work, only the victim serves calls.
        const before = await Promise.all(all.map((i) => cluster.rpcs(i)));
        await lease.extend(3000);
        await a.inspect('pinned');
        const pinned = await Promise.all(all.map((i) => cluster.rpcs(i)));
        assert.ok(pinned[victim]! > before[victim]!, 'the holder talks to the victim');
        for (const i of others) assert.equal(pinned[i], before[i], `the holder and the waiter do not talk to member ${i}`);

        await cluster.kill(victim);
        // Three session TTLs and two lease TTLs pass with the member gone.
        await sleep(6000);
        assert.deepEqual(lost, [], 'no lease was lost');
        assert.equal(lease.signal.aborted, false, 'the holder still holds');
        // extend asks etcd nothing; the session's keep-alives (every third of its TTL) go through the survivors.
        await lease.extend(3000);
        const renewed = await Promise.all(others.map((i) => cluster.rpcs(i)));
        let after = renewed;
        for (const end = Date.now() + 2000; Date.now() < end && !after.some((n, k) => n > renewed[k]!);) {
          await sleep(100);
          after = await Promise.all(others.map((i) => cluster.rpcs(i)));
        }
        assert.ok(after.some((n, k) => n > renewed[k]!), 'the session is renewed through a surviving member');
        assert.equal(await c.mutex('pinned').tryAcquire(), null, 'another store still sees the lock held');
        assert.equal(waiterGot, false, 'the waiter is still waiting');
        assert.deepEqual((await c.inspect('pinned')).waiters.length, 1, 'the waiter kept its place');

        await lease.release();
        const next = await waiting;
        assert.ok(next.token > lease.token, 'the waiter holds after the release, with a higher token');
        await next.release();
      } finally {
        ConnectionPool.deterministicOrder = false;
        await Promise.allSettled(batons.map((baton) => baton.close()));
        await cluster.start(victim);
      }
    });
  }
});
