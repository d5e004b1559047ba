/** The contract suite on node-redis: the same store, driven through the other popular client. */
import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { createClient } from 'redis';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let server: RedisServer;
let client: ReturnType<typeof createClient>;
before(async () => {
  server = await startRedis();
  client = createClient({ url: server.url });
  client.on('error', () => undefined);
  await client.connect();
});
after(async () => {
  await client.close();
  await server.stop();
});

runContractSuite({
  name: 'redis via node-redis',
  backing: async () => {
    const prefix = `t${randomBytes(4).toString('hex')}`;
    return {
      // One shared connection, as most applications have: each store subscribes on a duplicate of its own.
      connect: () => createRedisStore(client, { prefix }),
      restart: () => server.restart(),
      cleanup: async () => undefined,
    };
  },
});
