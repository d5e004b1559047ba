// Money transfers between accounts, each account behind its own lock: a transfer takes the
// two accounts' locks with lockAll, which takes them in one canonical order whatever order
// it is given, so opposite transfers (a -> b and b -> a at once) never deadlock. Fifty random
// transfers run at once over five accounts; the total stays what it was. The lock file is
// BATON_EXAMPLE_DB (default .baton/example.db).
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const baton = createBaton(createSqliteStore({ path: process.env.BATON_EXAMPLE_DB ?? '.baton/example.db' }));
const balances = new Map(['ann', 'bob', 'cat', 'dan', 'eve'].map((name) => [name, 100]));
const names = [...balances.keys()];
const pick = () => names[Math.floor(Math.random() * names.length)];

async function transfer(from, to, amount) {
  // Given in either order; taken in one order. One lease for both, released together.
  const lease = await baton.lockAll([`account:${from}`, `account:${to}`], { ttlMs: 10_000, timeoutMs: 10_000 });
  try {
    const a = balances.get(from);
    await sleep(Math.random() * 3); // the read-modify-write is where a second holder would lose money
    balances.set(from, a - amount);
    balances.set(to, balances.get(to) + amount);
  } finally {
    await lease.release();
  }
}

const jobs = [];
for (let i = 0; i < 50; i++) {
  const from = pick();
  let to = pick();
  while (to === from) to = pick();
  jobs.push(transfer(from, to, 1 + Math.floor(Math.random() * 10)));
}
await Promise.all(jobs);
const total = [...balances.values()].reduce((a, b) => a + b, 0);
console.log(`50 transfers done, no deadlock; balances ${JSON.stringify(Object.fromEntries(balances))}; total ${total}`);
console.log(`lockAll order for ["b", "a", "B", "é"]: ${JSON.stringify((await baton.tryLockAll(['b', 'a', 'B', 'é'])).names)}`);
await baton.close();
if (total !== 500) process.exitCode = 1;
