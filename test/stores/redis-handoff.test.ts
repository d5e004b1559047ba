/**
 * A release hands the lock to the next waiter in the same script and publishes the grant:
 * the waiter holds without asking again. The hand-off's TTL is at most the waiter's queue
 * entry's, and core renews the store's TTL up to the lease's own end when it is held longer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(() => server.stop());

describe('redis: hand-off at release', () => {
  it('the next waiter is granted by the release, with a higher token and the plain key set', async () => {
    const a = createBaton(createRedisStore(server.client(), { prefix: 'h1' }));
    const store = createRedisStore(server.client(), { prefix: 'h1' });
    let grants = 0;
    const grant = store.grant.bind(store);
    store.grant = (request) => (grants++, grant(request));
    const b = createBaton(store, { queuePollMs: 10_000 });
    const holder = await a.mutex('job').acquire({ ttlMs: 5000 });
    const waiting = b.mutex('job').acquire({ ttlMs: 5000 });
    while ((await a.inspect('job')).waiters.length < 1) await sleep(5);
    const asked = grants;
    await holder.release();
    const lease = await waiting;
    assert.equal(grants, asked, 'the waiter did not ask again');
    assert.ok(lease.token > holder.token);
    assert.equal(await server.client().get(store.plainKey('job')), lease.owner);
    await lease.release();
    await a.close();
    await b.close();
  });

  it('a handed-off lease held past its queue TTL is renewed up to the TTL asked for', async () => {
    const a = createBaton(createRedisStore(server.client(), { prefix: 'h2' }));
    // queue TTL = 4 polls = 200 ms: the hand-off grants 200 ms, the lease asks for 5 s.
    const b = createBaton(createRedisStore(server.client(), { prefix: 'h2' }), { queuePollMs: 50 });
    const holder = await a.mutex('job').acquire({ ttlMs: 5000 });
    const waiting = b.mutex('job').acquire({ ttlMs: 5000 });
    while ((await a.inspect('job')).waiters.length < 1) await sleep(5);
    await sleep(60); // let the waiter's entry age past its last refresh
    await holder.release();
    const lease = await waiting;
    await sleep(400);
    assert.equal(lease.signal.aborted, false, 'still held past the hand-off TTL');
    const [state] = (await a.inspect('job')).holders;
    assert.equal(state?.owner, lease.owner);
    // Renewed towards the lease's own end (5 s after its last request), not left at 200 ms.
    assert.ok(state !== undefined && state.expiresInMs > 3000, `${state?.expiresInMs} ms left on the server`);
    assert.equal(await a.mutex('job').tryAcquire(), null);
    await lease.release();
    await a.close();
    await b.close();
  });

  it('a waiter that died while queued holds a hand-off no longer than its queue entry', async () => {
    const a = createBaton(createRedisStore(server.client(), { prefix: 'h3' }));
    const store = createRedisStore(server.client(), { prefix: 'h3' });
    const holder = await a.mutex('job').acquire({ ttlMs: 5000 });
    // A waiter that queued (with a wake channel, so it gets a hand-off) and then went silent.
    await (store as unknown as { grant: typeof store.grant }).grant({ key: { kind: 'mutex', name: 'job' }, owner: 'd'.repeat(32), mode: 'exclusive', limit: 1, ttlMs: 60_000, enqueue: true, queueTtlMs: 150 });
    await holder.release();
    const next = await a.mutex('job').acquire({ ttlMs: 5000, timeoutMs: 2000 });
    assert.ok(next.token > holder.token);
    await next.release();
    await a.close();
    await store.close();
  });
});
