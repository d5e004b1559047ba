/**
 * The cost of a handoff does not grow with the queue: a release wakes the next waiter only,
 * so the Redis commands per handoff (counted by the server in INFO commandstats, the calls
 * made inside the Lua scripts included) are the same with 10 waiters as with 500.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { createBaton, type Baton, type Lease } from '../../src/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

let server: RedisServer;
let admin: Redis;
before(async () => {
  server = await startRedis();
  admin = server.client();
});
after(() => server.stop());

/** Every command the server ran since the last reset, by name, less the ones this test sends to read them. */
async function commands(): Promise<Map<string, number>> {
  const info = await admin.info('commandstats');
  const counts = new Map<string, number>();
  for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    if (name !== 'info' && name !== 'config|resetstat') counts.set(name!, Number(calls));
  }
  return counts;
}

const total = (counts: Map<string, number>): number => [...counts.values()].reduce((a, b) => a + b, 0);

/** Queues `waiters` acquirers behind one holder (over 10 clients), then hands the lock on `handoffs` times. */
async function measure(waiters: number, handoffs: number): Promise<{ perHandoff: number; counts: Map<string, number> }> {
  const name = `handoff-${waiters}`;
  // Queued entries refresh themselves every queuePollMs: set it long, so that only the
  // handoffs themselves run while they are counted.
  const clients: Baton[] = Array.from({ length: 10 }, () => createBaton(createRedisStore(server.client()), { queuePollMs: 60_000 }));
  try {
    let holder: Lease<bigint> = await clients[0]!.mutex(name).acquire({ ttlMs: 60_000 });
    const granted: Lease<bigint>[] = [];
    let next: (lease: Lease<bigint>) => void = () => undefined;
    Array.from({ length: waiters }, (_, i) =>
      clients[i % clients.length]!.mutex(name).acquire({ ttlMs: 60_000 }).then((lease) => {
        granted.push(lease);
        next(lease);
      }, () => undefined), // the ones still queued at the end are rejected by close()
    );
    while ((await clients[0]!.inspect(name)).waiters.length < waiters) await new Promise((resolve) => setTimeout(resolve, 20));

    const handOn = async (): Promise<void> => {
      const handedTo = new Promise<Lease<bigint>>((resolve) => (next = resolve));
      await holder.release();
      holder = await handedTo;
    };
    await handOn(); // the first one loads the scripts on the server
    await admin.config('RESETSTAT');
    for (let i = 0; i < handoffs; i++) await handOn();
    const counts = await commands();
    assert.equal(granted.length, handoffs + 1, 'each release granted exactly one waiter');

    await holder.release();
    return { perHandoff: total(counts) / handoffs, counts };
  } finally {
    await Promise.allSettled(clients.map((client) => client.close()));
  }
}

describe('redis: cost of a handoff', () => {
  it('stays flat from 10 to 500 waiters', async () => {
    const small = await measure(10, 8);
    const large = await measure(500, 8);
    const show = (m: { perHandoff: number; counts: Map<string, number> }): string => `${m.perHandoff} per handoff (${[...m.counts].map(([k, v]) => `${k} ${v}`).join(', ')})`;
    // One release (its script and one PUBLISH) and one grant, each a handful of calls inside Lua.
    assert.ok(small.perHandoff <= 16, `10 waiters: ${show(small)}`);
    assert.equal(large.perHandoff, small.perHandoff, `10 waiters: ${show(small)}; 500 waiters: ${show(large)}`);
    assert.equal(large.counts.get('publish'), small.counts.get('publish'), 'one wake-up per handoff, whatever the queue');
  });
});
