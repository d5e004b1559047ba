/**
 * The plain mutex stays compatible with the classic recipe that services in other languages
 * use: `SET key owner NX PX ttl` to take it, compare-and-delete to give it back. Checked with
 * a raw client, both ways.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const COMPARE_AND_DELETE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(() => server.stop());

describe('redis: the classic SET NX PX recipe on the same key', () => {
  it('a baton holder makes the recipe fail, and its release lets the recipe in', async () => {
    const store = createRedisStore(server.client(), { prefix: 'c1' });
    const baton = createBaton(store);
    const raw = server.client();
    const key = store.plainKey('job');
    assert.equal(key, '{c1:mutex:job}');
    const lease = await baton.mutex('job').acquire({ ttlMs: 5000 });
    assert.equal(await raw.get(key), lease.owner, 'the plain key names the baton holder');
    assert.equal(await raw.set(key, 'java-service', 'PX', 5000, 'NX'), null, 'SET NX fails while baton holds');
    await lease.release();
    assert.equal(await raw.get(key), null);
    assert.equal(await raw.set(key, 'java-service', 'PX', 5000, 'NX'), 'OK');
    await raw.eval(COMPARE_AND_DELETE, 1, key, 'java-service');
    await baton.close();
  });

  it('a recipe holder makes baton wait, and its compare-and-delete lets baton in with a fresh token', async () => {
    const store = createRedisStore(server.client(), { prefix: 'c2' });
    const baton = createBaton(store);
    const raw = server.client();
    const key = store.plainKey('job');
    const before = await baton.mutex('job').acquire({ ttlMs: 5000 });
    await before.release();
    assert.equal(await raw.set(key, 'go-service', 'PX', 10_000, 'NX'), 'OK');
    assert.equal(await baton.mutex('job').tryAcquire(), null, 'baton sees the recipe holder');
    const state = await baton.inspect('job');
    assert.deepEqual(state.holders.map((h) => [h.owner, h.foreign, h.holder]), [['go-service', true, undefined]], 'the recipe holder shows as foreign');
    const waiting = baton.mutex('job').acquire({ ttlMs: 5000, timeoutMs: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(await raw.eval(COMPARE_AND_DELETE, 1, key, 'go-service'), 1);
    const lease = await waiting;
    assert.ok(lease.token > before.token);
    assert.equal(await raw.get(key), lease.owner);
    const mine = (await baton.inspect('job')).holders[0]!;
    assert.equal(mine.foreign, undefined, 'a baton holder is not foreign');
    assert.equal(mine.holder?.pid, process.pid);
    await baton.close();
  });

  it('a recipe holder that dies is outlived by its PX, and baton gets the lock when it runs out', async () => {
    const store = createRedisStore(server.client(), { prefix: 'c3' });
    const baton = createBaton(store);
    const raw = server.client();
    assert.equal(await raw.set(store.plainKey('job'), 'crashed-service', 'PX', 300, 'NX'), 'OK');
    const started = Date.now();
    const lease = await baton.mutex('job').acquire({ ttlMs: 5000, timeoutMs: 5000 });
    assert.ok(Date.now() - started >= 250, 'baton waited for the recipe holder’s PX');
    assert.equal(typeof lease.token, 'bigint');
    await baton.close();
  });
});
