// The README's first example: a nightly job that must run on one instance at a time.
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const baton = createBaton(createSqliteStore({ path: process.env.BATON_EXAMPLE_DB ?? '.baton/example.db' }));

const ran = await baton.withLock('nightly-report', async (lease) => {
  // lease.token is a fencing token: store it with your writes and refuse older ones.
  console.log(`running with token ${lease.token}`);
  await fetchAndWrite({ signal: lease.signal }); // stop if the lock is lost
  return true;
}, { ttlMs: 30_000, timeoutMs: 10_000 });

console.log('done:', ran);
await baton.close();

async function fetchAndWrite({ signal }) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  signal.throwIfAborted();
}
