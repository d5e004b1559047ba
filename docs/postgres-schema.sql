-- baton's PostgreSQL schema, version 1, in schema "baton": what the store makes on
-- first use. To apply it yourself (the store's user then needs no CREATE right, only USAGE
-- on the schema and SELECT, INSERT, UPDATE, DELETE on its tables):
--   psql --single-transaction -v ON_ERROR_STOP=1 -f postgres-schema.sql
-- Another schema: replace "baton" throughout. Applying it again changes nothing.
-- Serializes concurrent migrations of any schema (one fixed key; taken only here, released at COMMIT).
SELECT pg_advisory_xact_lock(7478131860471009);
CREATE SCHEMA IF NOT EXISTS "baton";

CREATE TABLE IF NOT EXISTS "baton".baton_meta (
  id      int PRIMARY KEY CHECK (id = 0),
  version int NOT NULL
);

-- One row per lock used and not pruned since. The fence only grows: a token is never issued
-- twice, also across releases, expiries, forced releases, server restarts and prunes.
CREATE TABLE IF NOT EXISTS "baton".baton_resource (
  key      text COLLATE "C" PRIMARY KEY,  -- prefix:kind:name
  kind     text NOT NULL,
  name     text NOT NULL,
  fence    bigint NOT NULL,               -- last token issued
  next_seq bigint NOT NULL                -- arrival counter of entries
);

-- One row per holder or queued waiter.
CREATE TABLE IF NOT EXISTS "baton".baton_entry (
  key        text COLLATE "C" NOT NULL,
  owner      text NOT NULL,               -- 128-bit random id, hex
  seq        bigint NOT NULL,             -- arrival order within key
  mode       text NOT NULL,               -- 'exclusive' | 'shared'
  lim        int NOT NULL,                -- most holders at once, as the entry asked
  held       boolean NOT NULL,
  token      bigint,                      -- fencing token when held
  ttl_ms     bigint NOT NULL,
  expires_at double precision NOT NULL,   -- ms since the epoch, server clock
  value      text,
  wake       text,                        -- LISTEN channel of the waiter's store, NULL: it polls
  PRIMARY KEY (key, owner)
);
CREATE INDEX IF NOT EXISTS baton_entry_by_seq ON "baton".baton_entry (key, seq);

-- The highest fence of a pruned resource (one row, id 0): a new resource's first token is
-- above it, so a name used again after a prune never issues a token it issued before.
CREATE TABLE IF NOT EXISTS "baton".baton_floor (
  id    int PRIMARY KEY CHECK (id = 0),
  fence bigint NOT NULL
);

-- The server's clock in ms since the epoch.
CREATE OR REPLACE FUNCTION "baton".baton_now() RETURNS double precision
LANGUAGE sql VOLATILE AS $f$ SELECT (extract(epoch FROM clock_timestamp()) * 1000)::double precision $f$;

-- canHold of core/queue.ts: may an entry hold with n live entries ahead of it, excl true when
-- one of them is exclusive?
CREATE OR REPLACE FUNCTION "baton".baton_can_hold(mode text, lim int, n int, excl boolean) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $f$ SELECT CASE WHEN n >= lim THEN false WHEN mode = 'exclusive' THEN n = 0 ELSE NOT excl END $f$;

-- Locks a resource's row for the rest of the call, bounded by wait_ms (lock_timeout, local to
-- the call's transaction). With create, makes the row on first use; answers whether it exists.
CREATE OR REPLACE FUNCTION "baton".baton_lock(p_key text, p_kind text, p_name text, p_create boolean, p_wait_ms int) RETURNS boolean
LANGUAGE plpgsql AS $f$
BEGIN
  PERFORM set_config('lock_timeout', greatest(p_wait_ms, 1)::text, true);
  LOOP
    PERFORM 1 FROM "baton".baton_resource WHERE key = p_key FOR UPDATE;
    IF FOUND THEN RETURN true; END IF;
    IF NOT p_create THEN RETURN false; END IF;
    -- fence 0: the first token is taken above the floor (read after this row exists, so
    -- after any prune of the name's previous row committed).
    INSERT INTO "baton".baton_resource (key, kind, name, fence, next_seq) VALUES (p_key, p_kind, p_name, 0, 0) ON CONFLICT (key) DO NOTHING;
  END LOOP;
END $f$;

-- grantable of core/queue.ts: notifies the queued entries (other than p_except) that may hold
-- now, each on its store's channel with its owner as payload. Sent when the call commits.
CREATE OR REPLACE FUNCTION "baton".baton_wake(p_key text, p_except text, p_now double precision) RETURNS void
LANGUAGE plpgsql AS $f$
DECLARE
  e record;
  n int := 0;
  excl boolean := false;
BEGIN
  FOR e IN SELECT owner, mode, lim, held, wake FROM "baton".baton_entry WHERE key = p_key AND expires_at > p_now ORDER BY seq LOOP
    -- Behind an exclusive entry nobody may hold.
    EXIT WHEN excl;
    IF NOT e.held AND e.wake IS NOT NULL AND e.owner IS DISTINCT FROM p_except AND "baton".baton_can_hold(e.mode, e.lim, n, excl) THEN
      PERFORM pg_notify(e.wake, e.owner);
    END IF;
    n := n + 1;
    excl := e.mode = 'exclusive';
  END LOOP;
END $f$;

-- grant: make p_owner a holder of p_key, or keep (or make) its place in the queue.
-- in:  key, kind, name, owner, mode, limit, ttl ms, enqueue, queue ttl ms, value (NULL: none),
--      wake channel (NULL: the waiter polls), ms the row lock may be waited for.
-- out: one row (status, token, pos, retry_ms, lim_in_use): status 1 granted with token (text);
--      0 not granted, pos its place, retry_ms until the soonest entry ahead can expire (-1:
--      none); 2 a newcomer's limit differs from the live entries' lim_in_use (nothing written).
CREATE OR REPLACE FUNCTION "baton".baton_grant(p_key text, p_kind text, p_name text, p_owner text, p_mode text, p_lim int, p_ttl bigint, p_enqueue boolean, p_queue_ttl bigint, p_value text, p_wake text, p_wait_ms int)
RETURNS TABLE (status int, token text, pos int, retry_ms bigint, lim_in_use int)
LANGUAGE plpgsql AS $f$
DECLARE
  now_ms double precision;
  dead int;
  mine "baton".baton_entry%ROWTYPE;
  has_mine boolean;
  other int;
  n int;
  excl boolean;
  soonest double precision;
  new_fence bigint;
  new_seq bigint;
BEGIN
  PERFORM "baton".baton_lock(p_key, p_kind, p_name, true, p_wait_ms);
  now_ms := "baton".baton_now();
  DELETE FROM "baton".baton_entry e WHERE e.key = p_key AND e.expires_at <= now_ms;
  GET DIAGNOSTICS dead = ROW_COUNT;
  IF dead > 0 THEN PERFORM "baton".baton_wake(p_key, p_owner, now_ms); END IF;
  SELECT * INTO mine FROM "baton".baton_entry e WHERE e.key = p_key AND e.owner = p_owner;
  has_mine := FOUND;
  -- A holder asking again (a hand-off crossed its request) keeps its token.
  IF has_mine AND mine.held THEN
    RETURN QUERY SELECT 1, mine.token::text, 0, -1::bigint, 0;
    RETURN;
  END IF;
  IF NOT has_mine THEN
    SELECT e.lim INTO other FROM "baton".baton_entry e WHERE e.key = p_key AND e.lim <> p_lim LIMIT 1;
    IF FOUND THEN
      RETURN QUERY SELECT 2, NULL::text, 0, -1::bigint, other;
      RETURN;
    END IF;
  END IF;
  SELECT count(*)::int, coalesce(bool_or(e.mode = 'exclusive'), false), min(e.expires_at) INTO n, excl, soonest
    FROM "baton".baton_entry e WHERE e.key = p_key AND (NOT has_mine OR e.seq < mine.seq);
  IF "baton".baton_can_hold(p_mode, p_lim, n, excl) THEN
    UPDATE "baton".baton_resource r
       SET fence = greatest(r.fence, coalesce((SELECT f.fence FROM "baton".baton_floor f WHERE f.id = 0), 0)) + 1,
           next_seq = r.next_seq + CASE WHEN has_mine THEN 0 ELSE 1 END
     WHERE r.key = p_key RETURNING r.fence, r.next_seq INTO new_fence, new_seq;
    IF has_mine THEN new_seq := mine.seq; END IF;
    INSERT INTO "baton".baton_entry AS e (key, owner, seq, mode, lim, held, token, ttl_ms, expires_at, value, wake)
      VALUES (p_key, p_owner, new_seq, p_mode, p_lim, true, new_fence, p_ttl, now_ms + p_ttl, p_value, NULL)
      ON CONFLICT (key, owner) DO UPDATE SET seq = excluded.seq, mode = excluded.mode, lim = excluded.lim, held = true, token = excluded.token,
        ttl_ms = excluded.ttl_ms, expires_at = excluded.expires_at, value = excluded.value, wake = NULL;
    RETURN QUERY SELECT 1, new_fence::text, 0, -1::bigint, 0;
    RETURN;
  END IF;
  IF p_enqueue THEN
    IF has_mine THEN
      UPDATE "baton".baton_entry e SET mode = p_mode, ttl_ms = p_queue_ttl, expires_at = now_ms + p_queue_ttl, value = p_value, wake = p_wake
       WHERE e.key = p_key AND e.owner = p_owner;
    ELSE
      UPDATE "baton".baton_resource r SET next_seq = r.next_seq + 1 WHERE r.key = p_key RETURNING r.next_seq INTO new_seq;
      INSERT INTO "baton".baton_entry (key, owner, seq, mode, lim, held, token, ttl_ms, expires_at, value, wake)
        VALUES (p_key, p_owner, new_seq, p_mode, p_lim, false, NULL, p_queue_ttl, now_ms + p_queue_ttl, p_value, p_wake);
    END IF;
  END IF;
  RETURN QUERY SELECT 0, NULL::text, n, CASE WHEN soonest IS NULL THEN -1 ELSE greatest(0, ceil(soonest - now_ms)) END::bigint, 0;
END $f$;

-- extend: reset the TTL of p_owner's holding entry.
-- in:  key, owner, ttl ms, ms the row lock may be waited for.  out: true when it holds.
CREATE OR REPLACE FUNCTION "baton".baton_extend(p_key text, p_owner text, p_ttl bigint, p_wait_ms int) RETURNS boolean
LANGUAGE plpgsql AS $f$
DECLARE
  now_ms double precision;
  dead int;
BEGIN
  IF NOT "baton".baton_lock(p_key, NULL, NULL, false, p_wait_ms) THEN RETURN false; END IF;
  now_ms := "baton".baton_now();
  DELETE FROM "baton".baton_entry e WHERE e.key = p_key AND e.expires_at <= now_ms;
  GET DIAGNOSTICS dead = ROW_COUNT;
  IF dead > 0 THEN PERFORM "baton".baton_wake(p_key, p_owner, now_ms); END IF;
  UPDATE "baton".baton_entry e SET ttl_ms = p_ttl, expires_at = now_ms + p_ttl WHERE e.key = p_key AND e.owner = p_owner AND e.held;
  RETURN FOUND;
END $f$;

-- proclaim: set the value of p_owner's holding entry (a leader's).
-- in:  key, owner, value, ms the row lock may be waited for.  out: true when it holds.
CREATE OR REPLACE FUNCTION "baton".baton_proclaim(p_key text, p_owner text, p_value text, p_wait_ms int) RETURNS boolean
LANGUAGE plpgsql AS $f$
BEGIN
  IF NOT "baton".baton_lock(p_key, NULL, NULL, false, p_wait_ms) THEN RETURN false; END IF;
  UPDATE "baton".baton_entry e SET value = p_value WHERE e.key = p_key AND e.owner = p_owner AND e.held AND e.expires_at > "baton".baton_now();
  RETURN FOUND;
END $f$;

-- release: remove p_owner's entry, holding or queued, and wake the entries that may now hold.
-- in:  key, owner, ms the row lock may be waited for.  out: true when there was a live entry.
CREATE OR REPLACE FUNCTION "baton".baton_release(p_key text, p_owner text, p_wait_ms int) RETURNS boolean
LANGUAGE plpgsql AS $f$
DECLARE
  now_ms double precision;
  dead int;
  removed boolean;
BEGIN
  IF NOT "baton".baton_lock(p_key, NULL, NULL, false, p_wait_ms) THEN RETURN false; END IF;
  now_ms := "baton".baton_now();
  DELETE FROM "baton".baton_entry e WHERE e.key = p_key AND e.expires_at <= now_ms;
  GET DIAGNOSTICS dead = ROW_COUNT;
  DELETE FROM "baton".baton_entry e WHERE e.key = p_key AND e.owner = p_owner;
  removed := FOUND;
  IF removed OR dead > 0 THEN PERFORM "baton".baton_wake(p_key, p_owner, now_ms); END IF;
  RETURN removed;
END $f$;

-- force_release: remove every holder of p_key (the fence stays) and wake who may now hold.
-- in:  key, ms the row lock may be waited for.  out: how many holders were removed.
CREATE OR REPLACE FUNCTION "baton".baton_force_release(p_key text, p_wait_ms int) RETURNS int
LANGUAGE plpgsql AS $f$
DECLARE
  now_ms double precision;
  dead int;
  removed int;
BEGIN
  IF NOT "baton".baton_lock(p_key, NULL, NULL, false, p_wait_ms) THEN RETURN 0; END IF;
  now_ms := "baton".baton_now();
  DELETE FROM "baton".baton_entry e WHERE e.key = p_key AND e.expires_at <= now_ms;
  GET DIAGNOSTICS dead = ROW_COUNT;
  DELETE FROM "baton".baton_entry e WHERE e.key = p_key AND e.held;
  GET DIAGNOSTICS removed = ROW_COUNT;
  IF removed > 0 OR dead > 0 THEN PERFORM "baton".baton_wake(p_key, NULL, now_ms); END IF;
  RETURN removed;
END $f$;

-- states: a snapshot of resources without taking a lock (dead entries are left out, not deleted).
-- in:  exact key (NULL: any), key prefix (NULL: any).
-- out: per resource, in key order: key, kind, name, fence (text), entries: a JSON array in
--      arrival order of {owner, mode, held, token (text), ttl, left (ms), value}.
CREATE OR REPLACE FUNCTION "baton".baton_states(p_key text, p_prefix text)
RETURNS TABLE (key text, kind text, name text, fence text, entries json)
LANGUAGE sql VOLATILE AS $f$
  WITH c AS (SELECT "baton".baton_now() AS now_ms)
  SELECT r.key, r.kind, r.name, r.fence::text,
         coalesce((SELECT json_agg(json_build_object('owner', e.owner, 'mode', e.mode, 'held', e.held, 'token', e.token::text,
                     'ttl', e.ttl_ms, 'left', round(e.expires_at - c.now_ms), 'value', e.value) ORDER BY e.seq)
                   FROM "baton".baton_entry e WHERE e.key = r.key AND e.expires_at > c.now_ms), '[]'::json)
    FROM "baton".baton_resource r, c
   WHERE (p_key IS NULL OR r.key = p_key) AND (p_prefix IS NULL OR starts_with(r.key, p_prefix))
   ORDER BY r.key
$f$;

-- prune: remove the rows of up to p_batch resources after p_after under p_prefix that nobody
-- holds or waits for, first raising the floor to each one's fence. A resource another call
-- is writing is skipped (it is in use).
-- in:  key prefix, the last key of the previous batch ('' at first), batch size.
-- out: one row (removed, last): how many were removed, and the last key looked at (NULL: done).
CREATE OR REPLACE FUNCTION "baton".baton_prune(p_prefix text, p_after text, p_batch int)
RETURNS TABLE (removed int, last text)
LANGUAGE plpgsql AS $f$
DECLARE
  k text;
  seen int := 0;
  gone int := 0;
  f bigint;
BEGIN
  last := NULL;
  FOR k IN SELECT r.key FROM "baton".baton_resource r WHERE starts_with(r.key, p_prefix) AND r.key > p_after ORDER BY r.key LIMIT p_batch LOOP
    seen := seen + 1;
    last := k;
    SELECT r.fence INTO f FROM "baton".baton_resource r WHERE r.key = k FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    CONTINUE WHEN EXISTS (SELECT 1 FROM "baton".baton_entry e WHERE e.key = k AND e.expires_at > "baton".baton_now());
    INSERT INTO "baton".baton_floor AS fl (id, fence) VALUES (0, f) ON CONFLICT (id) DO UPDATE SET fence = greatest(fl.fence, excluded.fence);
    DELETE FROM "baton".baton_entry e WHERE e.key = k;
    DELETE FROM "baton".baton_resource r WHERE r.key = k;
    gone := gone + 1;
  END LOOP;
  IF seen < p_batch THEN last := NULL; END IF;
  RETURN QUERY SELECT gone, last;
END $f$;

INSERT INTO "baton".baton_meta AS m (id, version) VALUES (0, 1) ON CONFLICT (id) DO UPDATE SET version = greatest(m.version, excluded.version);
