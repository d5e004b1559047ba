/**
 * Acceptance on DynamoDB (dynalite, in a process of its own) with real processes and real
 * signals, using the holder fixture of the SQLite and etcd tests (given a dynamodb:// URL):
 * a holder SIGKILLed, and a holder SIGSTOPped past its TTL. No process trusts a clock but its
 * own: the waiter removes the dead holder's entry once it has seen its record version
 * unchanged for a whole TTL, so the lock is free one TTL after the waiter's first sight of
 * the last renewal, plus the waiter's next poll (baton's backoff: up to 500 ms), hence the
 * bound TTL + 500 ms + 500 ms after the kill.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBaton, monotonicNow } from '../../src/index.js';
import { openStore } from '../../src/url.js';
import { Fixture } from '../helpers/process.js';
import { DYNALITE_CREDENTIALS, DYNALITE_REGION, startDynalite, type DynaliteServer } from '../helpers/dynalite-server.js';
import { checkPausedHolder } from '../helpers/paused-holder.js';

/** The waiter's longest poll period (baton's default `maxBackoffMs`) and the margin the issue gives. */
const POLL_MS = 500;
const MARGIN_MS = 500;

describe('DynamoDB store across processes', () => {
  let dir: string;
  let server: DynaliteServer;
  let url: string;
  const running: Fixture[] = [];
  const spawnFixture = (script: string, args: string[]): Fixture => {
    const fixture = new Fixture(script, args, { AWS_ACCESS_KEY_ID: DYNALITE_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: DYNALITE_CREDENTIALS.secretAccessKey });
    running.push(fixture);
    return fixture;
  };
  const open = async (): Promise<ReturnType<typeof createBaton>> => createBaton(await openStore(url));

  before(async () => {
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: DYNALITE_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: DYNALITE_CREDENTIALS.secretAccessKey });
    dir = mkdtempSync(join(tmpdir(), 'baton-accept-dynamodb-'));
    server = await startDynalite();
    await server.table('locks');
    url = `dynamodb://127.0.0.1:${server.port}/locks?region=${DYNALITE_REGION}`;
  });
  after(async () => {
    for (const fixture of running) fixture.kill('SIGKILL');
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`a SIGKILLed holder: the waiter (another process) gets the lock within TTL + ${POLL_MS} + ${MARGIN_MS} ms of the kill, never before one TTL after the last renewal began`, async (t) => {
    const ttl = 1000;
    const register = join(dir, 'kill-register.db');
    const holder = spawnFixture('holder.js', [url, register, 'job', String(ttl), '60000']);
    await holder.waitFor((e) => e.e === 'acquired');
    await holder.waitFor((e) => e.e === 'renew-end');
    const waiter = spawnFixture('holder.js', [url, register, 'job', String(ttl), '100']);
    const baton = await open();
    while ((await baton.inspect('job')).waiters.length < 1) await new Promise((r) => setTimeout(r, 10));
    // Kill once the waiter is queued, right after a renewal landed.
    await holder.next('renew-end');
    holder.kill('SIGKILL');
    const killedAt = monotonicNow();
    await holder.exited;
    const acquired = await waiter.waitFor((e) => e.e === 'acquired');
    const lastEnd = holder.events.filter((e) => e.e === 'renew-end').at(-1)!;
    const lastStart = holder.events.filter((e) => e.e === 'renew-start' && e.at <= lastEnd.at).at(-1)!;
    t.diagnostic(`TTL ${ttl} ms; re-acquired ${(acquired.at - lastStart.at).toFixed(1)} ms after the last renewal began, ${(acquired.at - killedAt).toFixed(1)} ms after the kill`);
    assert.ok(acquired.at - lastStart.at >= ttl, `waiter got the lock ${(acquired.at - lastStart.at).toFixed(1)} ms after the last renewal began, before the TTL of ${ttl} ms`);
    assert.ok(acquired.at - killedAt <= ttl + POLL_MS + MARGIN_MS, `waiter got the lock ${(acquired.at - killedAt).toFixed(1)} ms after the kill`);
    const holderToken = BigInt(holder.events.find((e) => e.e === 'acquired')!.token as string);
    assert.ok(BigInt(acquired.token as string) > holderToken);
    await baton.close();
    assert.equal((await waiter.exited).code, 0, waiter.stderr);
  });

  it('a holder SIGSTOPped past its TTL: on resume its signal aborts before its next write, its stale write is refused, its late release frees nothing', async () => {
    await checkPausedHolder({ url, dir, ttlMs: 1000, spawn: spawnFixture, open });
  });
});
