/**
 * The PostgreSQL store beyond the contract: no lock outlives a statement (a paused client
 * blocks nobody, a row lock is waited for only within the call), LISTEN survives its
 * connection being killed, the connections the store owns never crash the process when they
 * die, the schema (made on first use by many processes at once, or applied by hand from
 * docs/postgres-schema.sql), and postgres:// URLs in the API and the CLI.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { InvalidArgumentError, StoreUnavailableError, createBaton, storeCall, type Baton } from '../../src/index.js';
import { createPostgresStore, schemaSql } from '../../src/stores/postgres/index.js';
import { openStore, parseStoreUrl } from '../../src/url.js';
import { adopt } from '../helpers/children.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';

const run = promisify(execFile);
const MAIN = resolve('build/src/cli/main.js');
let server: PostgresServer;
before(async () => {
  server = await startPostgres();
});
after(() => server.stop());

const fresh = (): string => `s${randomBytes(4).toString('hex')}`;
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** until polls `check` until it holds; fails after 10 s. */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const end = Date.now() + 10_000; !(await check()); await sleep(20)) {
    if (Date.now() > end) assert.fail(`never happened: ${what}`);
  }
}

async function listening(): Promise<number> {
  const { rows } = await server.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE 'LISTEN baton_wake_%'`);
  return rows[0].n as number;
}

describe('postgres:// URLs', () => {
  it('keep baton\'s options out of the connection URL and pass the driver\'s TLS options through', () => {
    assert.deepEqual(parseStoreUrl('postgres://app:pw@db:5432/app?schema=locks&prefix=svc&sslmode=require&statementTimeoutMs=3000'), {
      scheme: 'postgres', url: 'postgres://app:pw@db:5432/app?sslmode=require', schema: 'locks', prefix: 'svc', statementTimeoutMs: 3000,
    });
    const listen = 'postgres://app:pw@db-direct:5432/app';
    assert.deepEqual(parseStoreUrl(`postgresql://app:pw@bouncer:6432/app?listen=${encodeURIComponent(listen)}&notify=true`), {
      scheme: 'postgres', url: 'postgresql://app:pw@bouncer:6432/app', listen, notify: true,
    });
    for (const [url, pattern] of [
      ['postgres://u:hunter2@db/app?schema=a-b', /"schema" must be a PostgreSQL identifier/],
      ['postgres://u:hunter2@db/app?prefix=a:b', /"prefix" must be/],
      ['postgres://u:hunter2@db/app?notify=0', /"notify" must be "true" or "false"/],
      ['postgres://u:hunter2@db/app?listen=redis%3A%2F%2Fu%3Ahunter2%40h', /"listen" must be a percent-encoded postgres:\/\/ URL/],
      ['postgres://u:hunter2@db/app?sslmode=require&sslmode=disable', /given twice/],
      ['postgres://u:hunter2@db/app?pool=3', /Unknown store URL option "pool" for postgres:\/\//],
      ['postgres:///app', /needs a host/],
    ] as const) {
      assert.throws(() => parseStoreUrl(url), (error: unknown) => {
        assert.ok(error instanceof InvalidArgumentError, String(error));
        assert.match(error.message, pattern, url);
        assert.doesNotMatch(error.message, /hunter2/, url);
        return true;
      });
    }
  });

  it('open a store on a real server, which close() leaves with nothing running', async () => {
    const schema = fresh();
    const baton = createBaton(await openStore(`${server.url}?schema=${schema}&prefix=url`));
    const lease = await baton.mutex('u').acquire({ ttlMs: 5000 });
    assert.equal(typeof lease.token, 'bigint');
    assert.deepEqual((await baton.list()).map((lock) => lock.name), ['u']);
    await baton.close();
    const { rows } = await server.query(`SELECT count(*)::int AS n FROM ${schema}.baton_entry`);
    assert.equal(rows[0].n, 0, 'close released the lease');
  });

  it('fail with StoreUnavailableError naming the address, without the password, when the server cannot be reached', async () => {
    await assert.rejects(openStore('postgres://admin:hunter2@127.0.0.1:1/app'), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(error.message, /Cannot reach PostgreSQL at 127\.0\.0\.1:1: .*ECONNREFUSED/);
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });

  it('work in the CLI: run, ls, inspect, release --force and prune', async () => {
    const url = `${server.url}?schema=${fresh()}`;
    const { stdout } = await run(process.execPath, [MAIN, '--store', url, 'run', 'job', '--', 'sh', '-c', 'echo "$BATON_LOCK $BATON_TOKEN"']);
    assert.match(stdout, /^job \d+\n$/);
    const baton = createBaton(await openStore(url));
    try {
      await baton.mutex('held').acquire({ ttlMs: 60_000 });
      const listed = JSON.parse((await run(process.execPath, [MAIN, '--store', url, 'ls', '--json'])).stdout) as { name: string }[];
      assert.deepEqual(listed.map((lock) => lock.name).sort(), ['held', 'job']);
      assert.match((await run(process.execPath, [MAIN, '--store', url, 'inspect', 'held'])).stdout, /held/);
      await run(process.execPath, [MAIN, '--store', url, 'release', 'held', '--force']);
      assert.equal((await baton.inspect('held')).holders.length, 0);
      await run(process.execPath, [MAIN, '--store', url, 'prune']);
      assert.deepEqual(await baton.list(), []);
    } finally {
      await baton.close();
    }
  });
});

describe('no lock outlives a statement', () => {
  it('a client SIGSTOPped in the middle of its calls blocks the lock no longer than its lease\'s TTL', async () => {
    const url = `${server.url}?schema=${fresh()}`;
    const index = new URL('../../src/index.js', import.meta.url).href;
    const urls = new URL('../../src/url.js', import.meta.url).href;
    // A client that takes and gives back the lock as fast as it can: stopped at a random moment, most likely mid-call.
    const code = `const { createBaton } = await import(${JSON.stringify(index)}); const { openStore } = await import(${JSON.stringify(urls)});
      const baton = createBaton(await openStore(${JSON.stringify(url)}));
      for (;;) { const lease = await baton.mutex('hot').acquire({ ttlMs: 1000, autoRenew: false }); process.stdout.write('.'); await lease.release(); }`;
    const other = createBaton(await openStore(url));
    try {
      for (let round = 0; round < 3; round++) {
        const child = adopt(spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] }), 'a PostgreSQL client looping on a lock');
        let cycles = 0;
        child.stdout!.on('data', (chunk: Buffer) => (cycles += chunk.length));
        try {
          await until(async () => cycles >= 20 + round * 37, 'the client took the lock 20 times');
          child.kill('SIGSTOP');
          // Nothing of the stopped client waits in a transaction on the server.
          const { rows } = await server.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'`);
          assert.equal(rows[0].n, 0, 'no connection is left inside a transaction');
          const lease = await other.mutex('hot').acquire({ ttlMs: 5000, timeoutMs: 10_000 });
          await lease.release();
        } finally {
          child.kill('SIGKILL');
        }
      }
    } finally {
      await other.close();
    }
  });

  it('a row lock held by another session is waited for only until the call\'s deadline, and the statement ends with it', async () => {
    const schema = fresh();
    const pool = server.pool({ max: 2 });
    const store = createPostgresStore(pool, { schema, notify: false });
    const key = { kind: 'mutex', name: 'busy' } as const;
    const request = { key, owner: 'a'.repeat(32), mode: 'exclusive', limit: 1, ttlMs: 5000, enqueue: false, queueTtlMs: 5000 } as const;
    await store.release(key, request.owner, storeCall(5000));
    assert.equal((await store.grant(request, storeCall(5000))).granted, true);
    assert.equal(await store.release(key, request.owner, storeCall(5000)), true);
    const blocker = new pg.Client({ connectionString: server.url });
    blocker.on('error', () => undefined);
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query(`SELECT * FROM ${schema}.baton_resource WHERE key = 'baton:mutex:busy' FOR UPDATE`);
      await assert.rejects(store.grant(request, storeCall(300)), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        assert.match(error.message, /did not finish the call in time: .*lock timeout/);
        return true;
      });
      await until(async () => (await server.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%baton_grant%' AND state = 'active' AND pid <> pg_backend_pid()`)).rows[0].n === 0, 'the grant statement ended on the server');
      await blocker.query('COMMIT');
      assert.equal((await store.grant(request, storeCall(5000))).granted, true);
    } finally {
      await blocker.end();
      await store.close();
    }
  });

  it('a stalled server fails calls by their deadline, and the pool is not left short once it answers again', async () => {
    const pool = server.pool({ max: 3 });
    const baton = createBaton(createPostgresStore(pool, { schema: fresh() }), { storeTimeoutMs: 300 });
    await (await baton.mutex('warm').acquire()).release();
    server.pause();
    try {
      for (let i = 0; i < 6; i++) await assert.rejects(baton.mutex(`stall${i}`).tryAcquire(), StoreUnavailableError);
    } finally {
      server.resume();
    }
    // Six calls gave up on a pool of three: each destroyed its connection instead of keeping it.
    const lease = await baton.mutex('after').acquire({ timeoutMs: 5000 });
    await lease.release();
    assert.ok(pool.totalCount <= 3, `the pool has ${pool.totalCount} connections`);
    await baton.close();
  });
});

describe('waiting by LISTEN/NOTIFY', () => {
  it('waiters are still served after their LISTEN connections are killed with pg_terminate_backend', async () => {
    const schema = fresh();
    const pool = server.pool({ max: 6 });
    // Without a wake-up a waiter would ask again only after a minute: only notifications serve them in time.
    const options = { queuePollMs: 60_000 };
    const holder = createBaton(createPostgresStore(pool, { schema }), options);
    const waiters: Baton[] = [0, 1, 2].map(() => createBaton(createPostgresStore(pool, { schema }), options));
    try {
      const before = await listening();
      const lease = await holder.mutex('m').acquire({ ttlMs: 60_000, autoRenew: false });
      const acquired = waiters.map(async (baton) => {
        const got = await baton.mutex('m').acquire({ ttlMs: 60_000, timeoutMs: 30_000, autoRenew: false });
        await sleep(10);
        await got.release();
      });
      await until(async () => (await holder.inspect('m')).waiters.length === 3, 'three waiters queued');
      await until(async () => (await listening()) >= before + 3, 'the waiters listen');
      const { rows } = await server.query(`SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN baton_wake_%') AS killed`);
      assert.ok((rows[0].n as number) >= 3, `killed ${rows[0].n} LISTEN connections`);
      await lease.release();
      await Promise.all(acquired);
      await until(async () => (await listening()) >= before + 3, 'the waiters listen again');
    } finally {
      await Promise.all([holder, ...waiters].map((baton) => baton.close()));
    }
  });

  it('connections the store owns never crash the process when their sockets die: a server restart and terminated backends', async () => {
    const unhandled: unknown[] = [];
    const onError = (error: unknown): void => void unhandled.push(error);
    process.on('uncaughtException', onError);
    process.on('unhandledRejection', onError);
    const url = `${server.url}?schema=${fresh()}`;
    const a = createBaton(await openStore(url), { queuePollMs: 200 });
    const b = createBaton(await openStore(url), { queuePollMs: 200 });
    try {
      // b waits, so that it has its LISTEN connection and pooled connections exist on both.
      const held = await a.mutex('x').acquire({ ttlMs: 2000 });
      const waiting = b.mutex('x').acquire({ ttlMs: 2000, timeoutMs: 20_000 });
      await until(async () => (await a.inspect('x')).waiters.length === 1, 'b waits');
      await server.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`);
      await held.release();
      await (await waiting).release();
      await server.restart();
      await sleep(200);
      const again = await b.mutex('x').acquire({ ttlMs: 2000, timeoutMs: 10_000 });
      await again.release();
      assert.deepEqual(unhandled, []);
    } finally {
      await Promise.all([a.close(), b.close()]);
      process.off('uncaughtException', onError);
      process.off('unhandledRejection', onError);
    }
  });
});

describe('the schema', () => {
  it('is made once when many stores start on it at once', async () => {
    const schema = fresh();
    const stores = Array.from({ length: 8 }, () => createPostgresStore(server.pool({ max: 1 }), { schema, notify: false }));
    await Promise.all(stores.map((store) => store.open()));
    const { rows } = await server.query(`SELECT version FROM ${schema}.baton_meta`);
    assert.deepEqual(rows, [{ version: 1 }]);
    await Promise.all(stores.map((store) => store.close()));
  });

  it('is shipped as docs/postgres-schema.sql, the migration as the store applies it', () => {
    assert.equal(readFileSync(resolve('docs/postgres-schema.sql'), 'utf8'), schemaSql('baton'));
  });

  it('a user who may not make it gets a clear error; once applied by its owner, with rights on its tables, that user locks', async () => {
    const schema = fresh();
    await server.query(`DO $$ BEGIN CREATE ROLE baton_app LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$`);
    const pool = server.pool({ connectionString: server.url.replace('postgres@', 'baton_app@'), max: 2 });
    const store = createPostgresStore(pool, { schema, notify: false });
    await assert.rejects(store.open(), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(error.message, new RegExp(`cannot make its schema "${schema}": permission denied .*docs/postgres-schema\\.sql`));
      return true;
    });
    await server.query(schemaSql(schema));
    await server.query(`GRANT USAGE ON SCHEMA ${schema} TO baton_app; GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO baton_app`);
    const baton = createBaton(store);
    const lease = await baton.mutex('app').acquire({ ttlMs: 5000 });
    assert.equal(lease.token, 1n);
    await baton.close();
  });
});
