/**
 * The keep-alive scheduler (src/core/keep-alive.ts) on its own: one timer for every lease,
 * armed for the earliest due in its heap, through random inserts, removals and reschedules of
 * many leases, on a ManualClock. The store is a stand-in here (the test is of the scheduler's
 * ordering, not of a store): `schedulerStore` below, the one place to adapt when the store
 * contract changes. Tests of leases on a real store are in lease-core.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ManualClock, type ClockTimer } from '../../src/core/clock.js';
import { KeepAlive, type LeaseRecord } from '../../src/core/keep-alive.js';
import type { LockStore } from '../../src/store.js';
import { xorshift } from '../faults/harness.js';

/** A ManualClock that also says which timers are armed, and for when. */
class WatchedClock extends ManualClock {
  readonly armed = new Map<ClockTimer, number>();

  override setTimeout(callback: () => void, ms: number): ClockTimer {
    const timer: ClockTimer = super.setTimeout(() => {
      this.armed.delete(timer);
      callback();
    }, ms);
    this.armed.set(timer, this.now() + Math.max(0, ms));
    return timer;
  }

  override clearTimeout(timer: ClockTimer): void {
    this.armed.delete(timer);
    super.clearTimeout(timer);
  }
}

/**
 * schedulerStore: the least of a store that the scheduler calls, `extend` (always still held,
 * each call logged with the clock's time) and `release`. It decides nothing: a stand-in.
 */
function schedulerStore(clock: ManualClock): { store: LockStore; extensions: { owner: string; at: number }[] } {
  const extensions: { owner: string; at: number }[] = [];
  const store = {
    name: 'scheduler-test',
    extend: async (_key: unknown, owner: string) => {
      extensions.push({ owner, at: clock.now() });
      return { held: true };
    },
    release: async () => true,
  };
  return { store: store as unknown as LockStore, extensions };
}

/** A held lease record, due at `deadline` (its own TTL's end) and, if it auto-renews, at `renewAt` before. */
function record(owner: string, deadline: number, autoRenew = false): LeaseRecord {
  return {
    kind: 'mutex', name: owner, owner, token: null, ttlMs: deadline, enforcedMs: deadline, until: deadline, deadline, renewAt: deadline,
    autoRenew, state: 'held', lostError: null, controller: null, inflight: null, lastError: undefined, acquiredAt: 0, heapIndex: -1, due: 0,
  };
}

/** The scheduler's store calls: bounded by a long timeout, never aborted. */
const CALLS = { storeTimeoutMs: 60_000, signal: new AbortController().signal };

describe('keep-alive scheduler', () => {
  it('random inserts, removals and reschedules: one timer, never later than the earliest deadline; each lease lost exactly at its deadline', async () => {
    const seed = Math.floor(Math.random() * 2 ** 31) + 1;
    const random = xorshift(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const clock = new WatchedClock();
    const lost: { owner: string; at: number; deadline: number }[] = [];
    const scheduler = new KeepAlive(clock, schedulerStore(clock).store, {
      extended: () => assert.fail('a lease that does not renew was extended'),
      lost: (r) => void lost.push({ owner: r.owner, at: clock.now(), deadline: r.deadline }),
      forget: () => undefined,
    }, 0, CALLS);
    const tracked = new Map<string, LeaseRecord>();
    let next = 0;
    let removed = 0;
    let rescheduled = 0;

    for (let step = 0; step < 3000; step++) {
      const roll = random();
      const now = clock.now();
      if (roll < 0.4 || tracked.size === 0) {
        const r = record(`l${next++}`, now + 1 + Math.floor(random() * 3000));
        tracked.set(r.owner, r);
        scheduler.track(r);
      } else if (roll < 0.55) {
        const r = pick([...tracked.values()]);
        tracked.delete(r.owner);
        scheduler.untrack(r);
        removed++;
      } else if (roll < 0.75) {
        // Earlier or later than before: the heap moves it either way.
        const r = pick([...tracked.values()]);
        r.until = r.deadline = now + 1 + Math.floor(random() * 3000);
        scheduler.track(r);
        rescheduled++;
      } else {
        const before = lost.length;
        await clock.advance(Math.floor(random() * 150));
        for (const l of lost.slice(before)) {
          assert.equal(l.at, l.deadline, `seed ${seed}: ${l.owner} was lost at ${l.at}, its deadline is ${l.deadline}`);
          tracked.delete(l.owner);
        }
      }
      const context = `seed ${seed}, step ${step}`;
      assert.equal(scheduler.size, tracked.size, context);
      const earliest = Math.min(...[...tracked.values()].map((r) => r.deadline));
      assert.ok(earliest > clock.now(), `${context}: a lease due at ${earliest} was missed at ${clock.now()}`);
      const timers = [...clock.armed.values()];
      if (tracked.size === 0) assert.deepEqual(timers, [], `${context}: a timer stays armed for no lease`);
      else {
        assert.equal(timers.length, 1, `${context}: ${timers.length} timers for ${tracked.size} leases`);
        assert.ok(timers[0]! <= earliest, `${context}: the timer is armed for ${timers[0]}, after the earliest deadline ${earliest}`);
      }
    }
    assert.ok(lost.length > 100 && removed > 100 && rescheduled > 100, `seed ${seed}: too little exercised (${lost.length} lost, ${removed} removed, ${rescheduled} rescheduled)`);

    // Run out the rest: every lease is lost at its deadline, in deadline order, and the timer goes.
    const left = [...tracked.values()].map((r) => ({ owner: r.owner, deadline: r.deadline })).sort((a, b) => a.deadline - b.deadline);
    const from = lost.length;
    await clock.advance(4000);
    assert.deepEqual(lost.slice(from).map((l) => l.at), left.map((l) => l.deadline), `seed ${seed}`);
    assert.deepEqual(new Set(lost.slice(from).map((l) => l.owner)), new Set(left.map((l) => l.owner)), `seed ${seed}`);
    assert.equal(scheduler.size, 0);
    assert.equal(clock.armed.size, 0);
  });

  it('auto-renewing leases are extended every third of their TTL, each on time, through one timer', async () => {
    const clock = new WatchedClock();
    const { store, extensions } = schedulerStore(clock);
    const extended: string[] = [];
    const scheduler = new KeepAlive(clock, store, {
      extended: (r) => void extended.push(r.owner),
      lost: (r) => assert.fail(`${r.owner} was lost`),
      forget: () => undefined,
    }, 0, CALLS);
    const random = xorshift(7);
    const ttls = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const ttlMs = 300 + Math.floor(random() * 2700);
      const r = record(`l${i}`, 0, true);
      scheduler.plan(r, clock.now(), ttlMs, undefined);
      ttls.set(r.owner, ttlMs);
      scheduler.track(r);
    }
    for (let elapsed = 0; elapsed < 10_000;) {
      const step = 1 + Math.floor(random() * 97);
      await clock.advance(step);
      elapsed += step;
      assert.ok(clock.armed.size <= 1, `${clock.armed.size} timers armed at ${clock.now()}`);
    }
    for (const [owner, ttlMs] of ttls) {
      const period = Math.floor(ttlMs / 3);
      const times = extensions.filter((e) => e.owner === owner).map((e) => e.at);
      assert.deepEqual(times, Array.from({ length: Math.floor(clock.now() / period) }, (_, k) => (k + 1) * period), `${owner}, TTL ${ttlMs} ms`);
    }
    assert.equal(extended.length, extensions.length, 'every extension reported');
    assert.equal(scheduler.size, 200);
    for (const r of [...scheduler.records()]) scheduler.untrack(r);
    assert.equal(clock.armed.size, 0);
  });
});
