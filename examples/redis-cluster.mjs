// A lock on a Redis Cluster: the same lock as on one server, with every key of a lock in one
// hash slot ({prefix:kind:name}), so each grant is one script on one master.
//
//   REDIS_CLUSTER_NODES=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 node examples/redis-cluster.mjs
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { createBaton } from 'baton-lock';
import { createRedisStore } from 'baton-lock/redis';

const nodes = (process.env.REDIS_CLUSTER_NODES ?? '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003').split(',').map((node) => {
  const [host, port] = node.split(':');
  return { host, port: Number(port) };
});

function connect() {
  // Each instance has its own Cluster client; closeClient: true closes it with the instance.
  const client = new Cluster(nodes);
  client.on('error', () => undefined);
  return createBaton(createRedisStore(client, { prefix: 'example', closeClient: true }));
}

const a = connect();
const b = connect();
try {
  // Locks on many names land on different masters; each one excludes on its own master.
  const names = ['invoices', 'payouts', 'reports'];
  const held = await Promise.all(names.map((name) => a.mutex(name).acquire({ ttlMs: 10_000, timeoutMs: 5_000 })));
  for (const [i, lease] of held.entries()) console.log(`instance a holds "${names[i]}" with token ${lease.token}`);
  for (const name of names) assert.equal(await b.mutex(name).tryAcquire({ ttlMs: 10_000 }), null, `"${name}" has one holder at a time`);
  console.log('instance b finds every one busy');

  await Promise.all(held.map((lease) => lease.release()));
  const next = await b.mutex('invoices').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance b holds "invoices" with token ${next.token}`);
  assert.ok(next.token > held[0].token, 'the next holder gets a higher token');
  await next.release();
} finally {
  await Promise.all([a.close(), b.close()]);
}
