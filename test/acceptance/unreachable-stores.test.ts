/**
 * Stores where nothing listens: a loopback port that was free a moment ago stands for a
 * server that is down, so every connection is refused. However the store is opened (the
 * CLI's `--store URL`, `openStore`, or a client of the user's own), the error names the
 * store, its address without credentials, and the cause the driver saw, ECONNREFUSED; not
 * "Connection is closed." or gRPC's "14 UNAVAILABLE: ... Resolution note: ". Messages are
 * asserted, not timings.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { Cluster, Redis } from 'ioredis';
import { QuorumError, StoreUnavailableError, createBaton, quorum } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { openStore } from '../../src/url.js';
import { freePort } from '../helpers/process.js';

const run = promisify(execFile);
const MAIN = resolve('build/src/cli/main.js');

/** `connect ECONNREFUSED 127.0.0.1:PORT`, as a pattern. */
const refused = (port: number): string => `connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`;

let ports: number[] = [];
before(async () => {
  while (ports.length < 3) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
});

/** Each URL scheme with a server, and the message a refused connection gets, credentials left out. */
function urlCases(): { name: string; url: string; message: RegExp }[] {
  const [a, b, c] = ports as [number, number, number];
  return [
    { name: 'redis://', url: `redis://admin:hunter2@127.0.0.1:${a}/0`, message: new RegExp(`^Cannot reach Redis at redis://127\\.0\\.0\\.1:${a}/0: ${refused(a)}$`) },
    { name: 'redis+cluster://', url: `redis+cluster://admin:hunter2@127.0.0.1:${a},127.0.0.1:${b}`, message: new RegExp(`^Cannot reach the Redis Cluster at redis\\+cluster://127\\.0\\.0\\.1:${a},127\\.0\\.0\\.1:${b}: ${refused(a)}; ${refused(b)}$`) },
    {
      name: 'redis+quorum://',
      url: `redis+quorum://admin:hunter2@127.0.0.1:${a},127.0.0.1:${b},127.0.0.1:${c}`,
      message: new RegExp(`^Cannot reach a majority \\(2 of 3\\) of the Redis quorum's nodes: redis://127\\.0\\.0\\.1:${a}: ${refused(a)}; redis://127\\.0\\.0\\.1:${b}: ${refused(b)}; redis://127\\.0\\.0\\.1:${c}: ${refused(c)}$`),
    },
    { name: 'etcd://', url: `etcd://root:hunter2@127.0.0.1:${a}`, message: new RegExp(`^Cannot reach etcd at etcd://127\\.0\\.0\\.1:${a}: ${refused(a)}$`) },
    { name: 'etcd:// with two members', url: `etcd://127.0.0.1:${a},127.0.0.1:${b}`, message: new RegExp(`^Cannot reach etcd at etcd://127\\.0\\.0\\.1:${a},127\\.0\\.0\\.1:${b}: ${refused(a)}; ${refused(b)}$`) },
    { name: 'zk://', url: `zk://root:hunter2@127.0.0.1:${a}/app`, message: new RegExp(`^Cannot reach ZooKeeper at zk://127\\.0\\.0\\.1:${a}/app: ${refused(a)}$`) },
    { name: 'zk:// with two servers', url: `zk://127.0.0.1:${a},127.0.0.1:${b}`, message: new RegExp(`^Cannot reach ZooKeeper at zk://127\\.0\\.0\\.1:${a},127\\.0\\.0\\.1:${b}: ${refused(a)}; ${refused(b)}$`) },
  ];
}

describe('a store URL where nothing listens', () => {
  it('baton ls --store URL exits 69 and says which store, where, and why', async () => {
    for (const { name, url, message } of urlCases()) {
      const result = await run(process.execPath, [MAIN, 'ls', '--store', url]).then(
        () => assert.fail(`${name}: baton ls succeeded`),
        (error: { code: number; stdout: string; stderr: string }) => error,
      );
      assert.equal(result.code, 69, `${name}: ${result.stderr}`);
      assert.equal(result.stdout, '', name);
      const [line, ...rest] = result.stderr.split('\n');
      assert.match(line!.replace(/^baton: /, ''), message, name);
      assert.ok(line!.startsWith('baton: '), name);
      assert.deepEqual(rest, [''], `${name}: one line`);
      assert.doesNotMatch(result.stderr, /hunter2/, name);
    }
  });

  it('baton ls --store URL exits as soon as it has said why: no client timer keeps it alive', async () => {
    for (const { name, url } of urlCases()) {
      // The time from the error on stderr to the exit, so that the store's own wait (a quorum's 5 s) does not count.
      const linger = await new Promise<number>((done, fail) => {
        const child = spawn(process.execPath, [MAIN, 'ls', '--store', url], { stdio: ['ignore', 'ignore', 'pipe'] });
        let saidAt: number | undefined;
        const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        child.stderr.once('data', () => (saidAt = performance.now()));
        child.once('error', fail);
        child.once('exit', () => {
          clearTimeout(killer);
          done(saidAt === undefined ? Infinity : performance.now() - saidAt);
        });
      });
      // A refused ioredis connection that is disconnected again waits its disconnectTimeout, 2 s by default.
      assert.ok(linger < 1000, `${name}: exited ${Math.round(linger)} ms after its error`);
    }
  });

  it('a quorum whose every node refused fails at once, not after its 5 s wait for a majority', async () => {
    const { url } = urlCases().find((c) => c.name === 'redis+quorum://')!;
    const started = performance.now();
    await assert.rejects(openStore(url), StoreUnavailableError);
    const took = performance.now() - started;
    assert.ok(took < 3000, `failed after ${Math.round(took)} ms`);
  });

  it('openStore rejects with StoreUnavailableError and the same message', async () => {
    for (const { name, url, message } of urlCases()) {
      await assert.rejects(openStore(url), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, `${name}: ${String(error)}`);
        assert.match(error.message, message, name);
        assert.doesNotMatch(error.message, /hunter2/, name);
        return true;
      });
    }
  });
});

describe('a client of your own, to a server that is down', () => {
  it('ioredis with an error listener: the cause it reported, whether commands fail fast or wait for a reconnection', async () => {
    const [a] = ports as [number];
    // Commands fail after one retry: the store's own error says why.
    const fast = new Redis({ host: '127.0.0.1', port: a, maxRetriesPerRequest: 1 });
    fast.on('error', () => undefined);
    // ioredis's defaults: commands wait in the offline queue; the call ends at its deadline, and says why.
    const queued = new Redis({ host: '127.0.0.1', port: a });
    queued.on('error', () => undefined);
    const failing = createBaton(createRedisStore(fast));
    const waiting = createBaton(createRedisStore(queued), { storeTimeoutMs: 500 });
    try {
      await assert.rejects(failing.list(), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, new RegExp(`^Cannot reach Redis at redis://127\\.0\\.0\\.1:${a}: ${refused(a)}$`));
        return true;
      });
      await assert.rejects(waiting.mutex('m').tryAcquire(), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, new RegExp(`^Cannot reach Redis at redis://127\\.0\\.0\\.1:${a}: ${refused(a)} \\(the redis store did not answer grant before its deadline\\)$`));
        return true;
      });
    } finally {
      await Promise.all([failing.close(), waiting.close()]);
      fast.disconnect();
      queued.disconnect();
    }
  });

  it('ioredis without an error listener: the store adds none, so ioredis still reports its errors itself', async () => {
    const [a] = ports as [number];
    const printed: string[] = [];
    const consoleError = console.error;
    console.error = (...args: unknown[]): void => void printed.push(args.map(String).join(' '));
    const client = new Redis({ host: '127.0.0.1', port: a, maxRetriesPerRequest: 1, retryStrategy: () => null });
    const baton = createBaton(createRedisStore(client));
    try {
      assert.equal(client.listenerCount('error'), 0);
      await assert.rejects(baton.list(), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        // The address, and the driver's own words, since its error events were not listened to.
        assert.match(error.message, new RegExp(`^Cannot reach Redis at redis://127\\.0\\.0\\.1:${a}: `));
        return true;
      });
    } finally {
      await baton.close();
      client.disconnect();
      console.error = consoleError;
    }
    assert.ok(printed.some((line) => line.includes('[ioredis] Unhandled error event') && line.includes('ECONNREFUSED')), printed.join('\n'));
  });

  it('the stores on a client add one set of listeners to it, removed when the last one closes', async () => {
    const [a] = ports as [number];
    const client = new Redis({ host: '127.0.0.1', port: a, lazyConnect: true });
    client.on('error', () => undefined);
    const events = ['error', 'ready', 'node error'];
    const before = events.map((event) => client.listenerCount(event));
    // One set of listeners for the client, however many stores share it.
    const stores = Array.from({ length: 12 }, () => createRedisStore(client));
    try {
      assert.deepEqual(events.map((event) => client.listenerCount(event)), before.map((n) => n + 1));
      await stores[0]!.close();
      assert.deepEqual(events.map((event) => client.listenerCount(event)), before.map((n) => n + 1));
    } finally {
      await Promise.all(stores.map((store) => store.close()));
      client.disconnect();
    }
    assert.deepEqual(events.map((event) => client.listenerCount(event)), before);
  });

  it('an ioredis Cluster: its seed nodes; and list fails rather than find no lock', async () => {
    const [a, b] = ports as [number, number];
    const client = new Cluster([{ host: '127.0.0.1', port: a }, { host: '127.0.0.1', port: b }], { clusterRetryStrategy: () => null, redisOptions: { maxRetriesPerRequest: 1 } });
    client.on('error', () => undefined);
    const baton = createBaton(createRedisStore(client), { storeTimeoutMs: 1000 });
    try {
      for (const attempt of [() => baton.list(), () => baton.mutex('c').tryAcquire()]) {
        await assert.rejects(attempt(), (error: unknown) => {
          assert.ok(error instanceof StoreUnavailableError, String(error));
          // ioredis's Cluster reports no node's own error ("Connection is closed."): the address, and that.
          assert.match(error.message, new RegExp(`^Cannot reach the Redis Cluster at redis\\+cluster://127\\.0\\.0\\.1:${a},127\\.0\\.0\\.1:${b}: `));
          return true;
        });
      }
    } finally {
      await baton.close();
      client.disconnect();
    }
  });

  it('a Redlock quorum of ioredis clients: each node\'s address and cause in the QuorumError', async () => {
    const clients = ports.map((port) => {
      const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1 });
      client.on('error', () => undefined);
      return client;
    });
    const baton = createBaton(quorum(clients.map((client) => createRedisStore(client, { fencing: false }))));
    try {
      for (const attempt of [() => baton.list(), () => baton.mutex('q').tryAcquire()]) {
        await assert.rejects(attempt(), (error: unknown) => {
          assert.ok(error instanceof QuorumError, String(error));
          for (const port of ports) assert.match(error.message, new RegExp(`Cannot reach Redis at redis://127\\.0\\.0\\.1:${port}: ${refused(port)}`));
          return true;
        });
      }
    } finally {
      await baton.close();
      for (const client of clients) client.disconnect();
    }
  });

  it('etcd3: the member\'s error without gRPC\'s framing, also once etcd3 holds calls back', async () => {
    // A port no etcd client of this process has tried yet: gRPC shares its connections to one
    // address between clients, and a client that comes while an earlier one's connection is
    // failing is told "Last error: null" (the store then says "no connection established").
    const a = ports[2]!;
    const client = new Etcd3({ hosts: `http://127.0.0.1:${a}` });
    const baton = createBaton(createEtcdStore(client));
    try {
      await assert.rejects(baton.list(), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, new RegExp(`^Cannot reach etcd: ${refused(a)}$`));
        return true;
      });
      // After failed calls, etcd3's circuit breaker refuses the next ones without trying: they say why it does.
      await assert.rejects(baton.list(), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, new RegExp(`^Cannot reach etcd: ${refused(a)}( \\(etcd3 holds calls back for a while after calls to a member failed\\))?$`));
        assert.doesNotMatch(error.message, /UNAVAILABLE|Resolution note|circuit breaker is open/);
        return true;
      });
    } finally {
      await baton.close();
      client.close();
    }
  });
});
