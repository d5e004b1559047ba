// Redlock: one lock over several independent Redis servers. `quorum([...])` makes one store
// of them: a lock is held when a majority of the servers granted it in time, so it outlives
// a minority of them going down. It gives no fencing token: `lease.token` is null, and a
// holder paused past its TTL can write after the next holder (see docs/guarantees.md).
//
// REDIS_URLS names the servers, comma-separated (default: ports 6379, 6380 and 6381 on
// 127.0.0.1). Use an odd number of them, 3 or 5.
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createBaton } from 'baton-lock';
import { createRedisStore, quorum } from 'baton-lock/redis';

const urls = (process.env.REDIS_URLS ?? 'redis://127.0.0.1:6379,redis://127.0.0.1:6380,redis://127.0.0.1:6381').split(',');

// A server must never run a command late (after the quorum gave up on it): no offline queue,
// no resend. A command sent while a server makes its first connection waits for it.
function node(url) {
  const client = new Redis(url, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, retryStrategy: (n) => Math.min(50 * n, 200) });
  client.on('error', () => undefined); // baton reads these errors to say which server is out of reach, and why
  return client;
}

// One instance, as one process would have: a client per server; closeClient lets baton.close() quit them.
const connect = () => createBaton(quorum(urls.map((url) => createRedisStore(node(url), { fencing: false, closeClient: true }))));

const a = connect();
const b = connect();
try {
  const lease = await a.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance a holds "invoice-run" on a majority of ${urls.length} servers; token ${lease.token} (Redlock gives no fencing token)`);
  assert.equal(lease.token, null);

  const busy = await b.mutex('invoice-run').tryAcquire({ ttlMs: 10_000 });
  console.log(`instance b tries: ${busy === null ? 'busy' : 'granted?!'}`);
  assert.equal(busy, null, 'one holder at a time');

  await lease.release();
  const next = await b.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance b holds "invoice-run" after a released it; token ${next.token}`);
  await next.release();
} finally {
  await Promise.all([a.close(), b.close()]);
}
