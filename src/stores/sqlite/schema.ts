/**
 * The SQLite store's schema and statements. Every statement runs inside one
 * `BEGIN IMMEDIATE` transaction of the store, so the rule in core/queue.ts sees a
 * consistent resource and its writes land together or not at all (a process SIGKILLed
 * mid-transaction leaves nothing behind: WAL recovery discards the unfinished transaction).
 *
 * Time columns hold milliseconds of the host's CLOCK_MONOTONIC, the one clock that every
 * process on the host shares and that NTP cannot step.
 */

/** SCHEMA_VERSION is kept in `PRAGMA user_version`. */
export const SCHEMA_VERSION = 3;

export const SCHEMA = `
-- One row per lock used and not pruned since. The fence only grows, so a token is never issued
-- twice, also across releases, expiries, forced releases, restarts and prunes.
CREATE TABLE IF NOT EXISTS baton_resource (
  key      TEXT PRIMARY KEY,      -- prefix:kind:name
  kind     TEXT NOT NULL,
  name     TEXT NOT NULL,
  fence    INTEGER NOT NULL,      -- last token issued
  next_seq INTEGER NOT NULL       -- arrival counter for entries
) WITHOUT ROWID;

-- One row per holder or queued waiter.
CREATE TABLE IF NOT EXISTS baton_entry (
  key        TEXT NOT NULL,
  owner      TEXT NOT NULL,       -- 128-bit random id, hex
  seq        INTEGER NOT NULL,    -- arrival order within key
  mode       TEXT NOT NULL,       -- 'exclusive' | 'shared'
  lim        INTEGER NOT NULL,    -- most holders at once, as the entry asked
  held       INTEGER NOT NULL,    -- 1 holder, 0 queued
  token      INTEGER,             -- fencing token when held
  ttl_ms     INTEGER NOT NULL,
  expires_at REAL NOT NULL,       -- monotonic ms
  value      TEXT,
  wake_port  INTEGER,             -- loopback UDP port of the waiter's process
  PRIMARY KEY (key, owner)
) WITHOUT ROWID;

CREATE INDEX IF NOT EXISTS baton_entry_by_seq ON baton_entry (key, seq);

-- Version 2. The highest fence of a pruned resource (one row, id 0): a new resource's fence
-- starts there, so a name used again after a prune never issues a token it issued before.
CREATE TABLE IF NOT EXISTS baton_floor (
  id    INTEGER PRIMARY KEY CHECK (id = 0),
  fence INTEGER NOT NULL
);

-- Version 3. One row per mark (advanceMark: a scheduled job's last claimed slot and its last
-- run), apart from the resources: prune leaves it.
CREATE TABLE IF NOT EXISTS baton_mark (
  key  TEXT PRIMARY KEY,          -- prefix:kind:name
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  at   INTEGER NOT NULL,          -- the mark: only grows
  note TEXT
) WITHOUT ROWID;
`;

/** Statements, each with what goes in and what comes out. */
export const SQL = {
  /** Transaction control, prepared once. IMMEDIATE takes the write lock up front, so a transaction never fails half-way on a lock upgrade. */
  beginImmediate: `BEGIN IMMEDIATE`,
  beginDeferred: `BEGIN DEFERRED`,
  commit: `COMMIT`,
  /**
   * in: key, kind, name, tokens to issue (0 or 1), arrival numbers to take (0 or 1), and those two again.
   * out: fence (the new token when 1 was issued), next_seq (the new arrival number when 1 was taken).
   * Makes the resource row on first use, its fence starting at the floor, so a grant is this
   * statement and one insert.
   */
  bump: `INSERT INTO baton_resource (key, kind, name, fence, next_seq)
         VALUES (?, ?, ?, coalesce((SELECT fence FROM baton_floor WHERE id = 0), 0) + ?, ?)
         ON CONFLICT (key) DO UPDATE SET fence = fence + ?, next_seq = next_seq + ?
         RETURNING fence, next_seq`,
  /** in: key. out: fence, or no row for a lock never used. */
  fence: `SELECT fence FROM baton_resource WHERE key = ?`,
  /** in: key. out: every entry of the resource, in arrival order. */
  entries: `SELECT owner, seq, mode, lim, held, token, ttl_ms, expires_at, value, wake_port FROM baton_entry WHERE key = ? ORDER BY seq`,
  /** in: key, owner, seq, mode, lim, held, token, ttl_ms, expires_at, value, wake_port. out: nothing; inserts or replaces the entry. */
  upsertEntry: `INSERT OR REPLACE INTO baton_entry (key, owner, seq, mode, lim, held, token, ttl_ms, expires_at, value, wake_port)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  /** in: ttl_ms, expires_at, key, owner. out: changes = 1 if the holder was found. */
  extendEntry: `UPDATE baton_entry SET ttl_ms = ?, expires_at = ? WHERE key = ? AND owner = ? AND held = 1`,
  /** in: key, owner. out: changes = 1 if an entry was removed. */
  deleteEntry: `DELETE FROM baton_entry WHERE key = ? AND owner = ?`,
  /** in: key. out: changes = holders removed. */
  deleteHolders: `DELETE FROM baton_entry WHERE key = ? AND held = 1`,
  /**
   * in: key prefix, the first key after every key that starts with it. out: key, kind, name of
   * every resource under the prefix. A range on the key (compared as UTF-8 bytes), not a
   * pattern and not a count of characters, which SQLite and JavaScript count differently.
   */
  resources: `SELECT key, kind, name FROM baton_resource WHERE key >= ? AND key < ? ORDER BY key`,
  /** in: key prefix, the end of its range, the last key seen, how many. out: key, kind, name of the next resources under the prefix. */
  resourcesAfter: `SELECT key, kind, name FROM baton_resource WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?`,
  /** in: key. out: nothing; raises the floor to the resource's fence. */
  raiseFloor: `INSERT INTO baton_floor (id, fence) SELECT 0, fence FROM baton_resource WHERE key = ?
               ON CONFLICT (id) DO UPDATE SET fence = max(fence, excluded.fence)`,
  /** in: key. out: nothing; removes the resource's entries. */
  deleteEntries: `DELETE FROM baton_entry WHERE key = ?`,
  /** in: key. out: at, note; no row without a mark. */
  mark: `SELECT at, note FROM baton_mark WHERE key = ?`,
  /** in: key, kind, name, at, note. out: nothing; inserts or replaces the mark. */
  putMark: `INSERT OR REPLACE INTO baton_mark (key, kind, name, at, note) VALUES (?, ?, ?, ?, ?)`,
  /** in: key prefix, its length. out: key, kind, name, at, note of every mark under the prefix. */
  marks: `SELECT key, kind, name, at, note FROM baton_mark WHERE substr(key, 1, ?) = ? ORDER BY key`,
  /** in: key. out: nothing; removes the resource's row. */
  deleteResource: `DELETE FROM baton_resource WHERE key = ?`,
} as const;
