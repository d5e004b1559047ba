// A lock on one Redis server, with your own ioredis client. Two instances (each with its own
// client, as two processes would have) want the same lock: the second finds it busy, then
// takes it once the first released it, with a higher token.
//
// REDIS_URL names the server (default redis://127.0.0.1:6379).
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createBaton } from 'baton-lock';
import { createRedisStore } from 'baton-lock/redis';

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

function connect() {
  const client = new Redis(url);
  // ioredis asks for an error listener; baton reads these errors to say why Redis is out of reach.
  client.on('error', () => undefined);
  // closeClient: baton.close() also quits the client.
  return createBaton(createRedisStore(client, { prefix: 'example', closeClient: true }));
}

const a = connect();
const b = connect();
try {
  const first = await a.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance a holds "invoice-run" on ${url} with token ${first.token}`);

  const busy = await b.mutex('invoice-run').tryAcquire({ ttlMs: 10_000 });
  console.log(`instance b tries: ${busy === null ? 'busy' : 'granted?!'}`);
  assert.equal(busy, null, 'one holder at a time');

  await first.release();
  const second = await b.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance b holds "invoice-run" with token ${second.token}`);
  assert.ok(second.token > first.token, 'the next holder gets a higher token');
  await second.release();
} finally {
  await Promise.all([a.close(), b.close()]);
}
