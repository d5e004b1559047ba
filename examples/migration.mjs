// A migration lock: every instance of an app migrates its database on start-up. They all
// wait for one lock (`acquire` with `timeoutMs`): the first runs the migration, the others
// get the lock after it and find the schema up to date.
//
// The database checks fencing tokens: every read and write carries the lease's token, and it
// refuses any token lower than the highest it has seen. A holder that was paused past its
// TTL and wakes up late cannot write over the work of the holders after it.
//
// The "database" here is a small JSON file; with SQL it is one guard in the statement, see
// docs/fencing.md. The lock file is BATON_EXAMPLE_DB (default .baton/example.db).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const lockFile = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const dir = mkdtempSync(join(tmpdir(), 'migration-example-'));
const database = openDatabase(join(dir, 'app-db.json'), { schema: 1, users: [{ name: 'ada' }, { name: 'linus' }] });

// What each instance runs when it starts: migrate to schema 2 (every user gets an email).
async function startInstance(id) {
  const baton = createBaton(createSqliteStore({ path: lockFile }));
  try {
    const lease = await baton.mutex('migrate:app-db').acquire({ ttlMs: 30_000, timeoutMs: 15_000, autoRenew: true });
    try {
      const data = database.read(lease.token);
      if (data.schema >= 2) {
        console.log(`instance ${id}: token ${lease.token}, schema is already 2, nothing to do`);
        return { id, token: lease.token, migrated: false };
      }
      console.log(`instance ${id}: token ${lease.token}, migrating schema 1 to 2`);
      await sleep(200); // a slow migration
      database.write(lease.token, {
        schema: 2,
        users: data.users.map((user) => ({ ...user, email: `${user.name}@example.com` })),
      });
      return { id, token: lease.token, migrated: true };
    } finally {
      await lease.release();
    }
  } finally {
    await baton.close();
  }
}

try {
  // Three instances start at once, each with its own baton (as separate processes would).
  const results = await Promise.all([1, 2, 3].map(startInstance));
  const migrated = results.filter((r) => r.migrated);
  assert.equal(migrated.length, 1, 'exactly one instance runs the migration');
  assert.equal(database.peek().schema, 2);

  // A holder that lost its lock without knowing (paused past its TTL) wakes up and writes with
  // its old token: the database has seen higher tokens since, and refuses it.
  const oldest = results.reduce((a, b) => (a.token < b.token ? a : b));
  assert.throws(() => database.write(oldest.token, { schema: 1, users: [] }), /refused/);
  console.log(`a late write with instance ${oldest.id}'s token ${oldest.token} was refused`);
  console.log(`migrated once, by instance ${migrated[0].id}; the database's fence is ${database.peek().fence}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

// openDatabase: a JSON file that keeps the highest token it was accessed with (`fence`) and
// refuses reads and writes with a lower one. Tokens are bigints: kept as strings in JSON.
function openDatabase(file, initial) {
  writeFileSync(file, JSON.stringify({ ...initial, fence: '0' }));
  const load = () => JSON.parse(readFileSync(file, 'utf8'));
  const save = (data) => {
    writeFileSync(`${file}.tmp`, JSON.stringify(data));
    renameSync(`${file}.tmp`, file); // all or nothing
  };
  const claim = (data, token) => {
    if (token < BigInt(data.fence)) throw new Error(`refused: token ${token} is lower than ${data.fence}, a newer holder has been here`);
    return { ...data, fence: String(token) };
  };
  return {
    // Reading raises the fence too: a later write from an older holder must not land on what this reader saw.
    read(token) {
      const claimed = claim(load(), token);
      save(claimed);
      return claimed;
    },
    write(token, change) {
      save({ ...claim(load(), token), ...change });
    },
    // What an admin sees, unfenced.
    peek: load,
  };
}
