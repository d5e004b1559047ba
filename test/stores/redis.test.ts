import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
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
