/**
 * The lease core on the memory store with a ManualClock: time moves only when the test says,
 * so renewal cadence, deadlines and event timings are exact.
 */
import assert from 'node:assert/strict';
import type { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import {
  LeaseLostError,
  ManualClock,
  StoreUnavailableError,
  createBaton,
  type BatonEvents,
} from '../../src/index.js';
import { wrapStore } from '../helpers/wrap-store.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';

/** A real memory store with faults the test switches on: extend failing, extend or release slow. */
function faulty(clock: ManualClock) {
  const store = createMemoryStore({ clock });
  const calls: string[] = [];
  const faults = { extendFails: false, extendGate: null as Promise<void> | null };
  const wrapped = wrapStore(store, {
    extend: async (key, owner, ttlMs, call) => {
      calls.push('extend:start');
      if (faults.extendGate) await faults.extendGate;
      if (faults.extendFails) {
        calls.push('extend:fail');
        throw new StoreUnavailableError('memory', 'injected fault');
      }
      const result = await store.extend(key, owner, ttlMs, call);
      calls.push(`extend:${result.held ? 'ok' : 'gone'}`);
      return result;
    },
    release: async (key, owner, call) => {
      calls.push('release');
      return store.release(key, owner, call);
    },
  });
  return { store: wrapped, calls, faults, inner: store };
}

function record<E extends keyof BatonEvents>(baton: EventEmitter, event: E): BatonEvents[E][0][] {
  const seen: BatonEvents[E][0][] = [];
  baton.on(event, (payload: BatonEvents[E][0]) => seen.push(payload));
  return seen;
}

describe('lease core', () => {
  it('one scheduler timer serves every held lease', async () => {
    const clock = new ManualClock();
    const baton = createBaton(createMemoryStore({ clock }), { clock });
    const leases = [];
    for (let i = 0; i < 1000; i++) leases.push(await baton.mutex(`lock-${i}`).acquire({ ttlMs: 3000 + i, autoRenew: true }));
    assert.equal(baton.heldCount, 1000);
    assert.equal(clock.pending, 1, 'a single timer for 1000 leases');
    await clock.advance(10_000);
    assert.ok(leases.every((lease) => lease.held));
    assert.equal(clock.pending, 1);
    for (const lease of leases) await lease.release();
    assert.equal(clock.pending, 0, 'no timer left once every lease is released');
    await baton.close();
  });

  it('renews every TTL/3 and keeps the lease past many TTLs', async () => {
    const clock = new ManualClock();
    const { store, calls } = faulty(clock);
    const baton = createBaton(store, { clock });
    const extended = record(baton, 'extended');
    const lease = await baton.mutex('r').acquire({ ttlMs: 300, autoRenew: true });
    await clock.advance(99);
    assert.equal(calls.length, 0);
    await clock.advance(1);
    assert.deepEqual(calls, ['extend:start', 'extend:ok']);
    await clock.advance(900);
    assert.equal(extended.length, 10, 'one renewal every 100 ms for 1000 ms');
    assert.equal(lease.held, true);
    await lease.release();
    await baton.close();
  });

  it('retries failed renewals until the deadline, then reports the lease lost with the error as cause', async () => {
    const clock = new ManualClock();
    const { store, calls, faults } = faulty(clock);
    const baton = createBaton(store, { clock });
    const lost = record(baton, 'lost');
    const lease = await baton.mutex('f').acquire({ ttlMs: 1000, autoRenew: true });
    faults.extendFails = true;
    await clock.advance(989);
    assert.equal(lease.signal.aborted, false, 'still held before the deadline (TTL - 1% drift)');
    assert.ok(calls.filter((c) => c === 'extend:fail').length >= 5, `retried: ${calls.join(' ')}`);
    await clock.advance(1);
    assert.equal(lease.signal.aborted, true);
    const reason = lease.signal.reason as LeaseLostError;
    assert.ok(reason instanceof LeaseLostError);
    assert.equal(reason.reason, 'expired');
    assert.ok(reason.cause instanceof StoreUnavailableError, 'the last renewal error is kept as the cause');
    assert.equal(lost.length, 1);
    assert.equal(lost[0]!.holdMs, 990);
    await assert.rejects(lease.release(), LeaseLostError);
    await baton.close();
  });

  it('release stops renewal, waits for the renewal in flight, then releases', async () => {
    const clock = new ManualClock();
    const { store, calls, faults } = faulty(clock);
    const baton = createBaton(store, { clock });
    const lease = await baton.mutex('order').acquire({ ttlMs: 300, autoRenew: true });
    let open!: () => void;
    faults.extendGate = new Promise((resolve) => (open = resolve));
    await clock.advance(100);
    assert.deepEqual(calls, ['extend:start']);
    const releasing = lease.release();
    await clock.advance(1);
    assert.deepEqual(calls, ['extend:start'], 'release waits for the renewal in flight');
    faults.extendGate = null;
    open();
    await releasing;
    assert.deepEqual(calls, ['extend:start', 'extend:ok', 'release']);
    await clock.advance(1000);
    assert.deepEqual(calls, ['extend:start', 'extend:ok', 'release'], 'no renewal after release');
    await baton.close();
  });

  it('a lease lost while a renewal is in flight is aborted at its deadline, and the late renewal is given back', async () => {
    const clock = new ManualClock();
    const { store, calls, faults, inner } = faulty(clock);
    const baton = createBaton(store, { clock });
    const lease = await baton.mutex('slow').acquire({ ttlMs: 300, autoRenew: true });
    let open!: () => void;
    faults.extendGate = new Promise((resolve) => (open = resolve));
    await clock.advance(297);
    assert.equal(lease.signal.aborted, true, 'aborted at the deadline even though a renewal is still in flight');
    faults.extendGate = null;
    open();
    await clock.advance(1);
    assert.ok(calls.includes('release'), `the renewal landed after the loss and was released: ${calls.join(' ')}`);
    assert.deepEqual((await inner.inspect({ kind: 'mutex', name: 'slow' })).holders, []);
    await baton.close();
  });

  it('reading lease.signal re-checks the deadline, even if no timer has run yet', async () => {
    const clock = new ManualClock();
    const baton = createBaton(createMemoryStore({ clock }), { clock });
    const lease = await baton.mutex('lazy').acquire({ ttlMs: 100 });
    clock.jump(1000);
    assert.equal(lease.signal.aborted, true);
    assert.equal((lease.signal.reason as LeaseLostError).reason, 'expired');
    assert.equal(lease.held, false);
    await baton.close();
  });

  it('a store that reports a dropped holder (watchLost) aborts its signal at once, without waiting for a renewal', async () => {
    const clock = new ManualClock();
    const store = createMemoryStore({ clock });
    const holder = createBaton(store, { clock });
    const lost = record(holder, 'lost');
    const lease = await holder.mutex('admin').acquire({ ttlMs: 60_000 });
    const other = await holder.mutex('other').acquire({ ttlMs: 60_000 });
    assert.equal(await holder.forceRelease('admin'), 1);
    assert.equal(lease.signal.aborted, true);
    assert.equal((lease.signal.reason as LeaseLostError).reason, 'revoked');
    assert.deepEqual(lost.map((e) => e.name), ['admin']);
    assert.equal(other.held, true, 'only the dropped holder is told');
    await holder.close();
  });

  it('emits acquired, contended, extended, released, lost and failed with timings', async () => {
    const clock = new ManualClock();
    const baton = createBaton(createMemoryStore({ clock }), { clock });
    const events = {
      acquired: record(baton, 'acquired'),
      contended: record(baton, 'contended'),
      extended: record(baton, 'extended'),
      released: record(baton, 'released'),
      lost: record(baton, 'lost'),
      failed: record(baton, 'failed'),
    };
    const first = await baton.mutex('e').acquire({ ttlMs: 1000 });
    const waiting = baton.mutex('e').acquire({ ttlMs: 1000 });
    await clock.advance(250);
    await first.extend(2000);
    await first.release();
    const second = await waiting;
    assert.deepEqual(events.acquired.map((e) => [e.waitMs, e.contended]), [[0, false], [250, true]]);
    assert.equal(events.contended.length, 1);
    assert.equal(events.contended[0]!.position, 1);
    assert.deepEqual(events.extended.map((e) => e.ttlMs), [2000]);
    assert.deepEqual(events.released.map((e) => e.holdMs), [250]);
    const timingOut = assert.rejects(baton.mutex('e').acquire({ timeoutMs: 100 }), { code: 'LOCK_TIMEOUT' });
    await clock.advance(100);
    await timingOut;
    assert.equal(events.failed.length, 1);
    assert.equal(events.failed[0]!.waitMs, 100);
    await clock.advance(1900);
    assert.equal(events.lost.length, 1);
    assert.equal(events.lost[0]!.owner, second.owner);
    assert.equal(events.lost[0]!.reason, 'expired');
    await baton.close();
  });

  it('a throwing listener becomes a warning, not a crash or a failed acquire', async () => {
    const clock = new ManualClock();
    const baton = createBaton(createMemoryStore({ clock }), { clock });
    baton.on('acquired', () => {
      throw new Error('listener bug');
    });
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning.message);
    process.on('warning', onWarning);
    const lease = await baton.mutex('w').acquire({ ttlMs: 100 });
    await new Promise((resolve) => setImmediate(resolve));
    process.off('warning', onWarning);
    assert.ok(lease.held);
    assert.ok(warnings.some((w) => w.includes('listener bug')));
    await baton.close();
  });

  it('await using releases the lease at the end of the block', async () => {
    const clock = new ManualClock();
    const baton = createBaton(createMemoryStore({ clock }), { clock });
    {
      await using lease = await baton.mutex('using').acquire({ ttlMs: 1000 });
      assert.ok(lease.held);
      assert.equal(await baton.mutex('using').tryAcquire(), null);
    }
    assert.ok(await baton.mutex('using').tryAcquire(), 'released when the block ended');
    await baton.close();
  });

  it('a store that enforces a shorter TTL than asked bounds the deadline by it, and core renews up to the lease TTL', async () => {
    const clock = new ManualClock();
    const inner = createMemoryStore({ clock });
    const calls: number[] = [];
    const faults = { extendFails: false };
    // A session-like store: whatever is asked, it enforces 1000 ms, and says so.
    const store = wrapStore(inner, {
      grant: async (request, call) => {
        const result = await inner.grant({ ...request, ttlMs: Math.min(request.ttlMs, 1000) }, call);
        return result.granted ? { ...result, enforcedTtlMs: 1000 } : result;
      },
      extend: async (key, owner, ttlMs, call) => {
        calls.push(ttlMs);
        if (faults.extendFails) throw new StoreUnavailableError('memory', 'injected fault');
        return (await inner.extend(key, owner, Math.min(ttlMs, 1000), call)).held ? { held: true, enforcedTtlMs: 1000 } : { held: false };
      },
    });
    const baton = createBaton(store, { clock });
    const extended = record(baton, 'extended');
    const lease = await baton.mutex('session').acquire({ ttlMs: 5000 });
    assert.equal(lease.ttlMs, 5000);
    await clock.advance(332);
    assert.deepEqual(calls, [], 'first renewal at a third of the enforced TTL');
    await clock.advance(1);
    assert.equal(calls.length, 1);
    assert.ok(calls[0]! <= 5000 - 50 - 333 + 1 && calls[0]! > 4000, `the renewal asks for what is left of the lease TTL, got ${calls[0]}`);
    await clock.advance(4949 - 333);
    assert.equal(lease.held, true, 'renewed past the enforced TTL although autoRenew is off');
    assert.equal(extended.length, 0, 'renewing the store TTL is not an extension of the lease');
    await clock.advance(1);
    assert.equal(lease.held, false, 'lost at the lease TTL (5000 ms - 1% drift), not renewed past it');
    assert.equal((lease.signal.reason as LeaseLostError).reason, 'expired');

    // When renewals fail, the deadline is the enforced TTL from the last success, not the lease TTL.
    const second = await baton.mutex('session-2').acquire({ ttlMs: 5000 });
    await clock.advance(400);
    assert.equal(second.held, true);
    faults.extendFails = true;
    const renewedAt = 333;
    await clock.advance(renewedAt + 990 - 400 - 1);
    assert.equal(second.held, true, 'held until the enforced TTL (minus drift) after the last renewal began');
    await clock.advance(1);
    assert.equal(second.held, false);
    assert.ok((second.signal.reason as LeaseLostError).cause instanceof StoreUnavailableError);
    await baton.close();
  });

  it('a semaphore waiter is granted as soon as one permit frees', async () => {
    const clock = new ManualClock();
    const baton = createBaton(createMemoryStore({ clock }), { clock });
    const sem = baton.semaphore('pool', { permits: 2 });
    const a = await sem.acquire({ ttlMs: 1000 });
    await sem.acquire({ ttlMs: 1000 });
    let granted = false;
    const waiting = sem.acquire({ ttlMs: 1000 }).then((lease) => {
      granted = true;
      return lease;
    });
    await clock.advance(10);
    assert.equal(granted, false);
    await a.release();
    await clock.advance(0);
    assert.equal(granted, true);
    assert.ok((await waiting).token > a.token);
    await baton.close();
  });

  it('many waiters in one instance raise no MaxListenersExceededWarning', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const baton = createBaton(createMemoryStore());
    try {
      const holder = await baton.mutex('crowd').acquire({ ttlMs: 5000 });
      const waiters = Array.from({ length: 30 }, () => baton.mutex('crowd').acquire({ ttlMs: 5000 }).then((lease) => lease.release()));
      await new Promise((resolve) => setTimeout(resolve, 50));
      await holder.release();
      await Promise.all(waiters);
      await new Promise((resolve) => setImmediate(resolve));
      assert.deepEqual(warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message), []);
    } finally {
      process.off('warning', onWarning);
      await baton.close();
    }
  });

  it('an awaited acquire and release keep the process alive while the store answers on unref\'d handles', async () => {
    // A driver may leave the only handle of a pending call unref'd (gRPC does while it
    // connects). The store here answers each call 100 ms late on an unref'd timer; a process
    // with nothing else to do must still wait for the answer, not exit with its top-level
    // await unsettled (exit code 13).
    const src = new URL('../../src/', import.meta.url).href;
    const program = [
      `import { createBaton } from '${src}index.js';`,
      `import { createMemoryStore } from '${src}stores/memory/index.js';`,
      `import { wrapStore } from '${new URL('../helpers/wrap-store.js', import.meta.url).href}';`,
      'const inner = createMemoryStore();',
      'const late = (value) => new Promise((resolve) => setTimeout(() => resolve(value), 100).unref());',
      'const store = wrapStore(inner, { grant: async (r) => late(await inner.grant(r)), release: async (k, o) => late(await inner.release(k, o)) });',
      'const baton = createBaton(store);',
      "const lease = await baton.mutex('m').acquire({ ttlMs: 5000 });",
      "console.log('acquired', typeof lease.token);",
      'await lease.release();',
      "console.log('released');",
      'await baton.close();',
    ].join('\n');
    const { spawnSync } = await import('node:child_process');
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', program], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(run.stderr, '');
    assert.equal(run.stdout, 'acquired bigint\nreleased\n');
    assert.equal(run.status, 0);
  });
});
