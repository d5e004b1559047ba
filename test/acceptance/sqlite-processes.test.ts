/**
 * Acceptance on the embedded default, with real processes and real signals: counting under
 * contention, a holder SIGKILLed, a holder SIGSTOPped past its TTL, and a process SIGKILLed
 * in the middle of a SQLite transaction. Times come from the host's monotonic clock, which
 * every process shares.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError, createBaton, monotonicNow } from '../../src/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { checkPausedHolder } from '../helpers/paused-holder.js';
import { Fixture } from '../helpers/process.js';

const require = createRequire(import.meta.url);

describe('SQLite store across processes', () => {
  let dir: string;
  const running: Fixture[] = [];
  const spawnFixture = (script: string, args: string[]): Fixture => {
    const fixture = new Fixture(script, args);
    running.push(fixture);
    return fixture;
  };

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'baton-accept-'));
  });
  after(() => {
    for (const fixture of running) fixture.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('8 processes add 1 to a counter 200 times each: it ends at exactly 1600, every write with a higher token', async () => {
    const db = join(dir, 'count.db');
    const counter = join(dir, 'counter.json');
    const log = join(dir, 'tokens.log');
    writeFileSync(counter, JSON.stringify({ count: 0, token: '0' }));
    writeFileSync(log, '');
    const workers = Array.from({ length: 8 }, () => spawnFixture('counter-worker.js', [db, counter, log, '200']));
    const exits = await Promise.all(workers.map((worker) => worker.exited));
    for (const [i, exit] of exits.entries()) assert.equal(exit.code, 0, `worker ${i} exited ${JSON.stringify(exit)}: ${workers[i]!.stderr}`);
    const violations = workers.map((worker) => worker.events.at(-1)?.violations);
    assert.deepEqual(violations, [0, 0, 0, 0, 0, 0, 0, 0]);
    assert.equal(JSON.parse(readFileSync(counter, 'utf8')).count, 1600);
    const tokens = readFileSync(log, 'utf8').trim().split('\n').map(BigInt);
    assert.equal(tokens.length, 1600);
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `write ${i} carried token ${tokens[i]} after ${tokens[i - 1]}`);
  });

  it('a SIGKILLed holder: the waiter gets the lock within TTL + 200 ms, never before one TTL after the last renewal', async (t) => {
    const ttl = 1000;
    const db = join(dir, 'kill.db');
    const register = join(dir, 'kill-register.db');
    const holder = spawnFixture('holder.js', [db, register, 'job', String(ttl), '60000']);
    await holder.waitFor((e) => e.e === 'renew-end');
    const waiter = spawnFixture('holder.js', [db, register, 'job', String(ttl), '100']);
    // Kill once the waiter is queued, right after a renewal landed.
    const baton = createBaton(createSqliteStore({ path: db }));
    while ((await baton.inspect('job')).waiters.length < 1) await new Promise((r) => setTimeout(r, 10));
    await holder.next('renew-end');
    holder.kill('SIGKILL');
    const killedAt = monotonicNow();
    await holder.exited;
    const acquired = await waiter.waitFor((e) => e.e === 'acquired');
    // The store last extended the lease at the earliest when the last completed renewal began.
    const ends = holder.events.filter((e) => e.e === 'renew-end');
    const lastEnd = ends.at(-1)!;
    const lastStart = holder.events.filter((e) => e.e === 'renew-start' && e.at <= lastEnd.at).at(-1)!;
    t.diagnostic(`TTL ${ttl} ms; re-acquired ${(acquired.at - lastStart.at).toFixed(1)} ms after the last renewal began, ${(acquired.at - killedAt).toFixed(1)} ms after the kill`);
    assert.ok(acquired.at - lastStart.at >= ttl, `waiter got the lock ${(acquired.at - lastStart.at).toFixed(1)} ms after the last renewal began, before the TTL of ${ttl} ms`);
    assert.ok(acquired.at - killedAt <= ttl + 200, `waiter got the lock ${(acquired.at - killedAt).toFixed(1)} ms after the kill`);
    const holderToken = BigInt(holder.events.find((e) => e.e === 'acquired')!.token as string);
    assert.ok(BigInt(acquired.token as string) > holderToken);
    await baton.close();
    assert.equal((await waiter.exited).code, 0, waiter.stderr);
  });

  it('a holder SIGSTOPped past its TTL: its signal aborts before its next write, its stale write is refused, its late release frees nothing', async () => {
    const db = join(dir, 'pause.db');
    await checkPausedHolder({ url: db, dir, ttlMs: 1000, spawn: spawnFixture, open: async () => createBaton(createSqliteStore({ path: db })) });
  });

  it('a process SIGKILLed inside a SQLite transaction leaves nothing behind; while it hung, others got StoreUnavailableError after busyTimeoutMs', async () => {
    const path = join(dir, 'tx.db');
    const baton = createBaton(createSqliteStore({ path, busyTimeoutMs: 300 }));
    const first = await baton.mutex('tx').acquire({ ttlMs: 5000 });
    await first.release();
    // A process takes the write lock, half-does a grant (bumps the fence, adds a holder), then hangs.
    const script = `
      const Database = require(${JSON.stringify(require.resolve('better-sqlite3'))});
      const db = new Database(${JSON.stringify(path)});
      db.exec('BEGIN IMMEDIATE');
      db.exec("UPDATE baton_resource SET fence = fence + 1000");
      db.exec("INSERT INTO baton_entry VALUES ('baton:mutex:tx', 'ghost', 99, 'exclusive', 1, 1, 999, 60000, 1e15, NULL, NULL)");
      process.stdout.write('in-transaction\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    await assert.rejects(baton.mutex('tx').tryAcquire(), (error: unknown) => error instanceof StoreUnavailableError && /locked/.test(error.message));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    const lease = await baton.mutex('tx').acquire({ ttlMs: 5000, timeoutMs: 2000 });
    assert.equal(lease.token, first.token + 1n, 'the unfinished transaction left no trace on the fence');
    assert.deepEqual((await baton.inspect('tx')).holders.map((h) => h.owner), [lease.owner]);
    await baton.close();
  });
});
