/** The fault suite, short version, on the Redis store: one real redis-server on loopback, ε 150 ms. */
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { runFaultSuite } from './suite.js';

let server: RedisServer;
runFaultSuite({
  name: 'Redis',
  start: async () => {
    server = await startRedis();
    return `redis://127.0.0.1:${server.port}?prefix={run}`;
  },
  stop: () => server.stop(),
  epsilonMs: 150,
});
