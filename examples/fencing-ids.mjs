// Fencing tokens as a sequence: every grant of a lock gets a token higher than every grant
// before it, across processes and restarts (SQLite keeps the counter in its file). So the
// token of the lock "invoice-numbers" can number invoices: unique, and in the order the
// invoices were booked. Not gapless: a store may skip numbers (Redis starts at its clock in
// microseconds, etcd uses its revision), so use it for order and uniqueness, not for counting.
//
// Here 3 workers (each with its own baton instance, as separate processes would have) book
// 4 invoices each, all at once; then a new instance, as after a restart, books one more.
// The lock file is BATON_EXAMPLE_DB (default .baton/example.db).
import assert from 'node:assert/strict';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const lockFile = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const ledger = []; // the books: invoices in the order they were booked

// Book an invoice while holding the lock: its number is the lease's token.
const book = (baton, customer) => baton.withLock('invoice-numbers', (lease) => {
  ledger.push({ number: lease.token, customer });
}, { ttlMs: 10_000, timeoutMs: 15_000 });

const workers = ['acme', 'globex', 'initech'].map((customer) => ({ customer, baton: createBaton(createSqliteStore({ path: lockFile })) }));
await Promise.all(workers.map(async ({ customer, baton }) => {
  for (let i = 0; i < 4; i++) await book(baton, customer);
  await baton.close();
}));

// A restart: a new instance continues the sequence.
const restarted = createBaton(createSqliteStore({ path: lockFile }));
await book(restarted, 'umbrella');
await restarted.close();

for (const { number, customer } of ledger) console.log(`invoice ${number}: ${customer}`);
const increasing = ledger.every((invoice, i) => i === 0 || invoice.number > ledger[i - 1].number);
console.log(`${ledger.length} invoices, each number higher than the one booked before: ${increasing ? 'yes' : 'NO'}`);
assert.ok(increasing, 'tokens strictly increase in the order of the grants');
assert.equal(ledger.length, 13);
