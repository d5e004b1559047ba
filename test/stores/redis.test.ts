import { randomBytes } from 'node:crypto';
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(() => server.stop());

runContractSuite({
  name: 'redis (one server)',
  backing: async () => {
    // A fresh key prefix is a fresh, empty place on the same server.
    const prefix = `t${randomBytes(4).toString('hex')}`;
    return {
      connect: () => createRedisStore(server.client(), { prefix }),
      restart: () => server.restart(),
      cleanup: async () => undefined,
    };
  },
});

it('list and prune match a prefix as it is, not as a pattern: a prefix with * ? [ ] \\ sees only its own locks', async () => {
  const tag = randomBytes(3).toString('hex');
  const others = createBaton(createRedisStore(server.client(), { prefix: `${tag}Xa` }));
  const wild = ['*', '?a', '[X]a', '\\Xa'].map((suffix) => createBaton(createRedisStore(server.client(), { prefix: `${tag}${suffix}` })));
  try {
    await (await others.mutex('theirs').acquire({ ttlMs: 5000 })).release();
    for (const baton of wild) {
      assert.deepEqual(await baton.list(), [], 'a prefix lists no lock of another prefix');
      assert.equal(await baton.prune(), 0);
    }
    assert.deepEqual((await others.list()).map((lock) => lock.name), ['theirs']);
  } finally {
    await Promise.all([others, ...wild].map((baton) => baton.close()));
  }
});
