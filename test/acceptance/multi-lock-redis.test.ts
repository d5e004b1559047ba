/** Multi-lock acceptance (multi-lock-run.ts) on one Redis server, and on a Redlock quorum of three (no fencing: the counters alone tell). */
import { after, before, it } from 'node:test';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { runMultiLock } from './multi-lock-run.js';

const servers: RedisServer[] = [];
before(async () => {
  for (let i = 0; i < 3; i++) servers.push(await startRedis());
});
after(async () => {
  for (const server of servers) await server.stop();
});

it('lockAll across 8 processes on Redis: no deadlock, no two holders of a name', async (t) => runMultiLock(t, 'redis', servers[0]!.url, true));
it('lockAll across 8 processes on a Redlock quorum of 3: no deadlock, no two holders of a name', async (t) =>
  runMultiLock(t, 'quorum', `redis+quorum://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}?prefix=multi`, false));
