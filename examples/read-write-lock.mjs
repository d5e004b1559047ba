// A read-write lock in front of a catalogue file: many readers at once, one writer alone.
// Readers that come after a waiting writer wait for it (the writer is not starved), and a
// writer can downgrade to a reader without letting another writer in between. The lock
// file is BATON_EXAMPLE_DB (default .baton/example.db).
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton, LockUpgradeError } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const baton = createBaton(createSqliteStore({ path: process.env.BATON_EXAMPLE_DB ?? '.baton/example.db' }));
const events = [];
const log = (text) => {
  events.push(text);
  console.log(text);
};

// Two readers share the lock.
const r1 = await baton.rwlock('catalogue').read({ ttlMs: 10_000 });
const r2 = await baton.rwlock('catalogue').read({ ttlMs: 10_000 });
log(`2 readers hold "catalogue" at once (tokens ${r1.token} and ${r2.token})`);

// A writer queues behind them; a reader that comes after the writer waits for it.
const writer = baton.rwlock('catalogue').write({ ttlMs: 10_000 }).then((lease) => (log(`writer holds it alone (token ${lease.token})`), lease));
await sleep(50);
const lateReader = baton.rwlock('catalogue').read({ ttlMs: 10_000 }).then((lease) => (log(`late reader holds it after the writer (token ${lease.token})`), lease));
await sleep(50);
log('readers release');
await r1.release();
await r2.release();
const w = await writer;
await sleep(50);
log('writer releases');
await w.release();
await (await lateReader).release();

// Upgrade is refused at once: the write lock would wait for this handle's own reader forever.
const rw = baton.rwlock('catalogue');
const mine = await rw.read({ ttlMs: 10_000 });
try {
  await rw.write();
} catch (error) {
  if (error instanceof LockUpgradeError) log(`upgrade refused: ${error.code}`);
}
await mine.release();

// Downgrade: write the catalogue, then keep reading it with no writer in between.
const handle = baton.rwlock('catalogue');
const lease = await handle.write({ ttlMs: 10_000 });
log(`writing with token ${lease.token}`);
await handle.downgrade(lease);
const other = await baton.rwlock('catalogue').tryRead({ ttlMs: 10_000 });
log(`downgraded: same token ${lease.token}, another reader joins: ${other !== null}, a writer gets in: ${(await baton.rwlock('catalogue').tryWrite()) !== null}`);
await other.release();
await lease.release();
await baton.close();
