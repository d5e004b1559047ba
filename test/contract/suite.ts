/**
 * The store contract suite. Every store runs it from one short file:
 *
 *   runContractSuite({ name: 'sqlite', backing: async () => ({ connect, cleanup }) });
 *
 * `backing()` makes a fresh, empty place to keep locks (a new file, a new key prefix);
 * `connect()` opens one more client on it, as another process would. Tests that a store
 * cannot pass are declared in `skip`, each with the reason, and reported as skipped.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { afterEach, describe, it, type TestContext } from 'node:test';
import {
  CLOSE_TIMEOUT_MS,
  ClosedError,
  InvalidArgumentError,
  LeaseLostError,
  LockNotHeldError,
  LockTimeoutError,
  PermitsMismatchError,
  StoreUnavailableError,
  createBaton,
  monotonicNow,
  storeCall,
  type Baton,
  type BatonOptions,
  type Lease,
  type GrantRequest,
  type LockKind,
  type LockStore,
  type StoreGuarantees,
  LockUpgradeError,
} from '../../src/index.js';
import { aborted } from '../helpers/signals.js';
import { wrapStore } from '../helpers/wrap-store.js';

export interface Backing {
  connect(): LockStore;
  /** Restarts the store's server, for stores that have one (a file-backed store has nothing to restart). */
  restart?(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface ContractTarget {
  name: string;
  backing(): Promise<Backing>;
  /** Test titles that this store skips, each with the reason. */
  skip?: Readonly<Record<string, string>>;
  /**
   * Time scale of the tests' short TTLs, sleeps and timeouts: 1 (the default) for stores that
   * answer in microseconds; more for a networked consensus store, whose round trips and
   * smallest TTL (an etcd session's, about a second) are longer. Bounds stay the same rule.
   */
  scale?: number;
  /** The TTL the store enforces on every entry, when it is a session's rather than each lease's own: `inspect` reports it. */
  sessionTtlMs?: number;
}

/**
 * assertLater: `next` was granted after `prev` through `baton`, so its token is higher; a
 * store whose guarantees leave out fencing (a quorum) must give no token at all.
 */
function assertLater(baton: Baton, next: { token: bigint | null }, prev: { token: bigint | null }): void {
  if (!baton.store.guarantees.fencing) {
    assert.deepEqual([next.token, prev.token], [null, null], 'a store without fencing gives no token');
    return;
  }
  assert.ok(typeof next.token === 'bigint' && typeof prev.token === 'bigint' && next.token > prev.token, `token ${next.token} granted after ${prev.token}`);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** until polls `check` until it holds; fails after 10 s (a state that never comes, not a slow one). */
async function until(check: () => Promise<boolean>, what: string): Promise<void> {
  for (const end = Date.now() + 10_000; !(await check()); await sleep(5)) {
    if (Date.now() > end) assert.fail(`never happened: ${what}`);
  }
}

/** Counts the store calls a baton instance makes, to check that a release wakes one waiter and not all. */
function counting(store: LockStore): { store: LockStore; grants: () => number } {
  let grants = 0;
  const wrapped = wrapStore(store, {
    grant: (request: GrantRequest, call) => {
      grants++;
      return store.grant(request, call);
    },
  });
  return { store: wrapped, grants: () => grants };
}

export function runContractSuite(target: ContractTarget): void {
  /** A short duration of the tests, scaled for the store. */
  const ms = (n: number): number => Math.round(n * (target.scale ?? 1));
  describe(`store contract: ${target.name}`, () => {
    let backing: Backing | null = null;
    const open: Baton[] = [];

    /** A new baton instance on a new connection to this test's backing, as another process would have. */
    async function client(options?: BatonOptions): Promise<Baton> {
      backing ??= await target.backing();
      const baton = createBaton(backing.connect(), options) as Baton;
      open.push(baton);
      return baton;
    }

    afterEach(async () => {
      await Promise.allSettled(open.splice(0).map((baton) => baton.close()));
      await backing?.cleanup();
      backing = null;
    });

    const titles = new Set<string>();
    function t(title: string, body: (context: TestContext) => Promise<void>): void {
      titles.add(title);
      const reason = target.skip?.[title];
      if (reason) it(title, { skip: reason }, body);
      else it(title, body);
    }

    /**
     * lacks: whether the store lacks one of `flags` of its guarantees (or, for `downgrade`,
     * the method); if so the test is reported skipped with the reason, as the store states it.
     */
    function lacks(context: TestContext, baton: Baton, flags: readonly (keyof StoreGuarantees | 'downgrade')[]): boolean {
      const g = baton.store.guarantees as unknown as Record<string, unknown>;
      const missing = flags.filter((flag) => (flag === 'downgrade' ? typeof baton.store.downgrade !== 'function' : g[flag] !== true));
      if (missing.length === 0) return false;
      context.skip(`the store states it lacks ${missing.join(', ')}`);
      return true;
    }

    t('the store states its guarantees and its call bound as data', async () => {
      const a = await client();
      const g = a.store.guarantees;
      for (const flag of ['fencing', 'fifo', 'notify', 'outlivesClient', 'mixedModes'] as const) assert.equal(typeof g[flag], 'boolean', flag);
      assert.ok(Number.isInteger(a.store.defaultTimeoutMs) && a.store.defaultTimeoutMs > 0, `defaultTimeoutMs ${a.store.defaultTimeoutMs}`);
      assert.equal(g.outlivesClient, typeof a.store.sessionDeadline !== 'function', 'a session-scoped store says until when its session lasts');
    });

    t('a lease says when it ends: expiresAt is no later than its TTL, nor than its store\'s session after an extension', async () => {
      const a = await client();
      const lease = await a.mutex('ends').acquire({ ttlMs: 60_000, autoRenew: false });
      await lease.extend(60_000);
      const left = lease.expiresAt - Date.now();
      const session = a.store.sessionDeadline ? a.store.sessionDeadline() - monotonicNow() : Infinity;
      assert.ok(left <= 60_000 + 5, `expiresAt ${left} ms away for a TTL of 60 000 ms`);
      assert.ok(left <= session + 5, `expiresAt ${left} ms away, the store's session ends in ${Math.round(session)} ms`);
      assert.ok(left > 0 && lease.held);
      await lease.release();
    });

    t('a mutex excludes other clients until released', async () => {
      const a = await client();
      const b = await client();
      const lease = await a.mutex('m').acquire({ ttlMs: 5000 });
      assert.equal(await b.mutex('m').tryAcquire(), null);
      await lease.release();
      const next = await b.mutex('m').tryAcquire({ ttlMs: 5000 });
      assert.ok(next);
      assertLater(b, next, lease);
      await next.release();
    });

    t('a semaphore grants exactly its permits', async () => {
      const a = await client();
      const b = await client();
      const leases = await Promise.all([1, 2, 3].map(() => a.semaphore('s', { permits: 3 }).acquire({ ttlMs: 5000 })));
      assert.equal(await b.semaphore('s', { permits: 3 }).tryAcquire(), null);
      assert.equal((await b.inspect('s', 'semaphore')).holders.length, 3);
      await leases[0]!.release();
      const fourth = await b.semaphore('s', { permits: 3 }).tryAcquire({ ttlMs: 5000 });
      assert.ok(fourth);
      assert.equal(await a.semaphore('s', { permits: 3 }).tryAcquire(), null);
    });

    t('a mutex and a semaphore of the same name do not collide', async () => {
      const a = await client();
      const m = await a.mutex('same').acquire({ ttlMs: 5000 });
      const s = await a.semaphore('same', { permits: 1 }).tryAcquire({ ttlMs: 5000 });
      assert.ok(s, 'the semaphore is free although the mutex of the same name is held');
      assert.ok(m.held);
    });

    /** The rejection of a semaphore asked with `permits` while its entries use `inUse`. */
    const mismatch = (name: string, permits: number, inUse: number) => (error: unknown): boolean => {
      assert.ok(error instanceof PermitsMismatchError, `expected a PermitsMismatchError, got ${String(error)}`);
      assert.equal(error.code, 'INVALID_ARGUMENT');
      assert.equal(error.argument, 'permits');
      assert.deepEqual([error.lockName, error.permits, error.permitsInUse], [name, permits, inUse]);
      assert.match(error.message, new RegExp(`"${name}" was asked with ${permits} permits?, but its current holders and waiters use ${inUse}`));
      return true;
    };

    t('a semaphore asked with other permits than its holders use is refused, leaving nothing behind', async () => {
      const a = await client();
      const b = await client();
      const held = await a.semaphore('agree', { permits: 1 }).acquire({ ttlMs: 5000 });
      await assert.rejects(b.semaphore('agree', { permits: 3 }).tryAcquire({ ttlMs: 5000 }), mismatch('agree', 3, 1));
      // A waiting acquire is refused at once, not left to time out.
      const started = monotonicNow();
      await assert.rejects(b.semaphore('agree', { permits: 3 }).acquire({ ttlMs: 5000, timeoutMs: ms(5000) }), mismatch('agree', 3, 1));
      assert.ok(monotonicNow() - started < ms(2000), `refused after ${(monotonicNow() - started).toFixed(0)} ms`);
      // The store itself answers the limit in use, and neither grants nor queues the newcomer.
      const key = { kind: 'semaphore', name: 'agree' } as const;
      const refused = await b.store.grant({ key, owner: 'b'.repeat(32), mode: 'shared', limit: 3, ttlMs: 5000, enqueue: true, queueTtlMs: 5000 }, storeCall(5000));
      assert.deepEqual(refused, { granted: false, limitInUse: 1 });
      const state = await b.inspect('agree', 'semaphore');
      assert.deepEqual(state.holders.map((h) => h.owner), [held.owner]);
      assert.deepEqual(state.waiters, []);
      if (b.store.guarantees.fencing) assert.equal(state.fence, held.token, 'no token was issued to a refused request');
      assert.equal(await b.store.release(key, 'b'.repeat(32), storeCall(5000)), false, 'the refused owner has no entry');
      // Asked with the permits in use, the semaphore is busy: contention is still a value.
      assert.equal(await b.semaphore('agree', { permits: 1 }).tryAcquire(), null);
      assert.ok(held.held);
      await held.release();
    });

    t('a semaphore asked with other permits than its waiters use is refused', async () => {
      const a = await client();
      const b = await client();
      const key = { kind: 'semaphore', name: 'agree-queued' } as const;
      const request = { key, mode: 'shared', limit: 1, enqueue: true, queueTtlMs: 10_000 } as const;
      // A holder whose TTL runs out and a waiter that does not ask again: on a store that does
      // not hand the lock over by itself, the waiter is then the only entry.
      const holder = await a.store.grant({ ...request, owner: 'a'.repeat(32), ttlMs: ms(200) }, storeCall(5000));
      assert.equal(holder.granted, true);
      const waiter = await a.store.grant({ ...request, owner: 'c'.repeat(32), ttlMs: 10_000 }, storeCall(5000));
      assert.equal(waiter.granted, false);
      await sleep(ms(300));
      await assert.rejects(b.semaphore('agree-queued', { permits: 2 }).tryAcquire({ ttlMs: 5000 }), mismatch('agree-queued', 2, 1));
      await assert.rejects(b.semaphore('agree-queued', { permits: 2 }).acquire({ ttlMs: 5000, timeoutMs: ms(5000) }), mismatch('agree-queued', 2, 1));
      const state = await b.inspect('agree-queued', 'semaphore');
      assert.deepEqual([...state.holders, ...state.waiters].map((e) => e.owner), ['c'.repeat(32)], 'the waiter (or, handed the lock, the holder) is the only entry');
      // The waiter keeps its place and gets the lock; once it is gone, the new permits are taken.
      assert.equal((await a.store.grant({ ...request, owner: 'c'.repeat(32), ttlMs: 10_000 }, storeCall(5000))).granted, true);
      assert.equal(await a.store.release(key, 'c'.repeat(32), storeCall(5000)), true);
      const two = await b.semaphore('agree-queued', { permits: 2 }).tryAcquire({ ttlMs: 5000 });
      assert.ok(two, 'granted with 2 permits once no one holds or waits');
      await two.release();
    });

    t('a semaphore takes new permits once every holder has released', async () => {
      const a = await client();
      const b = await client();
      const one = await a.semaphore('drain', { permits: 1 }).acquire({ ttlMs: 5000 });
      await assert.rejects(b.semaphore('drain', { permits: 3 }).tryAcquire(), mismatch('drain', 3, 1));
      await one.release();
      const three = await Promise.all([1, 2, 3].map(() => b.semaphore('drain', { permits: 3 }).acquire({ ttlMs: 5000, timeoutMs: 5000 })));
      assert.equal((await a.inspect('drain', 'semaphore')).holders.length, 3);
      assert.equal(await a.semaphore('drain', { permits: 3 }).tryAcquire(), null);
      await assert.rejects(a.semaphore('drain', { permits: 1 }).tryAcquire(), mismatch('drain', 1, 3));
      for (const lease of three) await lease.release();
      const again = await a.semaphore('drain', { permits: 1 }).tryAcquire({ ttlMs: 5000 });
      assert.ok(again, 'granted with 1 permit once the 3-permit holders released');
      assert.deepEqual((await a.inspect('drain', 'semaphore')).holders.map((h) => h.owner), [again.owner]);
      await again.release();
    });

    t('a lease that is not renewed expires after its TTL, not before', async () => {
      const a = await client();
      const b = await client();
      const ttlMs = ms(300);
      const before = monotonicNow();
      const lease = await a.mutex('ttl').acquire({ ttlMs });
      const granted = monotonicNow();
      const next = await b.mutex('ttl').acquire({ ttlMs: 5000, timeoutMs: 5000 });
      const acquired = monotonicNow();
      assert.ok(acquired - before >= ttlMs, `re-acquired ${(acquired - before).toFixed(1)} ms after the first grant began, before its TTL of ${ttlMs} ms`);
      assert.ok(acquired - granted <= ttlMs + 1000, `re-acquired only ${(acquired - granted).toFixed(1)} ms after the grant`);
      assertLater(b, next, lease);
      assert.equal(lease.held, false);
    });

    t('a signal kept from before the process stalled past the TTL reads aborted at once after the stall, before any timer runs', async () => {
      const a = await client();
      const ttlMs = ms(200);
      const lease = await a.mutex('kept').acquire({ ttlMs });
      const kept = lease.signal;
      const started = monotonicNow();
      // The event loop is blocked past the TTL: no timer of baton's runs meanwhile.
      while (monotonicNow() - started < ttlMs + 20) {
        // spin
      }
      assert.equal(kept.aborted, true, 'a kept signal is not late');
      assert.ok(kept.reason instanceof LeaseLostError);
      assert.throws(() => kept.throwIfAborted(), LeaseLostError);
      assert.equal(lease.held, false);
    });

    t('lease.signal aborts with reason expired when the TTL runs out', async () => {
      const a = await client();
      const ttlMs = ms(200);
      const lease = await a.mutex('sig').acquire({ ttlMs });
      // The lease's TTL started before the grant came back: from here, its whole TTL is surely over by started + ttlMs.
      const started = monotonicNow();
      const lost = aborted(lease.signal);
      // Whatever the timers do, a read of the signal once the store's TTL has run out sees the loss.
      while (monotonicNow() - started < ttlMs) await sleep(Math.max(1, ttlMs - (monotonicNow() - started)));
      assert.equal(lease.signal.aborted, true, 'signal still live after the TTL');
      const reason = await lost;
      assert.ok(reason instanceof LeaseLostError);
      assert.equal(reason.reason, 'expired');
      assert.equal(reason.code, 'LEASE_LOST');
      assert.equal(reason.token, lease.token);
    });

    t('extend keeps the lock past its first TTL, for the owner only', async () => {
      const a = await client();
      const b = await client();
      const lease = await a.mutex('ext').acquire({ ttlMs: ms(200) });
      await lease.extend(ms(2000));
      await sleep(ms(300));
      assert.equal(await b.mutex('ext').tryAcquire(), null, 'the extended lease still holds the lock');
      assert.equal(lease.held, true);
      assert.deepEqual(await b.store.extend({ kind: 'mutex', name: 'ext' }, 'f'.repeat(32), 5000, storeCall(5000)), { held: false }, 'a stranger cannot extend');
      assert.equal(await b.store.release({ kind: 'mutex', name: 'ext' }, 'f'.repeat(32), storeCall(5000)), false, 'a stranger cannot release');
      assert.equal((await b.inspect('ext')).holders[0]?.owner, lease.owner);
    });

    t('a stale lease cannot release or extend the lock its successor holds', async () => {
      const a = await client();
      const b = await client();
      const stale = await a.mutex('stale').acquire({ ttlMs: ms(150) });
      const fresh = await b.mutex('stale').acquire({ ttlMs: 5000, timeoutMs: 5000 });
      await assert.rejects(stale.extend(5000), (error: unknown) => error instanceof LeaseLostError && error.reason === 'expired');
      await assert.rejects(stale.release(), (error: unknown) => error instanceof LeaseLostError);
      const state = await b.inspect('stale');
      assert.deepEqual(state.holders.map((h) => h.owner), [fresh.owner], 'the successor still holds the lock');
      assert.equal(fresh.held, true);
    });

    t('tokens strictly increase across clients, releases, expiries and forced releases', async () => {
      const a = await client();
      const b = await client();
      const tokens: bigint[] = [];
      for (let i = 0; i < 10; i++) {
        const lease = await (i % 2 ? a : b).mutex('tok').acquire({ ttlMs: 5000 });
        tokens.push(lease.token);
        await lease.release();
      }
      tokens.push((await a.mutex('tok').acquire({ ttlMs: ms(50) })).token);
      await sleep(ms(80));
      tokens.push((await b.mutex('tok').acquire({ ttlMs: 5000 })).token);
      assert.equal(await a.forceRelease('tok'), 1);
      const last = await b.mutex('tok').acquire({ ttlMs: 5000 });
      tokens.push(last.token);
      for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `token ${tokens[i]} after ${tokens[i - 1]}`);
      assert.equal((await a.inspect('tok')).fence, last.token);
    });

    t('prune removes the names nobody holds or waits for, of one kind when asked, and a pruned name used again issues higher tokens', async () => {
      const a = await client();
      const b = await client();
      let last = await a.mutex('idle').acquire({ ttlMs: 5000 });
      for (let i = 0; i < 3; i++) {
        await last.release();
        last = await a.mutex('idle').acquire({ ttlMs: 5000 });
      }
      await last.release();
      const stale = await a.mutex('stale').acquire({ ttlMs: ms(50) });
      await (await a.semaphore('idle', { permits: 2 }).acquire({ ttlMs: 5000 })).release();
      const busy = await b.mutex('busy').acquire({ ttlMs: 5000 });
      await sleep(ms(80));
      const names = async (kind?: LockKind): Promise<string[]> => (await a.list(kind ? { kind } : undefined)).map((state) => `${state.kind}:${state.name}`);

      await assert.rejects(a.prune({ kind: 'lock' as LockKind }), InvalidArgumentError);
      const semaphores = await names('semaphore');
      const mutexes = await names('mutex');
      assert.equal(await b.prune({ kind: 'semaphore' }), semaphores.length, `pruned the semaphores ${semaphores.join(', ')}`);
      assert.deepEqual(await names('semaphore'), []);
      assert.deepEqual(await names('mutex'), mutexes, 'a prune of semaphores leaves the mutexes');

      // A store that keeps idle names lists them until they are pruned; every store keeps the held one.
      assert.equal(await b.prune(), mutexes.length - 1, `pruned all of ${mutexes.join(', ')} but the held one`);
      assert.deepEqual(await names(), ['mutex:busy']);
      await busy.extend(5000);
      assert.deepEqual((await a.inspect('busy')).holders.map((h) => h.owner), [busy.owner]);
      assert.equal(await b.prune(), 0);

      const again = await a.mutex('idle').acquire({ ttlMs: 5000 });
      assertLater(a, again, last);
      assertLater(a, await a.mutex('stale').acquire({ ttlMs: 5000 }), stale);
      await (await a.semaphore('idle', { permits: 3 }).acquire({ ttlMs: 5000 })).release();
      assert.equal(await b.mutex('busy').tryAcquire({ ttlMs: 5000 }), null, 'the held name still excludes');
      await busy.release();
    });

    t('inspect and list say who holds a lease: its host, pid and command, and the label given to acquire', async () => {
      const a = await client({ holder: { command: 'node nightly.js' } });
      const b = await client({ holder: false });
      const lease = await a.mutex('who').acquire({ ttlMs: 5000, label: 'run 42' });
      const [seen] = (await b.inspect('who')).holders;
      assert.deepEqual(seen?.holder, { host: hostname(), pid: process.pid, command: 'node nightly.js', label: 'run 42' });
      assert.equal(seen?.value, undefined);
      assert.equal(seen?.foreign, undefined);
      await lease.release();
      const bare = await b.mutex('who').acquire({ ttlMs: 5000 });
      assert.deepEqual((await a.inspect('who')).holders.map((h) => [h.owner, h.holder]), [[bare.owner, undefined]], 'an instance made with holder: false stores nothing');
      await bare.release();
      const permit = await a.semaphore('who', { permits: 2 }).acquire({ ttlMs: 5000 });
      const listed = (await b.list({ kind: 'semaphore' })).find((lock) => lock.name === 'who');
      assert.deepEqual(listed?.holders.map((h) => [h.owner, h.holder?.pid, h.holder?.label]), [[permit.owner, process.pid, undefined]]);
      await permit.release();
      await assert.rejects(a.mutex('who').acquire({ label: 42 as unknown as string }), InvalidArgumentError);
      await assert.rejects(a.mutex('who').tryAcquire({ label: 'x'.repeat(201) }), InvalidArgumentError);
      assert.throws(() => createBaton(a.store, { holder: { pid: -1 } }), InvalidArgumentError);
    });

    t('names are kept apart byte for byte: a name that is not well-formed Unicode is refused, astral and replacement characters are distinct locks', async () => {
      const a = await client();
      for (const name of ['\ud800', '\udc00', 'a\ud800']) {
        assert.throws(() => a.mutex(name), InvalidArgumentError);
        assert.throws(() => a.semaphore(name, { permits: 2 }), InvalidArgumentError);
        assert.throws(() => a.election(name), InvalidArgumentError);
        await assert.rejects(a.inspect(name), InvalidArgumentError);
        await assert.rejects(a.forceRelease(name), InvalidArgumentError);
      }
      const names = ['\ufffd', 'a\ufffd', '\u{1f512}', 'a\u{1f512}', 'e\u0301', '\u00e9'];
      const leases = await Promise.all(names.map((name) => a.mutex(name).tryAcquire({ ttlMs: 5000 })));
      assert.ok(leases.every((lease) => lease !== null), 'each name is its own lock');
      const listed = (await a.list({ kind: 'mutex' })).map((lock) => lock.name).sort();
      assert.deepEqual(listed, [...names].sort());
      for (const lease of leases) await lease!.release();
    });

    t('tokens keep increasing after every client and the store restart', async () => {
      const a = await client();
      const first = await a.mutex('restart').acquire({ ttlMs: 5000 });
      await first.release();
      await Promise.all(open.splice(0).map((baton) => baton.close()));
      await backing!.restart?.();
      const b = await client();
      const second = await b.mutex('restart').acquire({ ttlMs: 5000 });
      assert.ok(second.token > first.token, `token ${second.token} after restart, ${first.token} before`);
    });

    t('a forced release aborts the holder signal with reason revoked at its next renewal', async () => {
      const a = await client();
      const admin = await client();
      const lease = await a.mutex('rev').acquire({ ttlMs: ms(600), autoRenew: true });
      const lost = aborted(lease.signal);
      assert.equal(await admin.forceRelease('rev'), 1);
      const reason = await lost;
      assert.ok(reason instanceof LeaseLostError);
      assert.equal(reason.reason, 'revoked');
      const next = await admin.mutex('rev').acquire({ ttlMs: 5000 });
      assertLater(admin, next, lease);
      await assert.rejects(lease.release(), LeaseLostError);
      assert.deepEqual((await admin.inspect('rev')).holders.map((h) => h.owner), [next.owner]);
    });

    t('auto-renewal keeps a lease alive for several TTLs', async () => {
      const a = await client();
      const b = await client();
      let extended = 0;
      a.on('extended', () => extended++);
      const result = await a.withLock('renew', async (lease) => {
        for (let i = 0; i < 9; i++) {
          await sleep(ms(100));
          assert.equal(await b.mutex('renew').tryAcquire(), null);
          assert.equal(lease.signal.aborted, false);
        }
        return lease.token;
      }, { ttlMs: ms(300) });
      assert.equal(typeof result, a.store.guarantees.fencing ? 'bigint' : 'object');
      assert.ok(extended >= 3, `renewed ${extended} times in ${ms(900)} ms with a TTL of ${ms(300)} ms`);
      assert.ok(await b.mutex('renew').tryAcquire(), 'released after withLock');
    });

    t('acquire rejects with LockTimeoutError and leaves no waiter behind', async () => {
      const a = await client();
      const b = await client();
      await a.mutex('busy').acquire({ ttlMs: 5000 });
      const started = monotonicNow();
      await assert.rejects(b.mutex('busy').acquire({ timeoutMs: ms(150) }), (error: unknown) => error instanceof LockTimeoutError && error.code === 'LOCK_TIMEOUT' && error.timeoutMs === ms(150));
      assert.ok(monotonicNow() - started >= ms(150));
      // The queued place is removed as the acquire rejects (in the background if the store is slow).
      await until(async () => (await a.inspect('busy')).waiters.length === 0, 'the timed-out waiter left the queue');
      await assert.rejects(b.mutex('busy').acquire({ timeoutMs: 0 }), LockTimeoutError);
    });

    t('acquire rejects with the signal reason when aborted, and leaves no waiter behind', async () => {
      const a = await client();
      const b = await client();
      await a.mutex('abort').acquire({ ttlMs: 5000 });
      const controller = new AbortController();
      const pending = b.mutex('abort').acquire({ signal: controller.signal });
      await until(async () => (await a.inspect('abort')).waiters.length === 1, 'the waiter is queued');
      const reason = new Error('caller gave up');
      controller.abort(reason);
      await assert.rejects(pending, (error: unknown) => error === reason);
      await until(async () => (await a.inspect('abort')).waiters.length === 0, 'the aborted waiter left the queue');
      await assert.rejects(b.mutex('abort').acquire({ signal: AbortSignal.abort() }), (error: unknown) => error instanceof DOMException && error.name === 'AbortError');
    });

    t('waiters are granted in arrival order', async () => {
      const a = await client();
      const holder = await a.mutex('fifo').acquire({ ttlMs: 5000 });
      const order: number[] = [];
      const waiters: Promise<void>[] = [];
      const others = await Promise.all([1, 2, 3, 4, 5].map(() => client()));
      for (let i = 0; i < others.length; i++) {
        waiters.push(others[i]!.mutex('fifo').acquire({ ttlMs: 5000 }).then(async (lease) => {
          order.push(i);
          await sleep(5);
          await lease.release();
        }));
        // Let each waiter take its place before the next arrives.
        while ((await a.inspect('fifo')).waiters.length < i + 1) await sleep(5);
      }
      await holder.release();
      await Promise.all(waiters);
      assert.deepEqual(order, [0, 1, 2, 3, 4]);
    });

    t('tryAcquire does not overtake a queued waiter', async () => {
      const a = await client();
      const b = await client();
      const holder = await a.mutex('overtake').acquire({ ttlMs: 5000 });
      const waiting = b.mutex('overtake').acquire({ ttlMs: 5000 });
      while ((await a.inspect('overtake')).waiters.length < 1) await sleep(5);
      await holder.release();
      assert.equal(await a.mutex('overtake').tryAcquire(), null);
      const lease = await waiting;
      assert.ok(lease.token > holder.token);
    });

    t('a release wakes the next waiter without waiting for a poll', async () => {
      const a = await client();
      const b = await client({ queuePollMs: 10_000 });
      const holder = await a.mutex('wake').acquire({ ttlMs: 20_000 });
      const waiting = b.mutex('wake').acquire({ ttlMs: 5000 });
      while ((await a.inspect('wake')).waiters.length < 1) await sleep(5);
      const released = monotonicNow();
      await holder.release();
      await waiting;
      const handoff = monotonicNow() - released;
      assert.ok(handoff < 5000, `handoff took ${handoff.toFixed(0)} ms: the waiter was not woken, it polled`);
    });

    t('a release right before close still wakes the next waiter', async () => {
      const a = await client();
      const b = await client({ queuePollMs: 10_000 });
      const holder = await a.mutex('last-words').acquire({ ttlMs: 20_000 });
      const waiting = b.mutex('last-words').acquire({ ttlMs: 5000 });
      while ((await b.inspect('last-words')).waiters.length < 1) await sleep(5);
      const released = monotonicNow();
      await holder.release();
      await a.close();
      await waiting;
      const handoff = monotonicNow() - released;
      assert.ok(handoff < 5000, `handoff took ${handoff.toFixed(0)} ms: the wake-up was lost when the releaser closed`);
    });

    t('a release wakes one waiter, not all of them', async () => {
      const a = await client();
      const holder = await a.mutex('herd').acquire({ ttlMs: 20_000 });
      const counted = counting(backing!.connect());
      const b = createBaton(counted.store, { queuePollMs: 10_000 }) as Baton;
      open.push(b);
      const waiters = Array.from({ length: 10 }, () => b.mutex('herd').acquire({ ttlMs: 20_000 }));
      while ((await a.inspect('herd')).waiters.length < 10) await sleep(5);
      await sleep(ms(50));
      const before = counted.grants();
      await holder.release();
      const first = await Promise.race(waiters);
      await sleep(ms(200));
      // The next waiter asks again, or none does where the release handed it the lock.
      const woken = counted.grants() - before;
      assert.ok(woken <= 1, `${woken} waiters asked again after one release`);
      await first.release();
    });

    t('a crashed waiter leaves the queue after its queue TTL', async () => {
      const a = await client();
      const key = { kind: 'mutex', name: 'ghost' } as const;
      const holder = await a.mutex('ghost').acquire({ ttlMs: 5000 });
      const ghost = await a.store.grant({ key, owner: 'a'.repeat(32), mode: 'exclusive', limit: 1, ttlMs: 5000, enqueue: true, queueTtlMs: ms(100) }, storeCall(5000));
      assert.equal(ghost.granted, false);
      await holder.release();
      await sleep(ms(150));
      const next = await a.mutex('ghost').tryAcquire({ ttlMs: 5000 });
      assert.ok(next, 'the lock is free once the silent waiter expired');
    });

    t('inspect and list report holders, waiters and the last token', async () => {
      const a = await client();
      const b = await client();
      const lease = await a.mutex('seen').acquire({ ttlMs: 5000 });
      const waiting = b.mutex('seen').acquire({ ttlMs: 5000 });
      while ((await a.inspect('seen')).waiters.length < 1) await sleep(5);
      await a.semaphore('pool', { permits: 2 }).acquire({ ttlMs: 5000 });
      const state = await b.inspect('seen');
      assert.equal(state.name, 'seen');
      assert.equal(state.kind, 'mutex');
      assert.equal(state.fence, lease.token);
      assert.equal(state.holders.length, 1);
      const [holder] = state.holders;
      assert.equal(holder!.owner, lease.owner);
      assert.equal(holder!.token, lease.token);
      assert.equal(holder!.mode, 'exclusive');
      if (target.sessionTtlMs) {
        // The store reports its session's TTL, and what is left of it (etcd counts whole seconds, rounded down).
        assert.equal(holder!.ttlMs, target.sessionTtlMs);
        assert.ok(holder!.expiresInMs >= 0 && holder!.expiresInMs <= target.sessionTtlMs, `expires in ${holder!.expiresInMs} ms`);
      }
      else assert.ok(holder!.expiresInMs > 4000 && holder!.expiresInMs <= 5000);
      assert.equal(state.waiters.length, 1);
      assert.equal(state.waiters[0]!.position, 0);
      const all = await b.list();
      assert.deepEqual(all.map((lock) => `${lock.kind}:${lock.name}`).sort(), ['mutex:seen', 'semaphore:pool']);
      assert.deepEqual((await b.list({ kind: 'semaphore' })).map((lock) => lock.name), ['pool']);
      assert.deepEqual((await b.inspect('never-used')).holders, []);
      assert.equal((await b.inspect('never-used')).fence, 0n);
      await lease.release();
      await (await waiting).release();
    });

    t('withLock returns the result, releases, and rethrows errors after releasing', async () => {
      const a = await client();
      assert.equal(await a.withLock('wl', async () => 42), 42);
      assert.ok(await a.mutex('wl').tryAcquire());
      const failure = new Error('inside');
      await assert.rejects(a.withLock('wl2', async () => { throw failure; }), (error: unknown) => error === failure);
      assert.deepEqual((await a.inspect('wl2')).holders, []);
    });

    t('a second release rejects with LockNotHeldError', async () => {
      const a = await client();
      const lease = await a.mutex('twice').acquire({ ttlMs: 5000 });
      await lease.release();
      await assert.rejects(lease.release(), (error: unknown) => error instanceof LockNotHeldError && error.code === 'NOT_HELD');
      await assert.rejects(lease.extend(), LockNotHeldError);
    });

    t('close rejects pending acquires, releases held leases and refuses further use', async () => {
      const a = await client();
      const b = await client();
      const held = await a.mutex('closing').acquire({ ttlMs: 20_000 });
      const otherHeld = await b.mutex('other').acquire({ ttlMs: 20_000 });
      const pending = a.mutex('other').acquire();
      await until(async () => (await b.inspect('other')).waiters.length >= 1, 'the waiter is queued');
      const started = monotonicNow();
      await a.close();
      const took = monotonicNow() - started;
      assert.ok(took < CLOSE_TIMEOUT_MS, `close took ${took.toFixed(1)} ms, more than CLOSE_TIMEOUT_MS`);
      await assert.rejects(pending, ClosedError);
      assert.ok(held.signal.aborted);
      assert.equal((held.signal.reason as LeaseLostError).reason, 'closed');
      assert.ok(await b.mutex('closing').tryAcquire(), 'close released the lease');
      await until(async () => (await b.inspect('other')).waiters.length === 0, 'close left no waiter');
      assert.throws(() => a.mutex('x'), ClosedError);
      await assert.rejects(a.withLock('x', async () => 1), ClosedError);
      await otherHeld.release();
    });

    t('a read-write lock: readers share it, a writer excludes them and is excluded by them', async (context) => {
      const a = await client();
      const b = await client();
      if (lacks(context, a, ['mixedModes'])) return;
      const r1 = await a.rwlock('rw').read({ ttlMs: 5000 });
      const r2 = await b.rwlock('rw').tryRead({ ttlMs: 5000 });
      assert.ok(r2, 'a second reader shares the lock');
      assert.equal(await b.rwlock('rw').tryWrite(), null, 'a writer waits for the readers');
      const state = await a.rwlock('rw').inspect();
      assert.deepEqual(state.holders.map((h) => h.mode).sort(), ['shared', 'shared']);
      assert.equal(state.kind, 'rwlock');
      await r1.release();
      await r2.release();
      const w = await b.rwlock('rw').tryWrite({ ttlMs: 5000 });
      assert.ok(w, 'the writer holds once the readers are gone');
      assertLater(b, w, r2);
      assertLater(b, r2, r1);
      assert.equal(await a.rwlock('rw').tryRead(), null, 'a reader waits for the writer');
      assert.equal(await a.rwlock('rw').tryWrite(), null, 'a second writer waits for the writer');
      assert.deepEqual((await a.inspect('rw', 'rwlock')).holders.map((h) => [h.owner, h.mode]), [[w.owner, 'exclusive']]);
      await w.release();
      const r3 = await a.rwlock('rw').tryRead({ ttlMs: 5000 });
      assert.ok(r3);
      assertLater(a, r3, w);
      await r3.release();
      // A read-write lock is its own resource: a mutex of the same name does not see it.
      assert.ok(await a.mutex('rw').tryAcquire({ ttlMs: 5000 }));
    });

    t('a read-write lock: a waiting writer is not starved by readers that keep coming', async (context) => {
      const a = await client();
      const b = await client();
      const c = await client();
      if (lacks(context, a, ['mixedModes', 'fifo'])) return;
      const first = await a.rwlock('starve').read({ ttlMs: 5000 });
      const writer = b.rwlock('starve').write({ ttlMs: 5000, timeoutMs: ms(10_000) });
      await until(async () => (await a.inspect('starve', 'rwlock')).waiters.length === 1, 'the writer is queued');
      // Readers that come after the writer wait for it, though only readers hold.
      assert.equal(await c.rwlock('starve').tryRead(), null, 'a reader does not overtake a waiting writer');
      const later = c.rwlock('starve').read({ ttlMs: 5000, timeoutMs: ms(10_000) });
      await until(async () => (await a.inspect('starve', 'rwlock')).waiters.length === 2, 'the later reader is queued');
      await first.release();
      const w = await writer;
      assert.deepEqual((await a.inspect('starve', 'rwlock')).holders.map((h) => h.owner), [w.owner], 'the writer holds alone');
      await w.release();
      const r = await later;
      assertLater(a, r, w);
      await r.release();
    });

    t('a read-write lock serves readers and writers in arrival order, readers in a row together', async (context) => {
      const a = await client();
      if (lacks(context, a, ['mixedModes', 'fifo'])) return;
      const others = await Promise.all([1, 2, 3, 4].map(() => client()));
      const holder = await a.rwlock('fifo-rw').read({ ttlMs: 5000 });
      const modes = ['write', 'read', 'read', 'write'] as const;
      const granted: string[] = [];
      const leases: { lease: Promise<Lease> }[] = [];
      // Queued one by one, in this order.
      for (const [i, mode] of modes.entries()) {
        leases.push({ lease: others[i]!.rwlock('fifo-rw')[mode]({ ttlMs: 5000, timeoutMs: ms(10_000) }).then((lease) => (granted.push(`${mode}${i}`), lease)) });
        await until(async () => (await a.inspect('fifo-rw', 'rwlock')).waiters.length >= i + 1, `waiter ${i} is queued`);
      }
      const order = (await a.inspect('fifo-rw', 'rwlock')).waiters.map((w) => w.mode);
      assert.deepEqual(order, ['exclusive', 'shared', 'shared', 'exclusive']);
      await holder.release();
      const w0 = await leases[0]!.lease;
      assert.deepEqual(granted, ['write0']);
      await w0.release();
      const [r1, r2] = await Promise.all([leases[1]!.lease, leases[2]!.lease]);
      const state = await a.inspect('fifo-rw', 'rwlock');
      assert.deepEqual(state.holders.map((h) => h.owner).sort(), [r1.owner, r2.owner].sort(), 'the two readers in a row hold together');
      assert.deepEqual(state.waiters.map((w) => w.mode), ['exclusive'], 'the last writer waits for them');
      assertLater(a, r1, w0);
      assertLater(a, r2, w0);
      await r1.release();
      await r2.release();
      const w3 = await leases[3]!.lease;
      assert.deepEqual(granted.slice(0, 1).concat(granted.slice(3)), ['write0', 'write3']);
      assertLater(a, w3, r1.token! > r2.token! ? r1 : r2);
      await w3.release();
    });

    t('a read-write lock refuses an upgrade from read to write at once, keeping the read lease', async (context) => {
      const a = await client();
      const b = await client();
      if (lacks(context, a, ['mixedModes'])) return;
      const rw = a.rwlock('upgrade');
      const read = await rw.read({ ttlMs: 5000 });
      const started = monotonicNow();
      await assert.rejects(rw.write({ ttlMs: 5000, timeoutMs: ms(10_000) }), (error: unknown) => {
        assert.ok(error instanceof LockUpgradeError, String(error));
        assert.equal(error.code, 'UPGRADE_REFUSED');
        assert.equal(error.lockName, 'upgrade');
        return true;
      });
      await assert.rejects(rw.tryWrite(), LockUpgradeError);
      assert.ok(monotonicNow() - started < ms(2000), 'refused at once, not after waiting');
      assert.ok(read.held, 'the read lease is still held');
      const state = await b.inspect('upgrade', 'rwlock');
      assert.deepEqual([state.holders.map((h) => h.owner), state.waiters], [[read.owner], []], 'nothing was queued');
      // Another handle is another caller: it may wait for the reader.
      assert.equal(await a.rwlock('upgrade').tryWrite(), null);
      await read.release();
      const write = await rw.tryWrite({ ttlMs: 5000 });
      assert.ok(write, 'the handle writes once its read lease is released');
      await write.release();
    });

    t('a read-write lock downgrades a write lease to a read lease without letting a writer in between', async (context) => {
      const a = await client();
      const b = await client();
      const c = await client();
      if (lacks(context, a, ['mixedModes', 'downgrade'])) return;
      const rw = a.rwlock('down');
      const write = await rw.write({ ttlMs: 5000 });
      const token = write.token;
      const fifo = a.store.guarantees.fifo;
      // Queued behind the writer (where the store keeps a queue): a writer, then a reader.
      const writer = fifo ? c.rwlock('down').write({ ttlMs: 5000, timeoutMs: ms(10_000) }) : null;
      if (writer) await until(async () => (await a.inspect('down', 'rwlock')).waiters.length === 1, 'the second writer is queued');
      await rw.downgrade(write);
      assert.ok(write.held, 'the lease is still held');
      assert.equal(write.token, token, 'same token');
      const state = await a.inspect('down', 'rwlock');
      assert.deepEqual(state.holders.map((h) => [h.owner, h.mode]), [[write.owner, 'shared']]);
      if (a.store.guarantees.fencing) assert.equal(state.fence, token, 'no token was issued');
      if (writer) {
        // A reader arriving now queues behind the waiting writer, as every reader does.
        assert.equal(await b.rwlock('down').tryRead(), null);
      } else {
        const read = await b.rwlock('down').tryRead({ ttlMs: 5000 });
        assert.ok(read, 'another reader shares the downgraded lease');
        await read.release();
      }
      assert.equal(await b.rwlock('down').tryWrite(), null, 'the downgraded lease still excludes writers');
      await assert.rejects(rw.downgrade(write), InvalidArgumentError, 'a read lease is not downgraded again');
      await write.extend(5000);
      await write.release();
      if (writer) {
        const w = await writer;
        assertLater(a, w, write);
        await w.release();
      }
    });

    t('a read-write lock downgrade lets the readers queued behind the writer hold at once', async (context) => {
      const a = await client();
      const b = await client();
      const c = await client();
      if (lacks(context, a, ['mixedModes', 'downgrade', 'fifo'])) return;
      const rw = a.rwlock('down-wake');
      const write = await rw.write({ ttlMs: 5000 });
      const readers = [b, c].map((x) => x.rwlock('down-wake').read({ ttlMs: 5000, timeoutMs: ms(10_000) }));
      await until(async () => (await a.inspect('down-wake', 'rwlock')).waiters.length === 2, 'two readers are queued');
      await rw.downgrade(write);
      const held = await Promise.all(readers);
      assert.equal((await a.inspect('down-wake', 'rwlock')).holders.length, 3, 'the readers hold with the downgraded lease');
      for (const r of held) assertLater(a, r, write);
      for (const r of held) await r.release();
      await write.release();
    });

    t('lockAll takes every lock in one canonical order (the bytes of the names), as one lease', async () => {
      const a = await client();
      const b = await client();
      // Byte order, not locale order: upper case before lower case, and é (0xC3 0xA9) after z.
      const names = ['zeta', 'é', 'Alpha', 'alpha', 'mid'];
      const all = await a.lockAll(names, { ttlMs: 5000 });
      assert.deepEqual(all.names, ['Alpha', 'alpha', 'mid', 'zeta', 'é']);
      assert.ok(all.held && !all.signal.aborted);
      for (const name of names) assert.equal(await b.mutex(name).tryAcquire(), null, `${name} is held`);
      assert.equal(await b.tryLockAll(['other', 'mid']), null, 'a try that meets one held lock gets nothing');
      assert.ok(await b.mutex('other').tryAcquire({ ttlMs: 5000 }), 'and leaves nothing held');
      assert.deepEqual([...all.tokens.keys()], all.names);
      if (a.store.guarantees.fencing) for (const [name, token] of all.tokens) assert.equal(token, (await b.inspect(name)).holders[0]!.token);
      await all.extend(5000);
      await all.release();
      await assert.rejects(all.release(), LockNotHeldError);
      for (const name of names) {
        const lease = await b.mutex(name).tryAcquire({ ttlMs: 5000 });
        assert.ok(lease, `${name} is free after release`);
        assertLater(b, lease, { token: all.tokens.get(name)! });
      }
      await assert.rejects(a.lockAll(['x', 'x']), InvalidArgumentError, 'a name twice');
      await assert.rejects(a.lockAll([]), InvalidArgumentError, 'no names');
    });

    t('lockAll is all or nothing: a timeout, an abort or a failure releases what it took, in reverse', async () => {
      const a = await client();
      const b = await client();
      const busy = await b.mutex('m2').acquire({ ttlMs: 10_000 });
      const started = monotonicNow();
      await assert.rejects(a.lockAll(['m3', 'm2', 'm1'], { ttlMs: 5000, timeoutMs: ms(300) }), (error: unknown) => {
        assert.ok(error instanceof LockTimeoutError, String(error));
        assert.equal(error.timeoutMs, ms(300), 'the timeout bounds the whole');
        return true;
      });
      assert.ok(monotonicNow() - started < ms(300) + 2000, 'rejected by its timeout');
      await until(async () => (await a.inspect('m1')).holders.length === 0, 'm1, taken first, was released');
      assert.deepEqual((await a.inspect('m3')).holders, [], 'm3, after the busy one, was never taken');
      const controller = new AbortController();
      const aborting = a.lockAll(['m1', 'm2'], { ttlMs: 5000, signal: controller.signal });
      await until(async () => (await a.inspect('m1')).holders.length === 1, 'm1 is taken while m2 is awaited');
      const stop = new Error('stop');
      controller.abort(stop);
      // The abort's reason; or, on a loaded machine, a store call that failed first: either way all or nothing.
      await assert.rejects(aborting, (error: unknown) => error === stop || error instanceof StoreUnavailableError);
      await until(async () => (await a.inspect('m1')).holders.length === 0, 'the abort released m1');
      await busy.release();
      const all = await a.lockAll(['m1', 'm2', 'm3'], { ttlMs: 5000, timeoutMs: ms(5000) });
      await all[Symbol.asyncDispose]();
      assert.ok(await b.tryLockAll(['m1', 'm2', 'm3'], { ttlMs: 5000 }), 'dispose released every part');
    });

    t('a multi-lock lease\'s one signal aborts when any part is lost', async () => {
      const a = await client();
      const b = await client();
      const all = await a.lockAll(['p1', 'p2', 'p3'], { ttlMs: ms(900), autoRenew: true });
      const signal = all.signal;
      assert.equal(await b.forceRelease('p2'), 1);
      await until(async () => signal.aborted, 'the signal aborts');
      assert.ok(signal.reason instanceof LeaseLostError && signal.reason.lockName === 'p2', String(signal.reason));
      assert.equal(all.held, false);
      await assert.rejects(all.release(), LeaseLostError);
      for (const name of ['p1', 'p3']) assert.deepEqual((await b.inspect(name)).holders, [], `${name} was released too`);
    });

    t('a mark only grows: advanceMark moves it once per value, rewrites its note on request, and outlives prune', async (context) => {
      const a = await client();
      const b = await client();
      const store = a.store;
      if (!store.advanceMark || !store.listMarks) {
        context.skip('the store keeps no marks (no advanceMark): it cannot run scheduled jobs');
        return;
      }
      const key = { kind: 'mutex', name: 'job' } as const;
      const call = () => storeCall(5000);
      assert.deepEqual(await store.advanceMark(key, { to: -1 }, call()), { at: -1, advanced: false }, 'no mark yet');
      assert.deepEqual(await store.advanceMark(key, { to: 60_000, note: 'first' }, call()), { at: 60_000, note: 'first', advanced: true });
      assert.deepEqual(await b.store.advanceMark!(key, { to: 60_000, note: 'again' }, call()), { at: 60_000, note: 'first', advanced: false }, 'the same value is not advanced to twice');
      assert.deepEqual(await b.store.advanceMark!(key, { to: 59_000, note: 'older' }, call()), { at: 60_000, note: 'first', advanced: false }, 'a lower value does not move it');
      assert.deepEqual(await b.store.advanceMark!(key, { to: 60_000, note: '{"outcome":"ok"}\nline 2', renote: true }, call()), { at: 60_000, note: '{"outcome":"ok"}\nline 2', advanced: false }, 'renote rewrites the note of the mark at to');
      assert.deepEqual(await b.store.advanceMark!(key, { to: 59_000, note: 'x', renote: true }, call()), { at: 60_000, note: '{"outcome":"ok"}\nline 2', advanced: false }, 'renote leaves a mark at another value');
      assert.deepEqual(await b.store.advanceMark!(key, { to: 1_764_000_000_000 }, call()), { at: 1_764_000_000_000, advanced: true }, 'ms since the epoch, without a note');
      // Racing callers: one advances (on a quorum, at most one: racers can split the nodes).
      const racers = await Promise.all([1, 2, 3, 4, 5].map(async () => (await client()).store.advanceMark!(key, { to: 1_764_000_001_000, note: 'race' }, call())));
      const winners = racers.filter((r) => r.advanced).length;
      if (store.guarantees.fencing) assert.equal(winners, 1, 'exactly one racer advanced the mark');
      else assert.ok(winners <= 1, `${winners} racers advanced the mark`);
      // Marks live apart from locks: a lock of the same name, prune and forceRelease leave them.
      await a.mutex('job').acquire({ ttlMs: 5000 });
      assert.equal(await a.forceRelease('job'), 1);
      await a.prune();
      const after = await store.advanceMark(key, { to: -1 }, call());
      if (winners === 1) assert.equal(after.at, 1_764_000_001_000);
      assert.ok(after.at >= 1_764_000_000_000, 'the mark survived prune and forceRelease');
      assert.deepEqual((await b.store.listMarks!(undefined, call())).map((m) => [m.key.kind, m.key.name, m.at]), [['mutex', 'job', after.at]]);
      assert.deepEqual(await b.store.listMarks!({ kind: 'semaphore' }, call()), []);
    });

    t('bad input is rejected with InvalidArgumentError before the store is touched', async () => {
      const a = await client();
      assert.throws(() => a.mutex(''), InvalidArgumentError);
      assert.throws(() => a.mutex('x'.repeat(257)), InvalidArgumentError);
      for (const ttlMs of [0, -1, Number.NaN, 1.5, 2 ** 31]) {
        await assert.rejects(a.mutex('bad').acquire({ ttlMs }), InvalidArgumentError, `ttlMs ${ttlMs}`);
      }
      assert.throws(() => a.semaphore('bad', { permits: 0 }), InvalidArgumentError);
      assert.deepEqual(await a.list(), []);
    });

    for (const title of Object.keys(target.skip ?? {})) {
      if (!titles.has(title)) throw new Error(`${target.name} skips "${title}", which is not a test of the contract suite`);
    }
  });
}

/** sharedView: a connection to a store object that several clients share; closing it leaves the store open for the others. */
export function sharedView(store: LockStore): LockStore {
  return wrapStore(store, { close: async () => undefined });
}
