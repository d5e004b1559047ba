/**
 * Acceptance on etcd with real processes and real signals, using the same holder fixture as
 * the SQLite acceptance test (given an etcd:// URL): a holder SIGKILLed, and a holder
 * SIGSTOPped past its TTL. The session TTL is 1 s (the test member's smallest); etcd
 * revokes expired leases on its own schedule (every 500 ms), hence the bound TTL + 1 s. The
 * holder logs its session's keep-alives (`EtcdStore.onKeepAlive`), which are what keeps its
 * lease on etcd.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBaton, monotonicNow } from '../../src/index.js';
import { openStore } from '../../src/url.js';
import { Fixture } from '../helpers/process.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';
import { checkPausedHolder } from '../helpers/paused-holder.js';

describe('etcd store across processes', () => {
  let dir: string;
  let cluster: EtcdCluster;
  let url: string;
  const running: Fixture[] = [];
  const spawnFixture = (script: string, args: string[]): Fixture => {
    const fixture = new Fixture(script, args);
    running.push(fixture);
    return fixture;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-accept-etcd-'));
    cluster = await startEtcd(1);
    url = `etcd://${cluster.endpoints[0]!.slice('http://'.length)}?sessionTtlMs=1000`;
  });
  after(async () => {
    for (const fixture of running) fixture.kill('SIGKILL');
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a SIGKILLed holder: the waiter gets the lock within session TTL + 1 s of the kill, never before one session TTL after the last keep-alive was sent', async (t) => {
    const ttl = 1000;
    const register = join(dir, 'kill-register.db');
    const holder = spawnFixture('holder.js', [url, register, 'job', String(ttl), '60000']);
    // What keeps an etcd lease on the server is the store's session, which the holder renews
    // once for all its entries (`extend` asks etcd nothing): the bounds are its keep-alives'.
    const renewed = (e: { e: string; state?: unknown }): boolean => e.e === 'keep-alive' && e.state === 'renewed';
    await holder.waitFor((e) => e.e === 'acquired');
    await holder.waitFor(renewed);
    const waiter = spawnFixture('holder.js', [url, register, 'job', String(ttl), '100']);
    const baton = createBaton(await openStore(url));
    while ((await baton.inspect('job')).waiters.length < 1) await new Promise((r) => setTimeout(r, 10));
    const seen = holder.events.length;
    await holder.waitFor((e) => renewed(e) && holder.events.indexOf(e) >= seen);
    holder.kill('SIGKILL');
    const killedAt = monotonicNow();
    await holder.exited;
    const acquired = await waiter.waitFor((e) => e.e === 'acquired');
    // A keep-alive sent (answered or not) may have renewed the session on etcd: the session lasts at least its TTL after the last one.
    const lastSent = holder.events.filter((e) => e.e === 'keep-alive' && (e.state === 'sent' || e.state === 'grant')).at(-1)!;
    const sessionTtl = lastSent.ttlMs as number;
    const sentAt = lastSent.sentAt as number;
    t.diagnostic(`session TTL ${sessionTtl} ms; re-acquired ${(acquired.at - sentAt).toFixed(1)} ms after the last keep-alive was sent, ${(acquired.at - killedAt).toFixed(1)} ms after the kill`);
    assert.ok(acquired.at - sentAt >= sessionTtl, `waiter got the lock ${(acquired.at - sentAt).toFixed(1)} ms after the last keep-alive was sent, before the session TTL of ${sessionTtl} ms`);
    assert.ok(acquired.at - killedAt <= sessionTtl + 1000, `waiter got the lock ${(acquired.at - killedAt).toFixed(1)} ms after the kill`);
    const holderToken = BigInt(holder.events.find((e) => e.e === 'acquired')!.token as string);
    assert.ok(BigInt(acquired.token as string) > holderToken);
    await baton.close();
    assert.equal((await waiter.exited).code, 0, waiter.stderr);
  });

  it('a holder SIGSTOPped past its TTL: on resume its signal aborts before its next write, its stale write is refused, its late release frees nothing', async () => {
    await checkPausedHolder({ url, dir, ttlMs: 1000, spawn: spawnFixture, open: async () => createBaton(await openStore(url)) });
  });
});
