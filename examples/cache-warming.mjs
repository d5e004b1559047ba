// Cache warming without a stampede: many instances ask for the same cold key at once.
// Without a lock, each would run the expensive query. With one lock per key, the first
// computes the value and writes the cache; the others wait for the lock, then find the
// cache warm and read it. Instances that come later read the cache without taking the lock.
//
// Here 5 instances (each with its own baton instance, as separate processes would have)
// ask at once, and a sixth after them; the cache is a folder of files. The lock file is BATON_EXAMPLE_DB (default .baton/example.db).
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const lockFile = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const cacheDir = mkdtempSync(join(tmpdir(), 'cache-example-'));
let computed = 0;

// The cache: one file per key.
const cacheFile = (key) => join(cacheDir, `${encodeURIComponent(key)}.json`);
const readCache = (key) => (existsSync(cacheFile(key)) ? JSON.parse(readFileSync(cacheFile(key), 'utf8')) : undefined);
const writeCache = (key, value) => {
  writeFileSync(`${cacheFile(key)}.tmp`, JSON.stringify(value));
  renameSync(`${cacheFile(key)}.tmp`, cacheFile(key)); // readers see all of it or nothing
};

// The expensive query.
async function salesReport(month, signal) {
  computed++;
  await sleep(300, undefined, { signal });
  return { month, total: 1234.5 };
}

async function getSalesReport(baton, month, instance) {
  const key = `sales:${month}`;
  const warm = readCache(key);
  if (warm) return { instance, how: 'read the warm cache', value: warm };
  return baton.withLock(`cache:${key}`, async (lease) => {
    // Someone may have warmed it while this instance waited for the lock.
    const cached = readCache(key);
    if (cached) return { instance, how: 'waited for the lock, then read the warm cache', value: cached };
    const value = await salesReport(month, lease.signal);
    writeCache(key, value);
    return { instance, how: 'computed it', value };
  }, { ttlMs: 10_000, timeoutMs: 15_000 });
}

try {
  const start = async (instance) => {
    const baton = createBaton(createSqliteStore({ path: lockFile }));
    try {
      return await getSalesReport(baton, '2024-05', instance);
    } finally {
      await baton.close();
    }
  };
  // Five instances ask at once; a sixth asks after they are done.
  const answers = await Promise.all([1, 2, 3, 4, 5].map(start));
  answers.push(await start(6));
  for (const { instance, how } of answers) console.log(`instance ${instance}: ${how}`);
  console.log(`the report was computed ${computed === 1 ? 'once' : `${computed} times`} for ${answers.length} instances`);
  assert.equal(computed, 1, 'one instance computes, the others read the cache');
  for (const { value } of answers) assert.deepEqual(value, answers[0].value);
} finally {
  rmSync(cacheDir, { recursive: true, force: true });
}
