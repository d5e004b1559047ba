/**
 * The logger hook on the memory store, with faults switched on through a wrapped real store:
 * what is logged (lost leases, failed renewals, a store that stops answering and comes back,
 * slow calls), at which level and with which fields; and nothing without a logger, nor for a
 * normal acquire, release or close.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBaton, StoreUnavailableError, type Logger, type LockStore, type StoreCall } from '../../src/index.js';
import { monotonicNow } from '../../src/core/clock.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { wrapStore } from '../helpers/wrap-store.js';
import { until } from '../helpers/wait.js';

interface Entry {
  level: keyof Logger;
  fields: Record<string, unknown>;
  message: string;
}

function recorder(): Logger & { entries: Entry[] } {
  const entries: Entry[] = [];
  const at = (level: keyof Logger) => (fields: Record<string, unknown>, message: string): void => void entries.push({ level, fields, message });
  return { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** A real memory store whose calls can be made to fail, stall until their deadline, or take `delayMs`. */
function faulty() {
  const inner = createMemoryStore();
  const faults = { extendFails: false, stall: false, releaseDelayMs: 0 };
  const stalled = (call: StoreCall) =>
    new Promise<never>((_, reject) => {
      const timer = setTimeout(() => reject(new StoreUnavailableError('memory', 'injected: no answer')), Math.max(0, call.deadline - monotonicNow()) + 50);
      timer.unref();
    });
  const store: LockStore = wrapStore(inner, {
    grant: (request, call) => (faults.stall ? stalled(call) : inner.grant(request, call)),
    extend: async (key, owner, ttlMs, call) => {
      if (faults.extendFails) throw new StoreUnavailableError('memory', 'injected: extend refused');
      return inner.extend(key, owner, ttlMs, call);
    },
    release: async (key, owner, call) => {
      if (faults.releaseDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, faults.releaseDelayMs));
      return inner.release(key, owner, call);
    },
  });
  return { store, faults };
}

describe('logger', { timeout: 30_000 }, () => {
  it('is silent by default: no logger, no store call timed', async () => {
    const baton = createBaton(createMemoryStore());
    assert.equal(baton.listenerCount('call'), 0);
    await (await baton.mutex('a').acquire()).release();
    await baton.close();
  });

  it('logs nothing for a normal acquire, release, contention and close', async () => {
    const logger = recorder();
    const store = createMemoryStore();
    const a = createBaton(store, { logger });
    const b = createBaton(store, { logger });
    await (await a.mutex('a').acquire()).release();
    await a.mutex('held').acquire();
    assert.equal(await b.mutex('held').tryAcquire(), null);
    await a.close();
    await b.close();
    assert.deepEqual(logger.entries, []);
  });

  it('warns of a lost lease with its lock, owner, token, reason and hold time', async () => {
    const logger = recorder();
    const baton = createBaton(createMemoryStore(), { logger });
    const lease = await baton.mutex('job-1').acquire({ ttlMs: 10_000 });
    await baton.forceRelease('job-1');
    await assert.rejects(lease.extend(), { code: 'LEASE_LOST' });
    await baton.close();
    assert.equal(logger.entries.length, 1, JSON.stringify(logger.entries));
    const [entry] = logger.entries;
    assert.equal(entry!.level, 'warn');
    assert.equal(entry!.message, 'baton: lease on "job-1" lost (revoked)');
    const { holdMs, ...fields } = entry!.fields;
    assert.deepEqual(fields, { component: 'baton', lock: 'job-1', kind: 'mutex', owner: lease.owner, token: String(lease.token), reason: 'revoked' });
    assert.equal(typeof holdMs, 'number');
    assert.doesNotThrow(() => JSON.stringify(entry!.fields), 'fields are JSON (the token is a string)');
  });

  it('warns of each failed renewal, then of the lease lost with the renewal error', async () => {
    const logger = recorder();
    const { store, faults } = faulty();
    const baton = createBaton(store, { logger });
    const lease = await baton.mutex('renewed').acquire({ ttlMs: 300, autoRenew: true });
    faults.extendFails = true;
    await until(() => !lease.held, 'the lease is lost', { ms: 5000 });
    await baton.close();
    const renewals = logger.entries.filter((e) => e.message.includes('renewal'));
    assert.ok(renewals.length >= 1);
    for (const e of renewals) {
      assert.equal(e.level, 'warn');
      assert.equal(e.fields.lock, 'renewed');
      assert.equal(typeof e.fields.remainingMs, 'number');
      assert.ok(e.fields.err instanceof StoreUnavailableError);
    }
    const lost = logger.entries.filter((e) => e.message.includes('lost'));
    assert.equal(lost.length, 1);
    assert.equal(lost[0]!.fields.reason, 'expired');
    assert.ok(lost[0]!.fields.err instanceof StoreUnavailableError, 'the renewal error is the cause');
  });

  it('logs a store that stops answering once, as an error, and its return with the time it was out', async () => {
    const logger = recorder();
    const { store, faults } = faulty();
    const baton = createBaton(store, { logger, storeTimeoutMs: 100 });
    faults.stall = true;
    await assert.rejects(baton.mutex('x').tryAcquire(), { code: 'STORE_UNAVAILABLE' });
    await assert.rejects(baton.mutex('x').tryAcquire(), { code: 'STORE_UNAVAILABLE' });
    faults.stall = false;
    await (await baton.mutex('x').acquire()).release();
    await baton.close();
    const levels = logger.entries.map((e) => `${e.level} ${e.message}`);
    assert.deepEqual(levels, ['error baton: the memory store is unreachable', 'info baton: the memory store is reachable again'], JSON.stringify(levels));
    assert.equal(logger.entries[0]!.fields.verb, 'grant');
    assert.ok(logger.entries[0]!.fields.err instanceof StoreUnavailableError);
    assert.ok((logger.entries[1]!.fields.downMs as number) >= 100);
  });

  it('warns of a store call slower than slowCallMs', async () => {
    const logger = recorder();
    const { store, faults } = faulty();
    const baton = createBaton(store, { logger, slowCallMs: 50 });
    const lease = await baton.mutex('slow').acquire();
    faults.releaseDelayMs = 120;
    await lease.release();
    await baton.close();
    assert.equal(logger.entries.length, 1, JSON.stringify(logger.entries));
    const [entry] = logger.entries;
    assert.equal(entry!.level, 'warn');
    assert.match(entry!.message, /^baton: slow memory store call: release took \d+ ms$/);
    assert.equal(entry!.fields.verb, 'release');
    assert.equal(entry!.fields.slowCallMs, 50);
    assert.ok((entry!.fields.durationMs as number) >= 100);
  });

  it('ignores a logger that throws', async () => {
    const throwing: Logger = { debug() {}, info() {}, warn() { throw new Error('logger down'); }, error() { throw new Error('logger down'); } };
    const baton = createBaton(createMemoryStore(), { logger: throwing });
    const lease = await baton.mutex('t').acquire();
    await baton.forceRelease('t');
    await assert.rejects(lease.extend(), { code: 'LEASE_LOST' });
    await baton.close();
  });

  it('refuses a logger without the four methods, naming those missing', () => {
    assert.throws(() => createBaton(createMemoryStore(), { logger: { info() {}, warn() {} } as unknown as Logger }), {
      code: 'INVALID_ARGUMENT',
      argument: 'logger',
      message: /missing debug, error/,
    });
    assert.throws(() => createBaton(createMemoryStore(), { slowCallMs: -1 }), { code: 'INVALID_ARGUMENT', argument: 'slowCallMs' });
  });
});
