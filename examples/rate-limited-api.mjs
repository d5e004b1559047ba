// A semaphore in front of a rate-limited API: a partner's API takes at most 3 calls at once
// from us, however many workers we run. Every call first takes one of the 3 permits of the
// semaphore "partner-api"; the others wait in line until a permit is released.
//
// Here 3 workers (each with its own baton instance, as separate processes would have) send
// 8 calls each, all at once. The fake API counts the calls in flight and fails any call past
// its limit, as a real one would answer 429. The lock file is BATON_EXAMPLE_DB (default
// .baton/example.db).
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const lockFile = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const PERMITS = 3;

// The partner's API, with its limit.
let inFlight = 0;
let maxInFlight = 0;
async function callPartnerApi(request) {
  inFlight++;
  maxInFlight = Math.max(maxInFlight, inFlight);
  try {
    if (inFlight > PERMITS) throw new Error(`429 Too Many Requests: ${inFlight} calls at once`);
    await sleep(20 + (request % 4) * 10);
    return `response ${request}`;
  } finally {
    inFlight--;
  }
}

async function worker(id, requests) {
  const baton = createBaton(createSqliteStore({ path: lockFile }));
  // Every user of the semaphore passes the same `permits`.
  const api = baton.semaphore('partner-api', { permits: PERMITS });
  try {
    return await Promise.all(requests.map((request) =>
      api.withLock(() => callPartnerApi(request), { ttlMs: 10_000, timeoutMs: 15_000 })));
  } finally {
    await baton.close();
  }
}

const results = await Promise.all([0, 1, 2].map((id) => worker(id, Array.from({ length: 8 }, (_, i) => id * 8 + i))));
const calls = results.flat();
console.log(`${calls.length} calls answered; at most ${maxInFlight} in flight at once (limit ${PERMITS})`);
assert.equal(calls.length, 24);
assert.ok(maxInFlight <= PERMITS, `never more than ${PERMITS} calls at once`);
