/**
 * The DynamoDB store against dynalite (DynamoDB's API, in a process of its own on loopback,
 * its data on disk so that a restart keeps it). The contract suite runs with the stores of
 * one backing sharing one client, as the stores of one process would: they share what they
 * have seen of each entry (observations.ts), so a lease's expiry counts from its write.
 * Expiry as other processes see it is tested with real processes in dynamodb-processes.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { DescribeTimeToLiveCommand, GetItemCommand, type DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { InvalidArgumentError, QueueFullError, StoreUnavailableError, createBaton, monotonicNow, storeCall } from '../../src/index.js';
import { createDynamoDbStore, type DynamoDbClient } from '../../src/stores/dynamodb/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startDynalite, type DynaliteServer } from '../helpers/dynalite-server.js';
import { freePort } from '../helpers/process.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
let server: DynaliteServer;
before(async () => {
  server = await startDynalite();
});
after(() => server.stop());

runContractSuite({
  name: 'dynamodb (dynalite)',
  backing: async () => {
    // A fresh table is a fresh, empty place on the same server.
    const table = await server.table();
    const client = server.client();
    return {
      connect: () => createDynamoDbStore(client, { table }),
      restart: () => server.restart(),
      cleanup: async () => undefined,
    };
  },
  // Every call is an HTTP request through the SDK (2-3 ms each on an idle machine, tens of ms
  // on a loaded one), not a microsecond's: the suite's short TTLs and sleeps are doubled.
  scale: 2,
  skip: {
    'a release wakes one waiter, not all of them': 'DynamoDB cannot notify (guarantees.notify is false): every queued waiter polls with backoff, one strongly consistent read a poll',
  },
});

describe('dynamodb store', () => {
  it('states its guarantees: no clock of its own, no notification, FIFO, fencing, mixed modes', async () => {
    const store = createDynamoDbStore(server.client(), { table: await server.table() });
    assert.deepEqual({ ...store.guarantees }, { clock: 'observer', scope: 'network', fencing: true, fifo: true, notify: false, outlivesClient: true, mixedModes: true });
    assert.equal(createDynamoDbStore(server.client(), { table: 'some-table', expiry: 'wall' }).guarantees.clock, 'wall');
    await store.close();
  });

  it('refuses bad options with InvalidArgumentError naming the option', () => {
    const client = server.client();
    const bad: [unknown, string][] = [
      [undefined, 'options'],
      [{}, 'table'],
      [{ table: 'ab' }, 'table'],
      [{ table: 'locks', prefix: 'a:b' }, 'prefix'],
      [{ table: 'locks', partitionKey: 'fence' }, 'partitionKey'],
      [{ table: 'locks', maxEntries: 0 }, 'maxEntries'],
      [{ table: 'locks', maxEntries: 1001 }, 'maxEntries'],
      [{ table: 'locks', expiry: 'server' }, 'expiry'],
      [{ table: 'locks', clockSkewMs: 10 }, 'clockSkewMs'],
      [{ table: 'locks', ttl: 5 }, 'options.ttl'],
    ];
    for (const [options, argument] of bad) {
      assert.throws(() => createDynamoDbStore(client, options as never), (error: unknown) => error instanceof InvalidArgumentError && error.argument === argument, JSON.stringify(options));
    }
    assert.throws(() => createDynamoDbStore({} as never, { table: 'locks' }), (error: unknown) => error instanceof InvalidArgumentError && error.argument === 'client');
  });

  it('keeps one item per lock: its fence only grows, stays after every release and a forced release, and no attribute is a TTL', async () => {
    const table = await server.table();
    const client = server.client();
    const baton = createBaton(createDynamoDbStore(client, { table }));
    const tokens: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const lease = await baton.mutex('item').acquire({ ttlMs: 5000 });
      tokens.push(lease.token);
      await lease.release();
    }
    await baton.mutex('item').acquire({ ttlMs: 5000 });
    assert.equal(await baton.forceRelease('item'), 1);
    const { Item } = await client.send(new GetItemCommand({ TableName: table, Key: { pk: { S: 'baton:mutex:item' } }, ConsistentRead: true }));
    assert.deepEqual(Object.keys(Item!).sort(), ['entries', 'fence', 'kind', 'name', 'pk', 'seq', 'v']);
    assert.equal(Item!.fence!.N, '4');
    assert.deepEqual(Item!.entries!.L, []);
    assert.deepEqual(tokens, [1n, 2n, 3n]);
    const ttl = await client.send(new DescribeTimeToLiveCommand({ TableName: table }));
    assert.equal(ttl.TimeToLiveDescription?.TimeToLiveStatus, 'DISABLED');
    await baton.close();
  });

  it('refuses a newcomer beyond maxEntries with QueueFullError, granting and queueing nothing', async () => {
    const table = await server.table();
    const baton = createBaton(createDynamoDbStore(server.client(), { table, maxEntries: 2 }));
    const holder = await baton.mutex('full').acquire({ ttlMs: 5000 });
    const waiting = baton.mutex('full').acquire({ ttlMs: 5000, timeoutMs: 10_000 });
    while ((await baton.inspect('full')).waiters.length < 1) await sleep(5);
    await assert.rejects(baton.mutex('full').acquire({ ttlMs: 5000, timeoutMs: 5000 }), (error: unknown) => {
      assert.ok(error instanceof QueueFullError, String(error));
      assert.equal(error.code, 'QUEUE_FULL');
      assert.deepEqual([error.lockName, error.maxEntries], ['full', 2]);
      assert.match(error.message, /The mutex "full" already has 2 holders and waiters/);
      return true;
    });
    assert.equal(await baton.mutex('full').tryAcquire(), null, 'a try on a full lock is busy, not an error: it would add no entry');
    const state = await baton.inspect('full');
    assert.deepEqual([state.holders.length, state.waiters.length], [1, 1]);
    await holder.release();
    await (await waiting).release();
    await baton.close();
  });

  it('a process that first sees a dead holder waits one whole lease from that sight (its own clock), or, with expiry: wall, frees it at once', async () => {
    const table = await server.table();
    const holder = createBaton(createDynamoDbStore(server.client(), { table }));
    const wallHolder = createBaton(createDynamoDbStore(server.client(), { table, expiry: 'wall', clockSkewMs: 100 }));
    const ttlMs = 400;
    await holder.mutex('seen').acquire({ ttlMs });
    await wallHolder.mutex('wall').acquire({ ttlMs });
    // The holder's process stops renewing; another one, on its own client, first looks well after its lease ended.
    await sleep(ttlMs + 300);
    const observer = createBaton(createDynamoDbStore(server.client(), { table }));
    const firstSight = monotonicNow();
    assert.equal(await observer.mutex('seen').tryAcquire(), null, 'not yet: this process has only just seen the entry');
    const lease = await observer.mutex('seen').acquire({ ttlMs: 5000, timeoutMs: 10_000 });
    const waited = monotonicNow() - firstSight;
    assert.ok(waited >= ttlMs, `granted ${Math.round(waited)} ms after the first sight, before a whole lease of ${ttlMs} ms`);
    assert.ok(waited < ttlMs + 1500, `granted only ${Math.round(waited)} ms after the first sight`);
    await lease.release();
    const wall = createBaton(createDynamoDbStore(server.client(), { table, expiry: 'wall', clockSkewMs: 100 }));
    assert.ok(await wall.mutex('wall').tryAcquire({ ttlMs: 5000 }), 'the owner\'s wall-clock expiry (+ the skew allowance) has passed');
    await Promise.all([holder.close(), wallHolder.close(), observer.close(), wall.close()]);
  });

  it('mixes shared and exclusive entries in arrival order (a read-write lock), and an election\'s leader proclaims in place', async () => {
    const table = await server.table();
    const store = createDynamoDbStore(server.client(), { table });
    const key = { kind: 'semaphore', name: 'rw' } as const;
    const ask = (owner: string, mode: 'shared' | 'exclusive') => store.grant({ key, owner: owner.repeat(32), mode, limit: 10, ttlMs: 10_000, enqueue: true, queueTtlMs: 10_000 }, storeCall(5000));
    assert.equal((await ask('a', 'shared')).granted, true);
    assert.equal((await ask('b', 'shared')).granted, true, 'readers share');
    assert.deepEqual(await ask('c', 'exclusive'), { granted: false, position: 2, retryAfterMs: 3333 });
    assert.equal((await ask('d', 'shared')).granted, false, 'a reader does not overtake a queued writer');
    await store.release(key, 'a'.repeat(32), storeCall(5000));
    await store.release(key, 'b'.repeat(32), storeCall(5000));
    assert.equal((await ask('c', 'exclusive')).granted, true, 'the writer, once the readers are gone');
    assert.equal((await ask('d', 'shared')).granted, false);
    await store.release(key, 'c'.repeat(32), storeCall(5000));
    assert.equal((await ask('d', 'shared')).granted, true);

    const baton = createBaton(store);
    const election = baton.election('leader');
    const term = await election.campaign('node-a');
    await election.proclaim(term, 'node-a:ready');
    assert.deepEqual((await baton.inspect('leader', 'election')).holders.map((h) => h.value), ['node-a:ready']);
    await election.resign(term);
    await baton.close();
  });

  it('an endpoint where nothing listens: calls fail by their deadline with StoreUnavailableError saying why', async () => {
    const port = await freePort();
    // The SDK retries a refused connection itself (4 attempts, about 0.5 s) before the store sees why.
    const baton = createBaton(createDynamoDbStore(server.client({ endpoint: `http://127.0.0.1:${port}` }), { table: 'nowhere' }), { storeTimeoutMs: 1500 });
    const started = monotonicNow();
    await assert.rejects(baton.mutex('x').tryAcquire(), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(error.message, new RegExp(`^Cannot reach DynamoDB at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
      return true;
    });
    const took = monotonicNow() - started;
    assert.ok(took >= 1450 && took < 2500, `failed after ${Math.round(took)} ms, its deadline being 1500 ms`);
    await baton.close();
  });

  it('requests per operation, as DynamoDB bills them: an uncontended acquire and release of a lock this store wrote last is one write each', async (t) => {
    const table = await server.table();
    const { client, counts, reset } = countingClient(server.client());
    const other = createBaton(createDynamoDbStore(server.client(), { table }));
    const baton = createBaton(createDynamoDbStore(client, { table }));
    const cycle = async (name: string): Promise<Record<string, number>> => {
      reset();
      await (await baton.mutex(name).acquire({ ttlMs: 5000 })).release();
      return counts();
    };
    const first = await cycle('bill');
    const warm = await cycle('bill');
    await (await other.mutex('bill').acquire({ ttlMs: 5000 })).release();
    const afterOther = await cycle('bill');
    t.diagnostic(`acquire + release: a new lock ${JSON.stringify(first)}, again ${JSON.stringify(warm)}, after another process took it ${JSON.stringify(afterOther)}`);
    assert.deepEqual(first, { GetItemCommand: 2, UpdateItemCommand: 2 }, 'a new lock: its item (absent) and the floor are read, then one write each');
    assert.deepEqual(warm, { UpdateItemCommand: 2 });
    assert.deepEqual(afterOther, { GetItemCommand: 1, UpdateItemCommand: 3 }, 'the write on the stale item fails its condition, the item is read and written again');

    // A waiter polls with one strongly consistent read each time, and rewrites its place only every third of its queue TTL.
    const holder = await other.mutex('poll').acquire({ ttlMs: 10_000 });
    reset();
    const waiting = baton.mutex('poll').acquire({ ttlMs: 5000 });
    await sleep(3000);
    const polled = counts();
    await holder.release();
    reset();
    await (await waiting).release();
    const handOff = counts();
    t.diagnostic(`a waiter for 3 s: ${JSON.stringify(polled)}; from the holder's release to the waiter's own release: ${JSON.stringify(handOff)}`);
    assert.ok((polled.GetItemCommand ?? 0) >= 5 && (polled.GetItemCommand ?? 0) <= 40, `${polled.GetItemCommand} reads in 3 s of waiting`);
    assert.ok((polled.UpdateItemCommand ?? 0) >= 2 && (polled.UpdateItemCommand ?? 0) <= 6, `${polled.UpdateItemCommand} writes in 3 s of waiting (the place, then its refreshes every 667 ms at most)`);
    await Promise.all([baton.close(), other.close()]);
  });

  it('throttling (ProvisionedThroughputExceededException) is retried with backoff within the call\'s deadline, and never past it', async () => {
    const table = await server.table();
    const proxy = await throttlingProxy(server.port);
    try {
      // The SDK's own retries off, so that only the store's are seen.
      const client = server.client({ endpoint: `http://127.0.0.1:${proxy.port}`, maxAttempts: 1 });
      const baton = createBaton(createDynamoDbStore(client, { table }), { storeTimeoutMs: 1000 });
      proxy.throttleFor(300);
      const started = monotonicNow();
      const lease = await baton.mutex('hot').tryAcquire({ ttlMs: 5000 });
      assert.ok(lease, 'granted once the throttling stopped');
      assert.ok(monotonicNow() - started >= 250, 'it waited out the throttling');
      assert.ok(proxy.throttled() >= 2 && proxy.throttled() <= 40, `${proxy.throttled()} throttled requests in 300 ms: retried with backoff, not in a tight loop`);
      await lease.release();

      proxy.throttleFor(60_000);
      const before = proxy.requests();
      const tried = monotonicNow();
      await assert.rejects(baton.mutex('hot').tryAcquire({ ttlMs: 5000 }), (error: unknown) => error instanceof StoreUnavailableError);
      const gaveUp = monotonicNow() - tried;
      assert.ok(gaveUp >= 950 && gaveUp < 1500, `gave up after ${Math.round(gaveUp)} ms, its deadline being 1000 ms`);
      const atDeadline = proxy.requests();
      assert.ok(atDeadline - before >= 3, `${atDeadline - before} tries before the deadline`);
      await sleep(500);
      assert.equal(proxy.requests(), atDeadline, 'no request after the call gave up');
      proxy.throttleFor(0);
      await baton.close();
    } finally {
      await proxy.close();
    }
  });
});

/** A client that counts the requests it sends, by command, and passes them on. */
function countingClient(client: DynamoDBClient): { client: DynamoDbClient; counts: () => Record<string, number>; reset: () => void } {
  let counts: Record<string, number> = {};
  return {
    client: {
      send: (command: unknown, options?: { abortSignal?: AbortSignal }) => {
        const name = (command as object).constructor.name;
        counts[name] = (counts[name] ?? 0) + 1;
        return client.send(command as never, options);
      },
    },
    counts: () => Object.fromEntries(Object.entries(counts).sort()),
    reset: () => void (counts = {}),
  };
}

/** A proxy in front of dynalite that answers every request with ProvisionedThroughputExceededException while told to. */
async function throttlingProxy(target: number): Promise<{ port: number; throttleFor(ms: number): void; throttled(): number; requests(): number; close(): Promise<void> }> {
  let until = 0;
  let throttled = 0;
  let requests = 0;
  const server = createServer((req, res) => {
    requests++;
    const body: Buffer[] = [];
    req.on('data', (chunk: Buffer) => body.push(chunk));
    req.on('end', () => {
      if (monotonicNow() < until) {
        throttled++;
        res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0' });
        res.end(JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'The level of configured provisioned throughput for the table was exceeded.' }));
        return;
      }
      const forward = request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        answer.pipe(res);
      });
      forward.on('error', () => res.destroy());
      forward.end(Buffer.concat(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    throttleFor: (ms) => void (until = monotonicNow() + ms),
    throttled: () => throttled,
    requests: () => requests,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}
