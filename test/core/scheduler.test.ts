/**
 * Scheduled jobs on the memory store, in one process: slots run once across instances whose
 * clocks differ, the record of the last run, lockAtLeastFor, catchUp and stop. The same with
 * real processes on every store: test/acceptance/schedule-*.test.ts.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { InvalidArgumentError, UnsupportedError, createBaton, type Baton } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { sharedView } from '../contract/suite.js';
import { wrapStore } from '../helpers/wrap-store.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** A job's timers are unref'd, as they are for users: the test keeps its own process alive while it waits. */
let hold: NodeJS.Timeout;
beforeEach(() => {
  hold = setInterval(() => undefined, 1000);
});
afterEach(() => clearInterval(hold));

describe('baton.schedule', () => {
  it('runs each slot once across 3 instances whose clocks are 2 s apart', async () => {
    const store = createMemoryStore();
    const batons = [-2000, 0, 2000].map(() => createBaton(sharedView(store)));
    const runs: { slot: number; by: number }[] = [];
    const jobs = batons.map((baton, i) => baton.schedule('tick', 1000, async ({ slot }) => {
      runs.push({ slot: slot.getTime(), by: i });
      await sleep(50);
    }, { now: () => Date.now() + [-2000, 0, 2000][i]!, lockAtMostForMs: 2000 }));
    const started = Date.now();
    await sleep(5500);
    await Promise.all(jobs.map((job) => job.stop()));
    // Every slot the earliest clock (+2 s) passed while the jobs ran, but the last, once each.
    const first = Math.floor((started + 2000) / 1000) * 1000 + 1000;
    const last = Math.floor((Date.now() + 2000) / 1000) * 1000 - 1000;
    const slots = runs.map((r) => r.slot).filter((slot) => slot >= first && slot <= last);
    assert.ok(slots.length >= 2, `${slots.length} slots in the window`);
    assert.deepEqual(slots, [...new Set(slots)].sort((a, b) => a - b), `each slot once, in order: ${JSON.stringify(runs)}`);
    for (let slot = first; slot <= last; slot += 1000) assert.ok(slots.includes(slot), `slot ${slot} ran: ${JSON.stringify({ started, first, last, runs })}`);
    assert.equal(new Set(runs.map((r) => r.slot)).size, runs.length, 'no slot ran twice');
    await Promise.all(batons.map((b) => b.close()));
  });

  it('keeps a record of the last run: who, when, how long, how it ended; lockAtLeastFor holds the lock on', async () => {
    const baton = createBaton(createMemoryStore(), { holder: { host: 'h1', pid: 7 } });
    let fail = false;
    const job = baton.schedule('report', 1000, async () => {
      await sleep(20);
      if (fail) throw new Error('disk full');
    }, { lockAtLeastForMs: 600, lockAtMostForMs: 5000, label: 'nightly' });
    const done = await new Promise<{ slot: Date }>((resolve) => job.once('done', resolve));
    const record = await job.lastRun();
    assert.ok(record);
    assert.equal(record.slot, done.slot.getTime());
    assert.equal(record.outcome, 'ok');
    assert.match(record.by, /"host":"h1","pid":7.*"label":"nightly"/);
    assert.ok(record.durationMs! >= 15 && record.durationMs! < 1000, `took ${record.durationMs} ms`);
    // lockAtLeastFor: the lock is still held after the short run.
    assert.equal((await baton.inspect('report')).holders.length, 1, 'held for at least 600 ms after the start');
    fail = true;
    const failed = await new Promise<{ record: { outcome: string; error?: string } }>((resolve) => job.once('done', resolve));
    assert.deepEqual([failed.record.outcome, failed.record.error], ['error', 'disk full']);
    assert.deepEqual((await baton.jobs()).map((j) => [j.name, j.record.outcome]), [['report', 'error']]);
    await job.stop();
    assert.equal((await baton.inspect('report')).holders.length, 0, 'stop cut the lockAtLeastFor hold short and released');
    assert.equal(job.nextSlot, null);
    await baton.close();
  });

  it('catchUp: latest runs the latest missed slot at start, once; none waits for the next slot; an old slot is not run for a short duration', async () => {
    const store = createMemoryStore();
    const period = 60_000;
    // Every instance was down at the last slot: the mark is two slots back.
    const now = Date.now();
    const latest = Math.floor(now / period) * period;
    await store.advanceMark({ kind: 'mutex', name: 'catch' }, { to: latest - 2 * period }, { signal: new AbortController().signal, deadline: Infinity });
    const ran: number[] = [];
    const a = createBaton(sharedView(store));
    const none = a.schedule('catch', period, ({ slot }) => void ran.push(slot.getTime()), { catchUp: 'none' });
    await sleep(100);
    assert.equal(ran.length, 0, 'none: nothing at start');
    await none.stop();
    const short = a.schedule('catch', period, ({ slot }) => void ran.push(slot.getTime()), { catchUp: 1, now: () => latest + 1000 });
    await sleep(100);
    assert.equal(ran.length, 0, 'a slot 1 s old is not run with catchUp: 1 ms');
    await short.stop();
    const jobs = [0, 1].map(() => createBaton(sharedView(store)).schedule('catch', period, ({ slot }) => void ran.push(slot.getTime()), { catchUp: 'latest' }));
    await sleep(200);
    assert.deepEqual(ran, [latest], 'latest: the latest slot, once across two instances');
    await Promise.all(jobs.map((job) => job.stop()));
    await a.close();
  });

  it('the run\'s signal aborts when the job\'s lease is lost, and the record says lost', async () => {
    const baton = createBaton(createMemoryStore());
    const job = baton.schedule('lose', 1000, async ({ signal }) => {
      await baton.forceRelease('lose');
      if (!signal.aborted) await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    }, { lockAtMostForMs: 300 });
    const done = await new Promise<{ record: { outcome: string } }>((resolve) => job.once('done', resolve));
    assert.equal(done.record.outcome, 'lost');
    await job.stop();
    await baton.close();
  });

  it('checks its input, and refuses a store without marks', async () => {
    const baton: Baton = createBaton(createMemoryStore());
    assert.throws(() => baton.schedule('x', 'not a cron', () => undefined), InvalidArgumentError);
    assert.throws(() => baton.schedule('x', 999, () => undefined), InvalidArgumentError);
    assert.throws(() => baton.schedule('x', 1000, () => undefined, { timezone: 'Europe/Paris' }), InvalidArgumentError);
    assert.throws(() => baton.schedule('x', '0 * * * *', () => undefined, { timezone: 'Nowhere/Atlantis' }), InvalidArgumentError);
    assert.throws(() => baton.schedule('x', 1000, () => undefined, { lockAtLeastForMs: 2000, lockAtMostForMs: 1000 }), InvalidArgumentError);
    assert.throws(() => baton.schedule('x', 1000, () => undefined, { catchUp: anyArg('all') }), InvalidArgumentError);
    const zoned = baton.schedule('paris', '30 2 * * *', () => undefined, { timezone: 'Europe/Paris', now: () => Date.UTC(2026, 0, 10, 12) });
    assert.equal(zoned.nextSlot?.toISOString(), '2026-01-11T01:30:00.000Z', '02:30 in Paris in winter is 01:30 UTC');
    await zoned.stop();
    const utc = baton.schedule('utc', '30 2 * * *', () => undefined, { now: () => Date.UTC(2026, 0, 10, 12) });
    assert.equal(utc.nextSlot?.toISOString(), '2026-01-11T02:30:00.000Z', 'UTC by default');
    await utc.stop();
    const bare = createBaton(wrapStore(createMemoryStore(), { advanceMark: undefined }));
    assert.throws(() => bare.schedule('x', 1000, () => undefined), UnsupportedError);
    await baton.close();
    await bare.close();
  });
});

function anyArg(value: unknown): never {
  return value as never;
}
