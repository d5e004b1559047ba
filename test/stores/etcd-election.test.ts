/**
 * Leader election on etcd: campaign, proclaim, resign, observe, and interop with the real
 * `etcdctl elect` (etcd's concurrency.Election): the leader is the oldest key under the
 * election's prefix, its value the proclamation, so each sees the other's leader.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { LockNotHeldError, createBaton, type Leader } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean | Promise<boolean>, what: string, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('etcd store: leader election', () => {
  let cluster: EtcdCluster;
  const children: ChildProcess[] = [];
  const etcdctl = (args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } => {
    const child = spawn('etcdctl', [`--endpoints=${cluster.endpoints[0]}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return { child, output: () => output, exited: new Promise((resolve) => child.once('exit', resolve)) };
  };
  before(async () => {
    cluster = await startEtcd(1);
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await cluster.stop();
  });

  it('campaign waits to lead; proclaim, resign and the next leader are each observed once, in order', async () => {
    const name = `e-${randomBytes(3).toString('hex')}`;
    const a = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const b = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const watcher = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const seen: (string | null)[] = [];
    const stop = new AbortController();
    const observing = (async () => {
      for await (const leader of watcher.election(name).observe({ signal: stop.signal })) seen.push(leader ? leader.value : null);
    })();
    await until(() => seen.length === 1, 'observe yields the first state');

    const first = await a.election(name).campaign('a-1', { ttlMs: 5000, autoRenew: true });
    let bLeads = false;
    const second = b.election(name).campaign('b-1', { ttlMs: 5000, autoRenew: true }).then((lease) => {
      bLeads = true;
      return lease;
    });
    await until(async () => (await a.inspect(name, 'election')).waiters.length === 1, 'b queues');
    await a.election(name).proclaim(first, 'a-2');
    await until(() => seen.includes('a-2'), 'the proclamation is observed');
    assert.equal(bLeads, false, 'b does not lead while a does');
    assert.deepEqual(await b.election(name).leader(), { owner: first.owner, value: 'a-2', token: first.token } satisfies Leader);

    await a.election(name).resign(first);
    const lease = await second;
    await until(() => seen.includes('b-1'), 'the new leader is observed');
    assert.ok(lease.token > first.token, 'a new term has a higher token');
    await assert.rejects(a.election(name).proclaim(first, 'late'), LockNotHeldError);
    await b.election(name).resign(lease);
    await until(() => seen.at(-1) === null, 'nobody leads');
    stop.abort();
    await observing;
    assert.deepEqual(seen, [null, 'a-1', 'a-2', 'b-1', null]);
    await Promise.all([a.close(), b.close(), watcher.close()]);
  });

  it('interop with etcdctl elect: each sees the other leader, and waits for it', async () => {
    const name = `e-${randomBytes(3).toString('hex')}`;
    const baton = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const election = baton.election(name);
    const lease = await election.campaign('baton-leads', { ttlMs: 5000, autoRenew: true });

    // etcdctl elect -l observes: it prints the leader's key and value.
    const observer = etcdctl(['elect', '-l', `baton/election/${name}`]);
    await until(() => observer.output().includes('baton-leads'), 'etcdctl sees the baton leader');
    // etcdctl as a candidate waits behind baton.
    const candidate = etcdctl(['elect', `baton/election/${name}`, 'etcdctl-leads']);
    await until(async () => (await baton.inspect(name, 'election')).waiters.length === 1, 'etcdctl queues');
    await election.proclaim(lease, 'baton-again');
    await until(() => observer.output().includes('baton-again'), 'etcdctl sees the proclamation');
    assert.equal(candidate.output().includes('etcdctl-leads'), false, 'etcdctl does not lead while baton does');
    await election.resign(lease);
    await until(() => candidate.output().includes('etcdctl-leads'), 'etcdctl leads once baton resigns');
    const leader = await election.leader();
    assert.equal(leader?.value, 'etcdctl-leads', 'baton sees the etcdctl leader');

    // baton campaigns behind etcdctl and leads once etcdctl resigns (SIGINT).
    let leads = false;
    const next = election.campaign('baton-back', { ttlMs: 5000, autoRenew: true }).then((l) => {
      leads = true;
      return l;
    });
    await sleep(500);
    assert.equal(leads, false, 'baton waits while etcdctl leads');
    candidate.child.kill('SIGINT');
    const back = await next;
    assert.equal((await election.leader())?.value, 'baton-back');
    observer.child.kill('SIGINT');
    await election.resign(back);
    await baton.close();
  });
});
