/**
 * Every store call is bounded: core keeps its promises about time against a store that
 * stops answering. The stalled store here is a real memory store behind a wrapper whose
 * chosen methods never answer (or answer only when the test says), the one place where a
 * stall is simulated; the same promises are tested against real stalled servers in
 * test/acceptance/.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  CLOSE_TIMEOUT_MS,
  ClosedError,
  LockTimeoutError,
  StoreUnavailableError,
  createBaton,
  monotonicNow,
  type GrantResult,
  type LockStore,
  type StoreCall,
} from '../../src/index.js';
import { bounded as boundedCall, storeCall, SWEEP_MS, type BoundOptions } from '../../src/core/call.js';
import { keepAliveWhile } from '../../src/core/process-hold.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { aborted } from '../helpers/signals.js';
import { wrapStore } from '../helpers/wrap-store.js';

/** A bounded call the test awaits: like every awaited operation of baton, it holds the process until it settles. */
const bounded = <T>(call: StoreCall, start: (call: StoreCall) => Promise<T>, options: BoundOptions<T>): Promise<T> => keepAliveWhile(boundedCall(call, start, options));
const never = <T>(): Promise<T> => new Promise<T>(() => undefined);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Time a promise takes to settle, and how. */
async function timed<T>(promise: Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const started = monotonicNow();
  try {
    const value = await promise;
    return { ms: monotonicNow() - started, value };
  } catch (error) {
    return { ms: monotonicNow() - started, error };
  }
}

/** A memory store whose listed methods stall until `resume()`, then run for real. */
function stalling(methods: readonly (keyof LockStore)[]) {
  const inner = createMemoryStore();
  let resume: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (resume = resolve));
  const overrides: Partial<LockStore> = {};
  for (const method of methods) {
    (overrides as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      await gate;
      return ((inner as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[method]!).apply(inner, args);
    };
  }
  return { store: wrapStore(inner, overrides), inner, resume };
}

describe('bounded calls', () => {
  it('bounded settles at the deadline with StoreUnavailableError, and hands a late answer to `late`', async () => {
    let late: string | undefined;
    let answer: (value: string) => void = () => undefined;
    const result = await timed(bounded(storeCall(100), () => new Promise<string>((resolve) => (answer = resolve)), { store: 'test', verb: 'grant', late: (v) => (late = v) }));
    assert.ok(result.error instanceof StoreUnavailableError, String(result.error));
    assert.match((result.error as Error).message, /did not answer grant before its deadline/);
    assert.ok(result.ms >= 99 && result.ms < 100 + 4 * SWEEP_MS + 50, `settled after ${result.ms.toFixed(1)} ms`);
    answer('granted');
    await sleep(1);
    assert.equal(late, 'granted');
  });

  it('bounded rejects with the signal reason soon after an abort, and resolves at the deadline when asked to', async () => {
    const controller = new AbortController();
    const pending = timed(bounded(storeCall(10_000, controller.signal), never, { store: 'test', verb: 'wait' }));
    await sleep(20);
    const reason = new Error('gave up');
    controller.abort(reason);
    const result = await pending;
    assert.equal(result.error, reason);
    assert.ok(result.ms < 20 + 4 * SWEEP_MS + 50, `settled ${result.ms.toFixed(1)} ms after the start`);
    const resolved = await timed(bounded(storeCall(50), never, { store: 'test', verb: 'wait', resolveAtDeadline: true }));
    assert.equal(resolved.error, undefined);
    assert.equal(resolved.value, undefined);
  });

  it('acquire({ timeoutMs }) rejects with LockTimeoutError on time while grant never answers, and gives back the grant that comes late', async () => {
    const { store, inner, resume } = stalling(['grant']);
    const baton = createBaton(store);
    const result = await timed(baton.mutex('m').acquire({ timeoutMs: 300 }));
    assert.ok(result.error instanceof LockTimeoutError, String(result.error));
    assert.ok((result.error as LockTimeoutError).cause instanceof StoreUnavailableError, 'the cause says the store did not answer');
    assert.ok(result.ms >= 300 && result.ms < 400, `settled after ${result.ms.toFixed(1)} ms`);
    // The store now answers the grant nobody waits for: it is given back, not leaked.
    resume();
    const deadline = Date.now() + 5000;
    while ((await inner.inspect({ kind: 'mutex', name: 'm' })).holders.length > 0) {
      if (Date.now() > deadline) assert.fail('the late grant was never given back');
      await sleep(5);
    }
    await baton.close();
  });

  it('acquire({ signal }) rejects with its reason soon after the abort while grant never answers', async () => {
    const { store } = stalling(['grant']);
    const baton = createBaton(store);
    const controller = new AbortController();
    const pending = timed(baton.mutex('m').acquire({ signal: controller.signal }));
    await sleep(50);
    const abortedAt = monotonicNow();
    const reason = new Error('caller gave up');
    controller.abort(reason);
    const result = await pending;
    assert.equal(result.error, reason);
    const after = monotonicNow() - abortedAt;
    assert.ok(after < 100, `settled ${after.toFixed(1)} ms after the abort`);
    await baton.close();
  });

  it('tryAcquire, release, inspect, list and forceRelease reject with StoreUnavailableError after the store timeout', async () => {
    const { store } = stalling(['grant', 'release', 'inspect', 'list', 'forceRelease']);
    const baton = createBaton(store, { storeTimeoutMs: 150 });
    for (const [what, call] of [
      ['tryAcquire', () => baton.mutex('m').tryAcquire()],
      ['inspect', () => baton.inspect('m')],
      ['list', () => baton.list()],
      ['forceRelease', () => baton.forceRelease('m')],
      ['inspect with its own timeout', () => baton.inspect('m', 'mutex', { timeoutMs: 60 })],
    ] as [string, () => Promise<unknown>][]) {
      const result = await timed(call());
      assert.ok(result.error instanceof StoreUnavailableError, `${what}: ${String(result.error)}`);
      const bound = what.includes('own') ? 60 : 150;
      assert.ok(result.ms >= bound - 1 && result.ms < bound + 100, `${what} settled after ${result.ms.toFixed(1)} ms`);
    }
    await baton.close();
  });

  it('close() returns within CLOSE_TIMEOUT_MS while every call stalls; pending acquires reject with ClosedError; held leases abort with reason closed', async () => {
    const inner = createMemoryStore();
    let stalled = false;
    const gate = (): Promise<never> => never();
    const store = wrapStore(inner, {
      grant: (request, call) => (stalled ? gate() : inner.grant(request, call)),
      release: (key, owner, call) => (stalled ? gate() : inner.release(key, owner, call)),
      close: () => never(),
    });
    const baton = createBaton(store);
    const lease = await baton.mutex('held').acquire({ ttlMs: 60_000 });
    const lost = aborted(lease.signal);
    stalled = true;
    const pending = baton.mutex('other').acquire();
    const result = await timed(baton.close());
    assert.ok(result.ms < CLOSE_TIMEOUT_MS + 100, `close took ${result.ms.toFixed(1)} ms`);
    await assert.rejects(pending, ClosedError);
    const reason = (await lost) as { reason?: string };
    assert.equal(reason.reason, 'closed');
  });

  it('baton.withLock is mutex(name).withLock: close() does not wait for fn, and fn sees its lease abort', async () => {
    const baton = createBaton(createMemoryStore());
    let seen: unknown;
    const running = baton.withLock('job', async (lease) => {
      seen = await aborted(lease.signal, 10_000);
    });
    await sleep(10);
    const result = await timed(baton.close());
    assert.ok(result.ms < 200, `close took ${result.ms.toFixed(1)} ms`);
    await running.catch(() => undefined);
    assert.equal((seen as { reason?: string }).reason, 'closed');
  });

  it('a grant that answers as the caller aborts is given back', async () => {
    const inner = createMemoryStore();
    const controller = new AbortController();
    const store = wrapStore(inner, {
      grant: async (request, call): Promise<GrantResult> => {
        const result = await inner.grant(request, call);
        controller.abort(new Error('too late'));
        return result;
      },
    });
    const baton = createBaton(store);
    await assert.rejects(baton.mutex('m').acquire({ signal: controller.signal }), /too late/);
    const deadline = Date.now() + 5000;
    while ((await inner.inspect({ kind: 'mutex', name: 'm' })).holders.length > 0) {
      if (Date.now() > deadline) assert.fail('the grant was never given back');
      await sleep(5);
    }
    await baton.close();
  });
});
