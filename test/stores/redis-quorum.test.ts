/**
 * Redlock: `quorum([...])` over five real, independent redis-server processes. The contract
 * suite runs on it, less the tests of what a quorum does not promise (fencing tokens, a FIFO
 * queue, wake-ups), each skipped with its reason; the tests below assert what it does instead.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { ClosedError, QuorumError, createBaton, monotonicNow, storeCall } from '../../src/index.js';
import { createRedisStore, quorum, type QuorumOptions } from '../../src/stores/redis/index.js';
import { RELEASE } from '../../src/stores/redis/scripts.js';
import { runContractSuite } from '../contract/suite.js';
import { createFaultProxy, type FaultProxy } from '../faults/proxy.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { until } from '../helpers/wait.js';

const servers: RedisServer[] = [];
before(async () => {
  for (let i = 0; i < 5; i++) servers.push(await startRedis());
});
after(async () => {
  for (const server of servers) await server.stop();
});

/** A quorum store over the five servers (or the given ports), each node keeping no fence. */
function quorumOn(prefix: string, options?: QuorumOptions, ports = servers.map((s) => s.port)) {
  return quorum(
    ports.map((port) => {
      const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      return createRedisStore(client, { prefix, fencing: false, closeClient: true });
    }),
    options,
  );
}

/** Every key under `prefix` on each server that is up. */
async function keysLeft(prefix: string, on: readonly RedisServer[] = servers): Promise<string[]> {
  const found: string[] = [];
  for (const server of on) {
    const client = new Redis({ port: server.port, host: '127.0.0.1' });
    found.push(...(await client.keys(`{${prefix}:*`)).map((key) => `${server.port} ${key}`));
    client.disconnect();
  }
  return found;
}

const noFence = 'a quorum issues no fencing token (guarantees.fencing is false): asserted in "redlock" below';
const noQueue = 'a quorum keeps no queue (fifo: false): waiters retry with backoff, asserted in "redlock" below';
const noWake = 'a quorum has no wake-ups (notify: false): waiters back off with jitter';

runContractSuite({
  name: 'redis quorum (Redlock, 5 servers)',
  backing: async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    return {
      connect: () => quorumOn(prefix),
      restart: async () => {
        for (const server of servers) await server.restart();
      },
      cleanup: async () => undefined,
    };
  },
  skip: {
    'tokens strictly increase across clients, releases, expiries and forced releases': noFence,
    'tokens keep increasing after every client and the store restart': noFence,
    'acquire rejects with the signal reason when aborted, and leaves no waiter behind': noQueue,
    'waiters are granted in arrival order': noQueue,
    'tryAcquire does not overtake a queued waiter': noQueue,
    'a crashed waiter leaves the queue after its queue TTL': noQueue,
    'a semaphore asked with other permits than its waiters use is refused': noQueue,
    'inspect and list report holders, waiters and the last token': noQueue,
    'close rejects pending acquires, releases held leases and refuses further use': noQueue,
    'a release wakes the next waiter without waiting for a poll': noWake,
    'a release right before close still wakes the next waiter': noWake,
    'a release wakes one waiter, not all of them': noWake,
  },
});

describe('redlock', () => {
  it('states what it does not give: no token, no fence, no queue', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    const store = quorumOn(prefix);
    assert.deepEqual({ ...store.guarantees }, { clock: 'quorum', scope: 'network', fencing: false, fifo: false, notify: false, outlivesClient: true, mixedModes: true });
    assert.equal(store.majority, 3);
    const baton = createBaton(store);
    const lease = await baton.mutex('plain').acquire({ ttlMs: 5000 });
    assert.equal(lease.token, null);
    const other = createBaton(quorumOn(prefix));
    const waiting = other.mutex('plain').acquire({ ttlMs: 5000, timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const state = await baton.inspect('plain');
    assert.deepEqual(state.holders.map((h) => h.owner), [lease.owner]);
    assert.equal(state.waiters.length, 0);
    assert.equal(state.fence, null);
    // The waiter is not queued but retries, and gets the lock once it is free.
    await lease.release();
    const next = await waiting;
    assert.equal(next.token, null);
    await next.release();
    await Promise.all([baton.close(), other.close()]);
    assert.deepEqual(await keysLeft(prefix), [], 'the nodes keep no fence: nothing is left once the locks are released');
  });

  it('shows no token anywhere: inspect, list and an election\'s leader say null, as lease.token does', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    const baton = createBaton(quorumOn(prefix));
    try {
      const lease = await baton.mutex('shown').acquire({ ttlMs: 5000 });
      const leadership = await baton.election('shown').campaign('me', { ttlMs: 5000 });
      assert.deepEqual([lease.token, leadership.token], [null, null]);
      const state = await baton.inspect('shown');
      assert.deepEqual([state.fence, state.holders.map((h) => [h.owner, h.token])], [null, [[lease.owner, null]]]);
      const listed = await baton.list();
      assert.deepEqual(listed.map((l) => [l.kind, l.name, l.fence, l.holders.map((h) => h.token)]).sort(), [['election', 'shown', null, [null]], ['mutex', 'shown', null, [null]]]);
      assert.deepEqual(await baton.election('shown').leader(), { owner: leadership.owner, value: 'me', token: null });
      const observed = baton.election('shown').observe();
      assert.deepEqual((await observed.next()).value, { owner: leadership.owner, value: 'me', token: null });
      await observed.return(undefined);
      // What each node keeps in place of a token is 0: the quorum store reports it as such, and baton never shows it.
      assert.equal((await baton.store.inspect({ kind: 'mutex', name: 'shown' }, storeCall(5000))).holders[0]!.token, 0n);
    } finally {
      await baton.close();
    }
  });

  it('takes a lock at once on node clients made without an offline queue, still connecting: each command waits for its connection, within the call', async () => {
    // The README's node clients: no offline queue, no resend, so that a node never runs a command late.
    const prefix = `r${randomBytes(4).toString('hex')}`;
    const store = quorum(servers.map((s) => {
      const client = new Redis({ port: s.port, host: '127.0.0.1', enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
      client.on('error', () => undefined);
      return createRedisStore(client, { prefix, fencing: false, closeClient: true });
    }));
    const baton = createBaton(store);
    try {
      const lease = await baton.mutex('fresh').acquire({ ttlMs: 5000, timeoutMs: 2000 });
      assert.equal(lease.token, null);
      await lease.release();
    } finally {
      await baton.close();
    }
  });

  it('commands waiting for a client\'s first connection share one wait: two listeners on the client while it connects, whatever the number of stores and commands, and none after', async () => {
    const prefix = `w${randomBytes(4).toString('hex')}`;
    const client = new Redis({ port: servers[0]!.port, host: '127.0.0.1', enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
    client.on('error', () => undefined);
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const batons = Array.from({ length: 12 }, () => createBaton(createRedisStore(client, { prefix })));
    // The stores' own listeners (one set for the twelve, see reach.ts) are there before any command.
    const before = { ready: client.listenerCount('ready'), close: client.listenerCount('close') };
    try {
      assert.equal(client.status, 'connecting');
      const leases = batons.flatMap((baton, i) => [0, 1].map((j) => baton.mutex(`n${i}-${j}`).tryAcquire({ ttlMs: 5000 })));
      assert.deepEqual({ ready: client.listenerCount('ready'), close: client.listenerCount('close') }, { ready: before.ready + 1, close: before.close + 1 });
      for (const lease of await Promise.all(leases)) {
        assert.ok(lease, 'every try on a free name is granted once the client connects');
        await lease.release();
      }
      assert.deepEqual({ ready: client.listenerCount('ready'), close: client.listenerCount('close') }, before);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.map((w) => w.message), []);
    } finally {
      process.off('warning', onWarning);
      await Promise.all(batons.map((baton) => baton.close()));
      client.disconnect();
    }
  });

  it('a command on a node client that cannot connect fails with the connection attempt, not at its deadline', async () => {
    const client = new Redis({ port: 1, host: '127.0.0.1', enableOfflineQueue: false, autoResendUnfulfilledCommands: false, retryStrategy: () => 1000 });
    client.on('error', () => undefined);
    const baton = createBaton(createRedisStore(client, { closeClient: true }), { storeTimeoutMs: 3000 });
    try {
      const started = performance.now();
      await assert.rejects(baton.mutex('never').tryAcquire({ ttlMs: 5000 }), (error: Error) => error.name === 'StoreUnavailableError' && /127\.0\.0\.1:1/.test(error.message));
      assert.ok(performance.now() - started < 2000, `failed after ${Math.round(performance.now() - started)} ms`);
      assert.equal(client.listenerCount('close'), 0);
    } finally {
      await baton.close();
    }
  });

  it('close rejects a pending acquire with ClosedError and releases held leases', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    const a = createBaton(quorumOn(prefix));
    const b = createBaton(quorumOn(prefix));
    const held = await a.mutex('c').acquire({ ttlMs: 5000 });
    const pending = b.mutex('c').acquire({ ttlMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 50));
    await b.close();
    await assert.rejects(pending, ClosedError);
    await a.close();
    assert.equal(held.signal.aborted, true);
    assert.deepEqual(await keysLeft(prefix), []);
  });

  it('keeps granting, extending and releasing with 2 of 5 servers down', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    const baton = createBaton(quorumOn(prefix));
    const rival = createBaton(quorumOn(prefix));
    await servers[0]!.down();
    await servers[3]!.down();
    try {
      for (let i = 0; i < 5; i++) {
        const lease = await baton.mutex('minority-down').acquire({ ttlMs: 3000 });
        assert.equal(await rival.mutex('minority-down').tryAcquire({ ttlMs: 3000 }), null, 'the other client is excluded');
        await lease.extend(3000);
        await lease.release();
      }
      const lease = await rival.mutex('minority-down').acquire({ ttlMs: 3000, timeoutMs: 2000 });
      await lease.release();
    } finally {
      await servers[0]!.up();
      await servers[3]!.up();
      await baton.close();
      await rival.close();
    }
  });

  it('a busy lock is busy, not an error, when a node that fails at once is down: tryAcquire is null and acquire waits (README node clients)', async () => {
    const prefix = `b${randomBytes(4).toString('hex')}`;
    // The README's node clients: no offline queue, so a command to a node that is down fails at once.
    const readmeQuorum = () => quorum(servers.slice(0, 3).map((s) => {
      const client = new Redis({ port: s.port, host: '127.0.0.1', enableOfflineQueue: false, autoResendUnfulfilledCommands: false, retryStrategy: (n) => Math.min(50 * n, 200) });
      client.on('error', () => undefined);
      return createRedisStore(client, { prefix, fencing: false, closeClient: true });
    }));
    const holder = createBaton(readmeQuorum());
    const rival = createBaton(readmeQuorum());
    const lease = await holder.mutex('busy').acquire({ ttlMs: 5000 });
    await rival.mutex('warm').tryAcquire({ ttlMs: 1000 }).then((l) => l?.release());
    await servers[1]!.down();
    try {
      for (let i = 0; i < 5; i++) assert.equal(await rival.mutex('busy').tryAcquire({ ttlMs: 5000 }), null, `try ${i}: busy`);
      const waiting = rival.mutex('busy').acquire({ ttlMs: 5000, timeoutMs: 5000 });
      await new Promise((resolve) => setTimeout(resolve, 300));
      await lease.release();
      (await waiting).release();
    } finally {
      await servers[1]!.up();
      await holder.close();
      await rival.close();
    }
  });

  it('fails every attempt with a QuorumError within 1 s with 3 of 5 servers down, and leaves no key on the live ones', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    const baton = createBaton(quorumOn(prefix));
    const down = [servers[1]!, servers[2]!, servers[4]!];
    for (const server of down) await server.down();
    try {
      for (let i = 0; i < 5; i++) {
        const startedAt = monotonicNow();
        const error = await baton.mutex(`majority-down-${i}`).acquire({ ttlMs: 3000, timeoutMs: 10_000 }).then(
          () => assert.fail('granted without a majority'),
          (e: unknown) => e,
        );
        const elapsed = monotonicNow() - startedAt;
        assert.ok(error instanceof QuorumError, String(error));
        assert.equal(error.code, 'STORE_UNAVAILABLE');
        assert.equal(error.needed, 3);
        error.answers.forEach((a, node) => {
          if (down.includes(servers[node]!)) assert.ok(a.answer === 'error' || a.answer === 'timeout', `node ${node}: ${a.answer}`);
          else assert.equal(a.answer, 'granted', `node ${node}`);
        });
        assert.ok(elapsed < 1000, `failed after ${elapsed} ms`);
      }
      assert.deepEqual(await keysLeft(prefix, servers.filter((s) => !down.includes(s))), []);
    } finally {
      for (const server of down) await server.up();
      await baton.close();
    }
  });

  it('refuses a majority that answers too late, and rolls it back on every node', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    // Three of the five nodes are reached through a proxy that holds every reply 300 ms.
    const proxies: FaultProxy[] = [];
    for (const server of servers.slice(0, 3)) proxies.push(await createFaultProxy({ port: server.port }));
    const ports = [...proxies.map((p) => p.port), ...servers.slice(3).map((s) => s.port)];
    const slow = quorumOn(prefix, undefined, ports);
    const baton = createBaton(slow);
    try {
      // Connect through the proxies while they pass, then slow them down.
      await baton.inspect('late');
      for (const proxy of proxies) proxy.set('latency', { latencyMs: 300, jitterMs: 0 });
      const error = await baton.mutex('late').acquire({ ttlMs: 200 }).then(
        () => assert.fail('granted although the majority came after the validity'),
        (e: unknown) => e,
      );
      assert.ok(error instanceof QuorumError, String(error));
      assert.deepEqual(error.answers.map((a) => a.answer), ['timeout', 'timeout', 'timeout', 'granted', 'granted']);
      // The slow nodes grant after the verdict; each gives its grant back as soon as it answers.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      assert.deepEqual(await keysLeft(prefix), []);
    } finally {
      await baton.close();
      for (const proxy of proxies) await proxy.close();
    }
  });

  it('a release wins over its own grant that reaches a node later (a resend after NOSCRIPT through a slow link)', async () => {
    const prefix = `q${randomBytes(4).toString('hex')}`;
    // Two of the five nodes are reached through a proxy that delays every chunk 300 ms, and
    // know the release script but not the grant script: the grant's EVALSHA comes back
    // NOSCRIPT and is sent again as EVAL after the release already ran there.
    const proxies: FaultProxy[] = [];
    for (const server of servers.slice(0, 2)) proxies.push(await createFaultProxy({ port: server.port }));
    const ports = [...proxies.map((p) => p.port), ...servers.slice(2).map((s) => s.port)];
    const baton = createBaton(quorumOn(prefix, { nodeTimeoutMs: 2000 }, ports));
    try {
      await baton.inspect('reordered');
      for (const server of servers.slice(0, 2)) {
        const admin = server.client();
        await admin.script('FLUSH');
        await admin.script('LOAD', RELEASE);
        await admin.config('RESETSTAT');
      }
      for (const proxy of proxies) proxy.set('latency', { latencyMs: 300, jitterMs: 0 });
      const lease = await baton.mutex('reordered').acquire({ ttlMs: 10_000 });
      await lease.release();
      // The slow nodes run the release, then the resent grant (an EVAL); the grant is given
      // back as soon as its answer arrives, not after its 10 s TTL.
      const evals = async (server: RedisServer): Promise<number> => Number(/cmdstat_eval:calls=(\d+)/.exec(await server.client().info('commandstats'))?.[1] ?? 0);
      await until(async () => (await evals(servers[0]!)) > 0 && (await evals(servers[1]!)) > 0, 'the grant to be sent again as EVAL to the slow nodes', { ms: 5000, everyMs: 100 });
      await until(async () => (await keysLeft(prefix)).length === 0, 'the late grants to be given back', { ms: 3000, everyMs: 200 });
    } finally {
      for (const proxy of proxies) proxy.set('pass');
      await baton.close();
      for (const proxy of proxies) await proxy.close();
      for (const server of servers.slice(0, 2)) await server.client().script('FLUSH');
    }
  });
});
