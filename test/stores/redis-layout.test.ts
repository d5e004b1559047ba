/**
 * The Redis store's key layout (src/stores/redis/lua/common.lua): scripts read the holders
 * and the head of the queue only. Dead entries in the middle of the queue stay until they
 * reach the head, and are then skipped; a semaphore's release grants every entry at the head
 * that may hold. scripts.ts is what scripts/lua.mjs builds from the Lua files.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import type { GrantRequest, GrantResult } from '../../src/store.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(() => server.stop());

/** position: a busy answer's place in the queue (undefined when granted or refused for its limit). */
const position = (result: GrantResult): number | undefined => (result.granted || result.limitInUse !== undefined ? undefined : result.position);

const semaphore = (owner: string, extra: Partial<GrantRequest> = {}): GrantRequest => ({
  key: { kind: 'semaphore', name: 'pool' }, owner, mode: 'shared', limit: 2, ttlMs: 10_000, enqueue: true, queueTtlMs: 10_000, ...extra,
});

describe('redis: key layout', () => {
  it('scripts.ts is up to date with the Lua files', () => {
    execFileSync(process.execPath, ['scripts/lua.mjs', '--check'], { stdio: 'pipe' });
  });

  it('a dead entry in the middle of the queue is skipped when it reaches the head', async () => {
    const store = createRedisStore(server.client(), { prefix: 'layout1', notify: false });
    const key = semaphore('').key;
    try {
      assert.equal((await store.grant(semaphore('a'))).granted, true);
      assert.equal((await store.grant(semaphore('b'))).granted, true);
      const w1 = await store.grant(semaphore('w1', { queueTtlMs: 200 }));
      assert.equal(w1.granted, false);
      assert.equal(position(w1), 2);
      await store.grant(semaphore('w2'));
      const w3 = await store.grant(semaphore('w3'));
      assert.equal(position(w3), 4, 'two holders and two entries ahead');
      await sleep(300); // w1's queue entry runs out: it is dead, still in the sorted set
      assert.deepEqual((await store.inspect(key)).waiters.map((w) => w.owner), ['w2', 'w3'], 'inspect skips the dead entry');
      assert.equal(await store.release(key, 'a'), true);
      // Without notification nobody is handed the permit: w2 takes it when it asks.
      assert.equal((await store.grant(semaphore('w2'))).granted, true, 'w2 is at the head once w1 is dropped');
      const again = await store.grant(semaphore('w3'));
      assert.equal(position(again), 2, 'w3 waits behind b and w2');
      assert.equal(await store.release(key, 'b'), true);
      assert.equal((await store.grant(semaphore('w3'))).granted, true);
      assert.equal(await server.client().zcard('{layout1:semaphore:pool}:q'), 0, 'the queue is empty');
      assert.equal(await store.release(key, 'w1'), false, 'the dead entry is gone');
    } finally {
      await store.close();
    }
  });

  it('one release grants every entry at the head that may now hold, and no other', async () => {
    const holders = createBaton(createRedisStore(server.client(), { prefix: 'layout2' }));
    const waiters = createBaton(createRedisStore(server.client(), { prefix: 'layout2' }), { queuePollMs: 60_000 });
    try {
      const held = await Promise.all([0, 1, 2].map(() => holders.semaphore('pool', { permits: 3 }).acquire({ ttlMs: 10_000 })));
      const granted: string[] = [];
      const pending = ['w1', 'w2', 'w3', 'w4'].map(async (name) => {
        const lease = await waiters.semaphore('pool', { permits: 3 }).acquire({ ttlMs: 10_000 });
        granted.push(name);
        return lease;
      });
      while ((await holders.inspect('pool', 'semaphore')).waiters.length < 4) await sleep(5);
      assert.equal(await holders.forceRelease('pool', 'semaphore'), 3);
      // The forced release's own script granted the three at the head (waiters poll only once a minute).
      const state = await holders.inspect('pool', 'semaphore');
      assert.equal(state.holders.length, 3, 'three granted by the release itself');
      assert.equal(state.waiters.length, 1, 'the fourth still queued');
      const first = await Promise.all(pending.slice(0, 3));
      assert.deepEqual(granted.sort(), ['w1', 'w2', 'w3']);
      await first[0]!.release();
      const last = await pending[3]!;
      assert.equal(granted.length, 4);
      await Promise.all([...first.slice(1), last].map((lease) => lease.release()));
      void held;
    } finally {
      await holders.close();
      await waiters.close();
    }
  });
});
