/**
 * A Redis restart while a lease is held, without persistence and with it (AOF, fsync always):
 * the holder is told if its lease is gone, and no token is ever issued twice.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { LeaseLostError, createBaton } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { aborted } from '../helpers/signals.js';

const servers: RedisServer[] = [];
after(async () => {
  for (const server of servers) await server.stop();
});

describe('redis: server restart while a lease is held', () => {
  it('without persistence: the holder is told its lease is gone, and the next token is still higher', async () => {
    const server = await startRedis();
    servers.push(server);
    const baton = createBaton(createRedisStore(server.client()));
    const lease = await baton.mutex('r').acquire({ ttlMs: 600, autoRenew: true });
    const lost = aborted(lease.signal, 5000);
    await server.restart();
    const reason = await lost;
    assert.ok(reason instanceof LeaseLostError, String(reason));
    assert.ok(['revoked', 'expired'].includes(reason.reason));
    const next = await baton.mutex('r').acquire({ ttlMs: 600, timeoutMs: 5000 });
    assert.ok(next.token > lease.token, `token ${next.token} after the restart, ${lease.token} before`);
    await baton.close();
  });

  it('with persistence: the lease survives a quick restart or its holder is told; tokens never repeat', async () => {
    const server = await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
    servers.push(server);
    const baton = createBaton(createRedisStore(server.client()));
    const first = await baton.mutex('p').acquire({ ttlMs: 5000 });
    await first.release();
    const lease = await baton.mutex('p').acquire({ ttlMs: 3000, autoRenew: true });
    await server.restart();
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const state = await baton.inspect('p');
    if (lease.signal.aborted) assert.ok(lease.signal.reason instanceof LeaseLostError);
    else assert.deepEqual(state.holders.map((h) => h.owner), [lease.owner], 'a live lease is still in the store');
    assert.equal(state.fence, lease.token, 'the fence survived with the data');
    if (lease.held) await lease.release();
    const next = await baton.mutex('p').acquire({ ttlMs: 1000, timeoutMs: 5000 });
    assert.equal(next.token, lease.token + 1n);
    await baton.close();
  });
});
