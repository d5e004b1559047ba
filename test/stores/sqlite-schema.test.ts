/**
 * The SQLite store's file across versions of its schema: a file made by schema 1 (before
 * `prune` and its floor) opens, keeps its tokens, and prunes without a token going back.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import Database from 'better-sqlite3';
import { createBaton } from '../../src/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { SCHEMA_VERSION } from '../../src/stores/sqlite/schema.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-sqlite-schema-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Schema 1 as it was written to files: the resource and entry tables, no floor. */
const SCHEMA_1 = `
CREATE TABLE baton_resource (key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, fence INTEGER NOT NULL, next_seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE baton_entry (key TEXT NOT NULL, owner TEXT NOT NULL, seq INTEGER NOT NULL, mode TEXT NOT NULL, lim INTEGER NOT NULL, held INTEGER NOT NULL, token INTEGER,
  ttl_ms INTEGER NOT NULL, expires_at REAL NOT NULL, value TEXT, wake_port INTEGER, PRIMARY KEY (key, owner)) WITHOUT ROWID;
CREATE INDEX baton_entry_by_seq ON baton_entry (key, seq);
PRAGMA user_version = 1;
`;

it('a file of schema 1 is brought to the current schema: its tokens go on from where they were, and a prune never lowers one', async () => {
  const path = join(dir, 'v1.db');
  const old = new Database(path);
  old.pragma('journal_mode = WAL');
  old.exec(SCHEMA_1);
  old.prepare(`INSERT INTO baton_resource (key, kind, name, fence, next_seq) VALUES ('baton:mutex:nightly', 'mutex', 'nightly', 41, 7)`).run();
  old.close();

  const baton = createBaton(createSqliteStore({ path }));
  try {
    const lease = await baton.mutex('nightly').acquire({ ttlMs: 5000 });
    assert.equal(lease.token, 42n);
    await lease.release();
    assert.equal(await baton.prune(), 1);
    assert.deepEqual(await baton.list(), []);
    // Another name first used after the prune starts above the pruned fence too.
    assert.equal((await baton.mutex('fresh').acquire({ ttlMs: 5000 })).token, 43n);
    assert.equal((await baton.mutex('nightly').acquire({ ttlMs: 5000 })).token, 43n);
  } finally {
    await baton.close();
  }
  const reopened = new Database(path, { readonly: true });
  try {
    assert.equal(reopened.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    assert.deepEqual(reopened.prepare('SELECT id, fence FROM baton_floor').all(), [{ id: 0, fence: 42 }]);
  } finally {
    reopened.close();
  }
});
