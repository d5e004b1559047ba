/**
 * Interop with etcd's own lock recipe, through the real `etcdctl` (Debian package
 * etcd-client): `etcdctl lock baton/mutex/NAME` and a baton mutex on NAME exclude each
 * other both ways, and a waiter of either kind gets the lock when the other releases.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A running etcdctl with its output so far. */
function etcdctl(endpoint: string, args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn('etcdctl', [`--endpoints=${endpoint}`, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ETCDCTL_API: '3' } });
  let output = '';
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, output: () => output, exited };
}

async function until(condition: () => boolean | Promise<boolean>, what: string, withinMs = 10_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(10);
  }
}

describe('etcd store: interop with etcdctl lock', () => {
  let cluster: EtcdCluster;
  const children: ChildProcess[] = [];
  before(async () => {
    cluster = await startEtcd(1);
  });
  after(async () => {
    for (const child of children) child.kill('SIGKILL');
    await cluster.stop();
  });

  it('etcdctl lock holds: baton waits, and gets the lock once etcdctl lets go', async () => {
    const name = `job-${randomBytes(3).toString('hex')}`;
    const baton = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const holder = etcdctl(cluster.endpoints[0]!, ['lock', `baton/mutex/${name}`]);
    children.push(holder.child);
    // Without a command, etcdctl prints the key it holds and keeps the lock until interrupted.
    await until(() => holder.output().includes(`baton/mutex/${name}/`), 'etcdctl holds the lock');
    const etcdctlKey = holder.output().trim().split('\n')[0]!;
    assert.equal(await baton.mutex(name).tryAcquire(), null, 'tryAcquire sees the etcdctl holder');
    const state = await baton.inspect(name);
    assert.deepEqual(state.holders.map((h) => h.owner), [etcdctlKey.slice(`baton/mutex/${name}/`.length)], 'inspect names the etcdctl holder by its lease');
    let granted = false;
    const waiting = baton.mutex(name).acquire({ ttlMs: 5000, timeoutMs: 10_000 }).then((lease) => {
      granted = true;
      return lease;
    });
    await sleep(500);
    assert.equal(granted, false, 'baton does not get the lock while etcdctl holds it');
    holder.child.kill('SIGINT');
    assert.equal(await holder.exited, 0, holder.output());
    const lease = await waiting;
    assert.ok(lease.token > state.holders[0]!.token, 'the token is above the etcdctl holder\'s revision');
    await lease.release();
    await baton.close();
  });

  it('baton holds: etcdctl lock -- cmd waits, and runs the command once baton releases', async () => {
    const name = `job-${randomBytes(3).toString('hex')}`;
    const baton = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const lease = await baton.mutex(name).acquire({ ttlMs: 10_000, autoRenew: true });
    const waiter = etcdctl(cluster.endpoints[0]!, ['lock', `baton/mutex/${name}`, '--', 'echo', 'etcdctl-ran']);
    children.push(waiter.child);
    await until(async () => (await baton.inspect(name)).waiters.length === 1, 'etcdctl queues behind baton');
    await sleep(500);
    assert.equal(waiter.output().includes('etcdctl-ran'), false, `etcdctl ran its command while baton held the lock: ${waiter.output()}`);
    await lease.release();
    assert.equal(await waiter.exited, 0, waiter.output());
    assert.match(waiter.output(), /etcdctl-ran/);
    // etcdctl's session is revoked when it exits: the lock is free again.
    const next = await baton.mutex(name).acquire({ ttlMs: 5000, timeoutMs: 5000 });
    assert.ok(next.token > lease.token);
    await baton.close();
  });

  it('FIFO across both: baton, etcdctl, baton queue in that order and are served in that order', async () => {
    const name = `job-${randomBytes(3).toString('hex')}`;
    const a = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const b = createBaton(createEtcdStore(cluster.client(), { sessionTtlMs: 2000 }));
    const first = await a.mutex(name).acquire({ ttlMs: 10_000, autoRenew: true });
    const order: string[] = [];
    const middle = etcdctl(cluster.endpoints[0]!, ['lock', `baton/mutex/${name}`, '--', 'sh', '-c', 'echo etcdctl-ran; sleep 0.3']);
    children.push(middle.child);
    await until(async () => (await a.inspect(name)).waiters.length === 1, 'etcdctl queues');
    const last = b.mutex(name).acquire({ ttlMs: 5000, timeoutMs: 15_000 }).then((lease) => {
      order.push(middle.output().includes('etcdctl-ran') ? 'baton after etcdctl' : 'baton before etcdctl');
      return lease;
    });
    await until(async () => (await a.inspect(name)).waiters.length === 2, 'baton queues behind etcdctl');
    await first.release();
    assert.equal(await middle.exited, 0, middle.output());
    await (await last).release();
    assert.deepEqual(order, ['baton after etcdctl']);
    await a.close();
    await b.close();
  });
});
