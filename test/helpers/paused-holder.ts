/**
 * The paused-holder acceptance check, written once for every store a holder fixture can open
 * (test/fixtures/holder.ts): a holder SIGSTOPped past its TTL while another process takes the
 * lock; on resume its signal aborts before its next write, its stale write is refused by the
 * fenced register, and its late release frees nothing.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { monotonicNow, type Baton } from '../../src/index.js';
import { openRegister } from '../fixtures/register.js';
import type { Fixture } from './process.js';

export interface PausedHolderSetup {
  /** The store's URL (or SQLite path) the holders open. */
  readonly url: string;
  /** A folder for the register's file. */
  readonly dir: string;
  readonly ttlMs: number;
  /** Starts a holder fixture (recorded for clean-up by the caller). */
  spawn(script: string, args: string[]): Fixture;
  /** A baton instance on the same store, for the final inspect. */
  open(): Promise<Baton<bigint | null>>;
}

export async function checkPausedHolder({ url, dir, ttlMs, spawn, open }: PausedHolderSetup): Promise<void> {
  const registerPath = join(dir, 'pause-register.db');
  const old = spawn('holder.js', [url, registerPath, 'pause', String(ttlMs), '60000']);
  await old.waitFor((e) => e.e === 'write');
  await old.next('write');
  old.kill('SIGSTOP');
  const stoppedAt = monotonicNow();
  const oldToken = BigInt(old.events.find((e) => e.e === 'acquired')!.token as string);

  const next = spawn('holder.js', [url, registerPath, 'pause', String(ttlMs), '3000']);
  const nextAcquired = await next.waitFor((e) => e.e === 'acquired');
  assert.ok(nextAcquired.at - stoppedAt >= ttlMs - 400, 'the successor could not get the lock while the paused lease was still valid');
  await next.waitFor((e) => e.e === 'write');
  const nextToken = BigInt(nextAcquired.token as string);
  assert.ok(nextToken > oldToken);

  const resumedAt = monotonicNow();
  old.kill('SIGCONT');
  const lost = await old.waitFor((e) => e.e === 'lost');
  assert.equal(lost.reason, 'expired');
  const afterResume = old.events.filter((e) => e.at >= resumedAt);
  assert.equal(afterResume.filter((e) => e.e === 'write').length, 0, `wrote after resuming: ${JSON.stringify(afterResume)}`);
  const lateWrite = await old.waitFor((e) => e.e === 'late-write');
  assert.equal(lateWrite.accepted, false, 'the register refused the write with the old token');
  const lateRelease = await old.waitFor((e) => e.e === 'late-release');
  assert.deepEqual([lateRelease.ok, lateRelease.code], [false, 'LEASE_LOST']);

  const baton = await open();
  const state = await baton.inspect('pause');
  assert.deepEqual(state.holders.map((h) => h.owner), [nextAcquired.owner], 'the successor still holds the lock');
  await baton.close();
  const register = openRegister(registerPath);
  assert.equal(register.read().token, nextToken);
  register.close();
  assert.equal((await old.exited).code, 0, old.stderr);
  assert.equal((await next.exited).code, 0, next.stderr);
}
