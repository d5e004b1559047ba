// The PostgreSQL store decides in PL/pgSQL (one round trip per verb); these tests hold its
// decisions and its wake-ups to core/queue.ts's `decide` and `grantable`, the rule every
// table store shares, over random queues written straight into its tables.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, it } from 'node:test';
import pg from 'pg';
import { decide, grantable, type QueueEntry } from '../../src/core/queue.js';
import { storeCall, type HoldMode } from '../../src/index.js';
import { createPostgresStore, type PostgresStore } from '../../src/stores/postgres/index.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';

let server: PostgresServer;
let pool: pg.Pool;
let store: PostgresStore;
const schema = `rule${randomBytes(3).toString('hex')}`;
before(async () => {
  server = await startPostgres();
  pool = server.pool({ max: 2 });
  store = createPostgresStore(pool, { schema, notify: false });
  await store.open();
});
after(async () => {
  await store?.close();
  await server?.stop();
});

/** A seeded generator, so that a failing case can be run again. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

interface Row extends QueueEntry {
  readonly dead: boolean;
}

/** A random queue of a resource: up to 6 entries, some dead, holders first as a real queue would have them (not required by the rule). */
function queue(next: () => number, limit: number): Row[] {
  const rows: Row[] = [];
  const count = Math.floor(next() * 7);
  for (let i = 0; i < count; i++) {
    const held = next() < 0.4;
    rows.push({
      owner: `o${i}`, seq: i + 1, mode: next() < 0.5 ? 'shared' : 'exclusive', limit: next() < 0.1 ? limit + 1 : limit,
      held, token: held ? BigInt(100 + i) : null, ttlMs: 60_000, expiresAt: 0, dead: next() < 0.2,
    });
  }
  return rows;
}

async function write(key: string, rows: readonly Row[], wake: string | null): Promise<void> {
  await pool.query(`INSERT INTO ${schema}.baton_resource (key, kind, name, fence, next_seq) VALUES ($1, 'rwlock', $1, 1000, $2)`, [key, rows.length]);
  for (const r of rows) {
    await pool.query(
      `INSERT INTO ${schema}.baton_entry (key, owner, seq, mode, lim, held, token, ttl_ms, expires_at, value, wake)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 60000, ${schema}.baton_now() + $8, NULL, $9)`,
      [key, r.owner, r.seq, r.mode, r.limit, r.held, r.token, r.dead ? -1000 : 60_000, wake],
    );
  }
}

it('grant decides as core/queue.ts decide does, on 300 random queues', async () => {
  const next = random(13);
  for (let n = 0; n < 300; n++) {
    const name = `g${n}`;
    const key = `baton:rwlock:${name}`;
    const limit = 1 + Math.floor(next() * 3);
    const rows = queue(next, limit);
    await write(key, rows, null);
    const live = rows.filter((r) => !r.dead);
    const queued = live.filter((r) => !r.held);
    // The requester: a newcomer, or one of the queued entries asking again.
    const mine = queued.length > 0 && next() < 0.5 ? queued[Math.floor(next() * queued.length)]! : undefined;
    const mode: HoldMode = mine?.mode ?? (next() < 0.5 ? 'shared' : 'exclusive');
    const request = { key: { kind: 'rwlock' as const, name }, owner: mine?.owner ?? 'new', mode, limit: mine?.limit ?? (next() < 0.15 ? limit + 1 : limit), ttlMs: 5000, enqueue: next() < 0.5, queueTtlMs: 5000 };
    const expected = decide(live, request, mine, 0);
    const got = await store.grant(request, storeCall(5000));
    const what = `case ${n}: ${JSON.stringify({ rows: rows.map((r) => [r.owner, r.mode, r.limit, r.held, r.dead]), request: [request.owner, mode, request.limit] })}`;
    if (expected.limitInUse !== undefined) {
      assert.ok(!got.granted && got.limitInUse !== undefined, `${what}: limit in use expected, got ${JSON.stringify(got, (_, v) => (typeof v === 'bigint' ? String(v) : v))}`);
      assert.ok(live.some((r) => r.limit === got.limitInUse), what);
    } else if (expected.grant) {
      assert.equal(got.granted, true, what);
      if (got.granted) assert.equal(got.token, 1001n, `${what}: the fence grows by one`);
    } else {
      assert.equal(got.granted, false, what);
      if (!got.granted) {
        assert.equal(got.limitInUse, undefined, what);
        assert.equal(got.position, expected.position, what);
      }
    }
  }
});

it('a release wakes exactly the entries core/queue.ts grantable lists, each on its channel, on 150 random queues', async () => {
  const next = random(7);
  const listener = new pg.Client({ connectionString: server.url });
  listener.on('error', () => undefined);
  await listener.connect();
  const channel = `rule_${randomBytes(4).toString('hex')}`;
  const heard: string[] = [];
  let marker: (() => void) | null = null;
  listener.on('notification', (message) => {
    if (message.payload === 'end') marker?.();
    else heard.push(message.payload!);
  });
  await listener.query(`LISTEN ${channel}`);
  try {
    for (let n = 0; n < 150; n++) {
      const name = `w${n}`;
      const key = `baton:rwlock:${name}`;
      const rows = queue(next, 1 + Math.floor(next() * 3));
      await write(key, rows, channel);
      const live = rows.filter((r) => !r.dead);
      const leaving = live.length > 0 && next() < 0.8 ? live[Math.floor(next() * live.length)]! : undefined;
      heard.length = 0;
      const ended = new Promise<void>((resolve) => (marker = resolve));
      await store.release({ kind: 'rwlock', name }, leaving?.owner ?? 'nobody', storeCall(5000));
      await pool.query(`SELECT pg_notify($1, 'end')`, [channel]);
      await ended;
      const changed = leaving !== undefined || rows.some((r) => r.dead);
      const expected = changed ? grantable(live.filter((r) => r !== leaving)).map((e) => e.owner) : [];
      assert.deepEqual(heard, expected, `case ${n}: ${JSON.stringify({ rows: rows.map((r) => [r.owner, r.mode, r.limit, r.held, r.dead]), leaving: leaving?.owner })}`);
    }
  } finally {
    await listener.end();
  }
});
