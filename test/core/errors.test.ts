/**
 * Bad input: every case in docs/errors.md gets its typed error, and none leaves an
 * unhandled rejection behind. The test fails if a case is added to the doc without a check
 * here, or the other way round.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ClosedError,
  InvalidArgumentError,
  LeaseLostError,
  LockNotHeldError,
  LockTimeoutError,
  LockUpgradeError,
  PermitsMismatchError,
  QueueFullError,
  QuorumError,
  StoreUnavailableError,
  UnsupportedError,
  createBaton,
  monotonicNow,
  quorum,
  storeCall,
  type Baton,
  type LockStore,
} from '../../src/index.js';
import { wrapStore } from '../helpers/wrap-store.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { createRedisStore } from '../../src/stores/redis/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { createEtcdStore, type EtcdClient } from '../../src/stores/etcd/index.js';
import { createDynamoDbStore } from '../../src/stores/dynamodb/index.js';
import { startDynalite } from '../helpers/dynalite-server.js';
import { createZooKeeperStore, type ZooKeeperClient } from '../../src/stores/zookeeper/index.js';
import { openStore } from '../../src/url.js';
import { freePort } from '../helpers/process.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const fresh = (): Baton => createBaton(createMemoryStore());
const anyArg = (value: unknown): never => value as never;

/** Each case returns after checking its own outcome. */
const cases: Record<string, () => Promise<void>> = {
  'name-empty': async () => assert.throws(() => fresh().mutex(''), InvalidArgumentError),
  'name-too-long': async () => assert.throws(() => fresh().mutex('n'.repeat(257)), InvalidArgumentError),
  'name-not-string': async () => assert.throws(() => fresh().mutex(anyArg(42)), InvalidArgumentError),
  'name-control-character': async () => assert.throws(() => fresh().mutex('a\nb'), InvalidArgumentError),
  'name-lone-surrogate': async () => {
    for (const name of ['\ud800', '\udc00', 'a\ud800', 'a\udc00b', '\udc00\ud800']) assert.throws(() => fresh().mutex(name), InvalidArgumentError, JSON.stringify(name));
  },
  'ttl-zero': async () => void (await assert.rejects(fresh().mutex('x').acquire({ ttlMs: 0 }), InvalidArgumentError)),
  'ttl-negative': async () => void (await assert.rejects(fresh().mutex('x').acquire({ ttlMs: -1 }), InvalidArgumentError)),
  'ttl-nan': async () => void (await assert.rejects(fresh().mutex('x').acquire({ ttlMs: Number.NaN }), InvalidArgumentError)),
  'ttl-non-integer': async () => void (await assert.rejects(fresh().mutex('x').acquire({ ttlMs: 1.5 }), InvalidArgumentError)),
  'ttl-too-large': async () => void (await assert.rejects(fresh().mutex('x').acquire({ ttlMs: 2 ** 31 }), InvalidArgumentError)),
  'ttl-infinite': async () => void (await assert.rejects(fresh().mutex('x').acquire({ ttlMs: Infinity }), InvalidArgumentError)),
  'extend-ttl-invalid': async () => {
    const lease = await fresh().mutex('x').acquire({ ttlMs: 5000 });
    const before = lease.ttlMs;
    await assert.rejects(lease.extend(0), InvalidArgumentError);
    assert.equal(lease.ttlMs, before);
    assert.ok(lease.held);
  },
  'timeout-negative': async () => void (await assert.rejects(fresh().mutex('x').acquire({ timeoutMs: -1 }), InvalidArgumentError)),
  'timeout-nan': async () => void (await assert.rejects(fresh().mutex('x').acquire({ timeoutMs: Number.NaN }), InvalidArgumentError)),
  'permits-invalid': async () => {
    assert.throws(() => fresh().semaphore('s', { permits: 0 }), InvalidArgumentError);
    assert.throws(() => fresh().semaphore('s', { permits: 1.5 }), InvalidArgumentError);
    assert.throws(() => fresh().semaphore('s', anyArg(undefined)), InvalidArgumentError);
  },
  'permits-mismatch': async () => {
    const baton = fresh();
    const held = await baton.semaphore('s', { permits: 1 }).acquire({ ttlMs: 5000 });
    const started = monotonicNow();
    await assert.rejects(baton.semaphore('s', { permits: 3 }).acquire({ ttlMs: 5000, timeoutMs: 5000 }), (error: unknown) =>
      error instanceof PermitsMismatchError && error instanceof InvalidArgumentError && error.code === 'INVALID_ARGUMENT' && error.argument === 'permits' &&
      error.lockName === 's' && error.permits === 3 && error.permitsInUse === 1 && error.message.startsWith('The semaphore "s" was asked with 3 permits, but its current holders and waiters use 1'));
    assert.ok(monotonicNow() - started < 1000, 'refused at once, not after the timeout');
    const state = await baton.inspect('s', 'semaphore');
    assert.deepEqual([state.holders.map((h) => h.owner), state.waiters], [[held.owner], []]);
    await held.release();
    const three = await baton.semaphore('s', { permits: 3 }).tryAcquire();
    assert.ok(three, 'other permits are taken once no one holds or waits');
  },
  'unknown-option': async () => {
    await assert.rejects(fresh().mutex('x').acquire(anyArg({ ttl: 5000 })), (error: unknown) => error instanceof InvalidArgumentError && /`ttl`/.test(error.message));
  },
  'options-not-object': async () => void (await assert.rejects(fresh().mutex('x').acquire(anyArg('fast')), InvalidArgumentError)),
  'signal-not-signal': async () => void (await assert.rejects(fresh().mutex('x').acquire({ signal: anyArg({}) }), InvalidArgumentError)),
  'signal-already-aborted': async () => {
    const baton = fresh();
    const reason = new Error('stop');
    await assert.rejects(baton.mutex('x').acquire({ signal: AbortSignal.abort(reason) }), (error: unknown) => error === reason);
    assert.deepEqual(await baton.list(), [], 'the store was not touched');
  },
  'signal-aborted-while-waiting': async () => {
    const baton = fresh();
    await baton.mutex('x').acquire({ ttlMs: 5000 });
    const controller = new AbortController();
    const waiting = baton.mutex('x').acquire({ signal: controller.signal });
    await sleep(10);
    controller.abort();
    await assert.rejects(waiting, (error: unknown) => error instanceof DOMException && error.name === 'AbortError');
    assert.deepEqual((await baton.inspect('x')).waiters, []);
  },
  timeout: async () => {
    const baton = fresh();
    await baton.mutex('x').acquire({ ttlMs: 5000 });
    await assert.rejects(baton.mutex('x').acquire({ timeoutMs: 20 }), LockTimeoutError);
    assert.deepEqual((await baton.inspect('x')).waiters, []);
  },
  'fn-not-function': async () => void (await assert.rejects(fresh().withLock('x', anyArg(42)), InvalidArgumentError)),
  'use-after-close': async () => {
    const baton = fresh();
    const handle = baton.mutex('x');
    await baton.close();
    assert.throws(() => baton.mutex('x'), ClosedError);
    await assert.rejects(handle.acquire(), ClosedError);
    await assert.rejects(handle.tryAcquire(), ClosedError);
    await assert.rejects(baton.withLock('x', async () => 1), ClosedError);
    await assert.rejects(baton.inspect('x'), ClosedError);
    await assert.rejects(baton.list(), ClosedError);
    await assert.rejects(baton.forceRelease('x'), ClosedError);
  },
  'acquire-pending-at-close': async () => {
    const baton = fresh();
    await baton.mutex('x').acquire({ ttlMs: 5000 });
    const waiting = baton.mutex('x').acquire();
    await sleep(10);
    await baton.close();
    await assert.rejects(waiting, ClosedError);
  },
  'double-release': async () => {
    const lease = await fresh().mutex('x').acquire({ ttlMs: 5000 });
    await lease.release();
    await assert.rejects(lease.release(), LockNotHeldError);
  },
  'extend-after-release': async () => {
    const lease = await fresh().mutex('x').acquire({ ttlMs: 5000 });
    await lease.release();
    await assert.rejects(lease.extend(1000), LockNotHeldError);
  },
  'release-after-loss': async () => {
    const baton = fresh();
    const old = await baton.mutex('x').acquire({ ttlMs: 30 });
    const next = await baton.mutex('x').acquire({ ttlMs: 5000 });
    await assert.rejects(old.release(), LeaseLostError);
    assert.deepEqual((await baton.inspect('x')).holders.map((h) => h.owner), [next.owner]);
  },
  'extend-after-loss': async () => {
    const lease = await fresh().mutex('x').acquire({ ttlMs: 20 });
    await sleep(40);
    await assert.rejects(lease.extend(1000), (error: unknown) => error instanceof LeaseLostError && error.reason === 'expired');
  },
  'store-unreachable': async () => {
    const baton = createBaton(createSqliteStore({ path: '/proc/baton-cannot-be-here/locks.db' }));
    await assert.rejects(baton.mutex('x').acquire(), StoreUnavailableError);
    await baton.close();
  },
  'store-refused': async () => {
    const port = await freePort();
    await assert.rejects(openStore(`redis://admin:hunter2@127.0.0.1:${port}`), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.equal(error.message, `Cannot reach Redis at redis://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
      return true;
    });
  },
  'store-stalled': async () => {
    // A store whose calls never answer: each call gives up at its timeout, the instance still closes on time.
    const inner = createMemoryStore();
    const never = (): Promise<never> => new Promise<never>(() => undefined);
    const stalled = { ...wrapStore(inner), grant: never, release: never, inspect: never } as unknown as LockStore;
    const baton = createBaton(stalled, { storeTimeoutMs: 50 });
    await assert.rejects(baton.mutex('x').tryAcquire(), (error: unknown) => error instanceof StoreUnavailableError && /did not answer grant before its deadline/.test(error.message));
    await assert.rejects(baton.inspect('x'), StoreUnavailableError);
    // A try cut by storeTimeoutMs is tried again: the acquire waits out its own timeout.
    const started = monotonicNow();
    await assert.rejects(baton.mutex('x').acquire({ timeoutMs: 200 }), (error: unknown) => error instanceof LockTimeoutError && error.cause instanceof StoreUnavailableError);
    assert.ok(monotonicNow() - started >= 195, `rejected after ${monotonicNow() - started} ms, before its timeout of 200 ms`);
    await baton.close();
  },
  'store-timeout-invalid': async () => {
    assert.throws(() => createBaton(createMemoryStore(), { storeTimeoutMs: 0 }), InvalidArgumentError);
    await assert.rejects(fresh().inspect('x', 'mutex', { timeoutMs: 1.5 }), InvalidArgumentError);
    const lease = await fresh().mutex('x').acquire();
    await assert.rejects(lease.release({ timeoutMs: -1 }), InvalidArgumentError);
    await lease.release();
  },
  'store-locked': async () => {
    // Two connections: one holds the write lock in an open transaction, the other gives up after busyTimeoutMs.
    const path = join(dir, 'locked.db');
    const holder = createBaton(createSqliteStore({ path }));
    await holder.mutex('x').acquire({ ttlMs: 5000 });
    const Database = (await import('better-sqlite3')).default;
    const raw = new Database(path);
    raw.exec('BEGIN IMMEDIATE');
    const blocked = createBaton(createSqliteStore({ path, busyTimeoutMs: 100 }));
    await assert.rejects(blocked.mutex('x').tryAcquire(), (error: unknown) => error instanceof StoreUnavailableError && error.code === 'STORE_UNAVAILABLE' && /locked/.test(error.message));
    raw.exec('ROLLBACK');
    raw.close();
    await Promise.all([holder.close(), blocked.close()]);
  },
  'store-option-invalid': async () => assert.throws(() => createSqliteStore({ prefix: 'a:b' }), InvalidArgumentError),
  'redis-client-invalid': async () => {
    assert.throws(() => createRedisStore(anyArg({})), InvalidArgumentError);
    assert.throws(() => createRedisStore(anyArg(undefined)), InvalidArgumentError);
  },
  'quorum-stores-invalid': async () => {
    const store = createMemoryStore();
    assert.throws(() => quorum([]), InvalidArgumentError);
    assert.throws(() => quorum([store, store]), InvalidArgumentError);
    assert.throws(() => quorum([anyArg({})]), InvalidArgumentError);
  },
  'quorum-option-invalid': async () => {
    const stores = [createMemoryStore(), createMemoryStore(), createMemoryStore()];
    assert.throws(() => quorum(stores, { nodeTimeoutMs: 0 }), InvalidArgumentError);
    assert.throws(() => quorum(stores, { driftFactor: 0.5 }), InvalidArgumentError);
    assert.throws(() => quorum(stores, anyArg({ retries: 3 })), InvalidArgumentError);
  },
  'quorum-no-majority': async () => {
    const stores = [createMemoryStore(), createMemoryStore(), createMemoryStore()];
    await stores[1]!.close();
    await stores[2]!.close();
    const baton = createBaton(quorum(stores));
    const error = await baton.mutex('x').acquire({ ttlMs: 5000 }).then(() => assert.fail('granted by 1 of 3'), (e: unknown) => e);
    assert.ok(error instanceof QuorumError && error instanceof StoreUnavailableError, String(error));
    assert.deepEqual(error.answers.map((a) => a.answer), ['granted', 'error', 'error']);
    assert.deepEqual((await stores[0]!.inspect({ kind: 'mutex', name: 'x' })).holders, [], 'rolled back on the node that granted');
    await baton.close();
  },
  'election-value-invalid': async () => {
    const baton = fresh();
    await assert.rejects(baton.election('e').campaign(anyArg(42)), InvalidArgumentError);
    const lease = await baton.election('e').campaign('v', { ttlMs: 1000 });
    await assert.rejects(baton.election('e').proclaim(lease, anyArg(42)), InvalidArgumentError);
    await baton.close();
  },
  'rwlock-upgrade': async () => {
    const baton = fresh();
    const rw = baton.rwlock('rw');
    const read = await rw.read({ ttlMs: 5000 });
    await assert.rejects(rw.write({ ttlMs: 5000 }), (error: unknown) => error instanceof LockUpgradeError && error.code === 'UPGRADE_REFUSED' && error.lockName === 'rw');
    assert.ok(read.held);
    assert.deepEqual((await baton.inspect('rw', 'rwlock')).waiters, []);
    await baton.close();
  },
  'rwlock-downgrade-not-write': async () => {
    const baton = fresh();
    const rw = baton.rwlock('rw');
    const read = await rw.read({ ttlMs: 5000 });
    await assert.rejects(rw.downgrade(read), InvalidArgumentError);
    const write = await baton.rwlock('other').write({ ttlMs: 5000 });
    await assert.rejects(rw.downgrade(write), InvalidArgumentError, 'a lease of another handle');
    await baton.close();
  },
  'rwlock-downgrade-unsupported': async () => {
    const store = createMemoryStore();
    const baton = createBaton(wrapStore(store, { downgrade: undefined }));
    const rw = baton.rwlock('rw');
    const write = await rw.write({ ttlMs: 5000 });
    await assert.rejects(rw.downgrade(write), (error: unknown) => error instanceof UnsupportedError && error.code === 'UNSUPPORTED' && error.store === 'memory');
    assert.ok(write.held, 'the write lease is kept');
    assert.deepEqual((await baton.inspect('rw', 'rwlock')).holders.map((h) => h.mode), ['exclusive']);
    await baton.close();
  },
  'schedule-invalid': async () => {
    const baton = fresh();
    assert.throws(() => baton.schedule('job', 'every day', () => undefined), InvalidArgumentError);
    assert.throws(() => baton.schedule('job', 500, () => undefined), InvalidArgumentError);
    assert.throws(() => baton.schedule('job', '0 * * * *', () => undefined, { timezone: 'Mars/Olympus' }), InvalidArgumentError);
    assert.throws(() => baton.schedule('job', 1000, () => undefined, { lockAtMostForMs: 1000, lockAtLeastForMs: 2000 }), InvalidArgumentError);
    assert.throws(() => baton.schedule('job', 1000, anyArg(42)), InvalidArgumentError);
    await baton.close();
  },
  'schedule-unsupported': async () => {
    const baton = createBaton(wrapStore(createMemoryStore(), { advanceMark: undefined }));
    assert.throws(() => baton.schedule('job', 1000, () => undefined), (error: unknown) => error instanceof UnsupportedError && error.store === 'memory');
    await baton.close();
  },
  'proclaim-unsupported': async () => {
    const baton = fresh();
    const lease = await baton.election('e').campaign('v', { ttlMs: 1000 });
    await assert.rejects(baton.election('e').proclaim(lease, 'w'), (error: unknown) => error instanceof UnsupportedError && error.code === 'UNSUPPORTED' && error.store === 'memory' && /memory store cannot proclaim/.test(error.message));
    await baton.close();
  },
  'proclaim-not-leader': async () => {
    // The check comes before the store is asked, so any store shows it; etcd's own is in test/stores/etcd-election.
    const baton = fresh();
    const election = baton.election('e');
    const lease = await election.campaign('v', { ttlMs: 1000 });
    await election.resign(lease);
    await assert.rejects(election.proclaim(lease, 'w'), LockNotHeldError);
    await baton.close();
  },
  'store-option-etcd-invalid': async () => {
    // A structural stand-in is enough: options are checked before the client is used.
    const client = { kv: { txn: () => undefined }, leaseClient: { leaseGrant: () => undefined }, watch: () => undefined, close: () => undefined } as unknown as EtcdClient;
    assert.throws(() => createEtcdStore(client, { sessionTtlMs: 500 }), InvalidArgumentError);
    assert.throws(() => createEtcdStore(client, { prefix: 'app' }), InvalidArgumentError);
    assert.throws(() => createEtcdStore(anyArg({})), InvalidArgumentError);
  },
  'store-option-zookeeper-invalid': async () => {
    // A structural stand-in: options and the kinds the store keeps are checked before the client is used.
    const noop = (): void => undefined;
    const client = { create: noop, getChildren: noop, getSessionTimeout: () => 1000, on: noop, removeListener: noop } as unknown as ZooKeeperClient;
    assert.throws(() => createZooKeeperStore(client, { root: 'baton' }), InvalidArgumentError);
    assert.throws(() => createZooKeeperStore(client, { root: '/baton/' }), InvalidArgumentError);
    assert.throws(() => createZooKeeperStore(client, { acls: [] }), InvalidArgumentError);
    assert.throws(() => createZooKeeperStore(anyArg({})), InvalidArgumentError);
    const store = createZooKeeperStore(client);
    const request = { key: { kind: 'rwlock', name: 'r' }, owner: 'a'.repeat(32), mode: 'shared', limit: 2, ttlMs: 1000, enqueue: true, queueTtlMs: 1000 } as const;
    await assert.rejects(store.grant(request, storeCall(1000)), (error: unknown) => error instanceof InvalidArgumentError && error.argument === 'kind');
    await store.close();
  },
  'store-url-invalid': async () => {
    await assert.rejects(openStore('nope://admin:hunter2@host/x'), (error: unknown) => error instanceof InvalidArgumentError && !error.message.includes('hunter2'));
  },
  'store-option-dynamodb-invalid': async () => {
    const client = { send: async () => ({}) };
    assert.throws(() => createDynamoDbStore(client, anyArg(undefined)), InvalidArgumentError);
    assert.throws(() => createDynamoDbStore(client, { table: 'ab' }), InvalidArgumentError);
    assert.throws(() => createDynamoDbStore(client, { table: 'locks', maxEntries: 0 }), InvalidArgumentError);
    assert.throws(() => createDynamoDbStore(anyArg({}), { table: 'locks' }), InvalidArgumentError);
  },
  'queue-full': async () => {
    const server = await startDynalite();
    try {
      const baton = createBaton(createDynamoDbStore(server.client(), { table: await server.table(), maxEntries: 1 }));
      await baton.mutex('x').acquire({ ttlMs: 5000 });
      await assert.rejects(baton.mutex('x').acquire({ ttlMs: 5000, timeoutMs: 5000 }), (error: unknown) => error instanceof QueueFullError && error.code === 'QUEUE_FULL' && error.maxEntries === 1);
      assert.deepEqual((await baton.inspect('x')).waiters, []);
      await baton.close();
    } finally {
      await server.stop();
    }
  },
};

let dir: string;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => void unhandled.push(reason);

describe('bad input gets a typed error (docs/errors.md)', () => {
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-errors-'));
    process.on('unhandledRejection', onUnhandled);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('docs/errors.md lists exactly the cases checked here', () => {
    const documented = [...readFileSync('docs/errors.md', 'utf8').matchAll(/^\| `([a-z0-9-]+)` \|/gm)].map((m) => m[1]!);
    assert.deepEqual([...documented].sort(), Object.keys(cases).sort());
  });

  for (const [name, check] of Object.entries(cases)) it(name, check);

  it('no case left an unhandled rejection', async () => {
    await sleep(50);
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(unhandled, []);
  });
});
