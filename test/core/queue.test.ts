/**
 * The grant rule (src/core/queue.ts) on its own: `canHold` (may an entry hold, given who is
 * ahead of it), `decide` (what a store answers a grant request) and `grantable` (whom a
 * release wakes). The memory and SQLite stores apply it as is; the others in their own terms.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { canHold, decide, grantable, type QueueEntry } from '../../src/core/queue.js';
import type { HoldMode } from '../../src/store.js';

/** Readers of a read-write lock: shared, with no limit of their own. */
const READERS = Number.MAX_SAFE_INTEGER;

let seq = 0;
/** entry: a live entry, holding or queued, expiring `expiresAt` on the store's clock. */
function entry(owner: string, mode: HoldMode, limit: number, held: boolean, expiresAt = 10_000): QueueEntry {
  return { owner, seq: seq++, mode, limit, held, ttlMs: 5000, expiresAt, token: held ? BigInt(seq) : null };
}
const mutex = (owner: string, held: boolean, expiresAt?: number): QueueEntry => entry(owner, 'exclusive', 1, held, expiresAt);
const permit = (owner: string, limit: number, held: boolean, expiresAt?: number): QueueEntry => entry(owner, 'shared', limit, held, expiresAt);
const owners = (entries: readonly QueueEntry[]): string[] => entries.map((e) => e.owner);

describe('canHold', () => {
  it('a mutex: only with nobody ahead', () => {
    assert.equal(canHold('exclusive', 1, []), true);
    assert.equal(canHold('exclusive', 1, [{ mode: 'exclusive' }]), false);
    assert.equal(canHold('exclusive', 1, [{ mode: 'shared' }]), false);
  });

  it('a semaphore of N: while fewer than N are ahead', () => {
    const ahead = (n: number) => Array.from({ length: n }, () => ({ mode: 'shared' as const }));
    for (let n = 0; n < 3; n++) assert.equal(canHold('shared', 3, ahead(n)), true, `${n} ahead of 3 permits`);
    assert.equal(canHold('shared', 3, ahead(3)), false);
    assert.equal(canHold('shared', 3, ahead(7)), false);
  });

  it('shared and exclusive: readers share with readers, a writer with nobody', () => {
    assert.equal(canHold('shared', READERS, [{ mode: 'shared' }, { mode: 'shared' }]), true);
    assert.equal(canHold('shared', READERS, [{ mode: 'shared' }, { mode: 'exclusive' }]), false, 'a reader behind a writer waits');
    assert.equal(canHold('shared', READERS, [{ mode: 'exclusive' }]), false);
    assert.equal(canHold('exclusive', READERS, [{ mode: 'shared' }]), false, 'a writer behind a reader waits');
    assert.equal(canHold('exclusive', READERS, []), true);
  });
});

describe('decide', () => {
  it('grants a free mutex, and refuses a held one with the queue position and the holder\'s time left', () => {
    assert.deepEqual(decide([], { mode: 'exclusive', limit: 1 }, undefined, 0), { grant: true });
    const holder = mutex('a', true, 1500);
    assert.deepEqual(decide([holder], { mode: 'exclusive', limit: 1 }, undefined, 1000), { grant: false, position: 1, retryAfterMs: 500 });
  });

  it('tryAcquire never overtakes a waiter: a newcomer sees every live entry ahead of it', () => {
    const waiter = mutex('w', false, 3000);
    // The holder is gone (released or expired); the waiter has not asked again yet.
    assert.deepEqual(decide([waiter], { mode: 'exclusive', limit: 1 }, undefined, 1000), { grant: false, position: 1, retryAfterMs: 2000 });
    // The waiter itself may hold now.
    assert.deepEqual(decide([waiter], { mode: 'exclusive', limit: 1 }, waiter, 1000), { grant: true });
    // Nor does a reader overtake a queued writer behind readers that hold.
    const readers = [permit('r1', READERS, true), permit('r2', READERS, true)];
    const writer = entry('w', 'exclusive', READERS, false);
    assert.equal(decide([...readers, writer], { mode: 'shared', limit: READERS }, undefined, 0).grant, false);
    assert.equal(decide(readers, { mode: 'shared', limit: READERS }, undefined, 0).grant, true);
  });

  it('a queued entry looks only at the entries that arrived before it', () => {
    const first = mutex('a', true, 2000);
    const second = mutex('b', false, 4000);
    const third = mutex('c', false, 6000);
    const live = [first, second, third];
    assert.deepEqual(decide(live, { mode: 'exclusive', limit: 1 }, second, 1000), { grant: false, position: 1, retryAfterMs: 1000 });
    assert.deepEqual(decide(live, { mode: 'exclusive', limit: 1 }, third, 1000), { grant: false, position: 2, retryAfterMs: 1000 });
    assert.deepEqual(decide([second, third], { mode: 'exclusive', limit: 1 }, second, 1000), { grant: true });
  });

  it('a semaphore grants its N permits, then refuses with the soonest expiry ahead', () => {
    const holders = [permit('a', 3, true, 9000), permit('b', 3, true, 4000)];
    assert.deepEqual(decide(holders, { mode: 'shared', limit: 3 }, undefined, 1000), { grant: true });
    const full = [...holders, permit('c', 3, true, 7000)];
    assert.deepEqual(decide(full, { mode: 'shared', limit: 3 }, undefined, 1000), { grant: false, position: 3, retryAfterMs: 3000 });
  });

  it('refuses a newcomer whose limit is not the live entries\', holding or queued, with theirs; with none, any limit', () => {
    assert.deepEqual(decide([permit('a', 1, true)], { mode: 'shared', limit: 3 }, undefined, 1000), { grant: false, limitInUse: 1 });
    assert.deepEqual(decide([permit('a', 3, true)], { mode: 'shared', limit: 3 }, undefined, 1000), { grant: true });
    // The holder is gone; its waiter, of 1 permit, has not asked again yet.
    const waiter = permit('w', 1, false);
    assert.deepEqual(decide([waiter], { mode: 'shared', limit: 2 }, undefined, 1000), { grant: false, limitInUse: 1 });
    assert.deepEqual(decide([waiter], { mode: 'shared', limit: 1 }, waiter, 1000), { grant: true });
    assert.deepEqual(decide([], { mode: 'shared', limit: 2 }, undefined, 1000), { grant: true });
    // A read-write lock's readers and writers share one limit, so they never refuse each other.
    assert.equal(decide([permit('r', READERS, true)], { mode: 'exclusive', limit: READERS }, undefined, 0).limitInUse, undefined);
  });

  it('retryAfterMs: whole milliseconds rounded up, never negative', () => {
    assert.equal((decide([mutex('a', true, 1000.2)], { mode: 'exclusive', limit: 1 }, undefined, 1000) as { retryAfterMs?: number }).retryAfterMs, 1);
    assert.equal((decide([mutex('a', true, 900)], { mode: 'exclusive', limit: 1 }, undefined, 1000) as { retryAfterMs?: number }).retryAfterMs, 0);
  });

  it('retryAfterMs is left out when nothing is ahead to expire (a request that no entry could ever allow)', () => {
    assert.deepEqual(decide([], { mode: 'shared', limit: 0 }, undefined, 0), { grant: false, position: 0, retryAfterMs: undefined });
  });
});

describe('grantable', () => {
  it('a mutex: the first waiter once the holder is gone, and nobody while it holds', () => {
    const waiters = [mutex('b', false), mutex('c', false)];
    assert.deepEqual(owners(grantable([mutex('a', true), ...waiters])), []);
    assert.deepEqual(owners(grantable(waiters)), ['b']);
  });

  it('a semaphore: as many waiters, in order, as there are free permits', () => {
    const live = [permit('a', 3, true), permit('b', 3, false), permit('c', 3, false), permit('d', 3, false)];
    assert.deepEqual(owners(grantable(live)), ['b', 'c']);
  });

  it('readers and writers: the readers before the first writer, then the writer alone, then the readers behind it', () => {
    const r = (owner: string, held = false) => entry(owner, 'shared', READERS, held);
    const w = (owner: string, held = false) => entry(owner, 'exclusive', READERS, held);
    assert.deepEqual(owners(grantable([r('r1'), r('r2'), w('w1'), r('r3')])), ['r1', 'r2']);
    assert.deepEqual(owners(grantable([r('r1', true), r('r2', true), w('w1'), r('r3')])), [], 'the writer waits for the readers; the reader behind it waits too');
    assert.deepEqual(owners(grantable([w('w1'), r('r3'), r('r4')])), ['w1']);
    assert.deepEqual(owners(grantable([r('r3'), r('r4'), w('w2')])), ['r3', 'r4']);
  });

  it('wakes no entry that already holds', () => {
    assert.deepEqual(owners(grantable([permit('a', 2, true), permit('b', 2, true)])), []);
  });
});
