/**
 * `baton run` on a Redis that stalls (SIGSTOPped) while the lock is held, as real processes:
 * the lease cannot be renewed, so baton must treat it as lost by its TTL, stop the command
 * (SIGTERM, then SIGKILL after --grace for a command that ignores SIGTERM) and exit with the
 * lost-lock code, without waiting for a server that does not answer.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { monotonicNow } from '../../src/index.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { startRedis } from '../helpers/redis-server.js';

const MAIN = resolve('build/src/cli/main.js');

/** Whether process `pid` still exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('baton run on a stalled Redis', { timeout: 60_000 }, () => {
  it('kills a command that ignores SIGTERM and exits 76 within TTL + grace + 1 s of the SIGSTOP', async (t) => {
    const ttlMs = 2000;
    const graceMs = 1000;
    const server = await startRedis();
    let commandPid = 0;
    const child = spawn(process.execPath, [MAIN, 'run', 'job', '--ttl', '2s', '--grace', '1s', '--store', server.url, '--', 'sh', '-c', 'trap "" TERM; echo "ready $$"; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BATON_DEBUG: '' },
    });
    let stdout = '';
    let stderr = '';
    let lostAt = 0;
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (!lostAt && stderr.includes('was lost')) lostAt = monotonicNow();
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((done) => child.once('exit', (code, signal) => done({ code, signal, at: monotonicNow() })));
    try {
      const deadline = Date.now() + 15_000;
      while (!/ready (\d+)/.test(stdout)) {
        if (child.exitCode !== null) throw new Error(`baton exited (${child.exitCode}) before the command ran; stderr: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`the command did not start within 15 s; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      commandPid = Number(/ready (\d+)/.exec(stdout)![1]);
      server.pause();
      const stoppedAt = monotonicNow();
      const bound = ttlMs + graceMs + 1000;
      // When the command dies (it is baton's child; polled, as nothing else tells this test).
      let commandDiedAt = 0;
      const poll = setInterval(() => {
        if (!commandDiedAt && !alive(commandPid)) commandDiedAt = monotonicNow();
      }, 10);
      const result = await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), bound + 5000).unref())]);
      clearInterval(poll);
      assert.ok(result, `baton was still running ${bound + 5000} ms after the SIGSTOP; stderr: ${stderr}`);
      const took = result.at - stoppedAt;
      const since = (at: number): string => (at ? `${(at - stoppedAt).toFixed(0)} ms` : 'never');
      t.diagnostic(`after the SIGSTOP: lost reported ${since(lostAt)}, command gone ${since(commandDiedAt)}, baton exited ${since(result.at)} (bound ${bound} ms), code ${result.code}`);
      assert.deepEqual([result.code, result.signal], [EXIT.lost, null], `exit; stderr: ${stderr}`);
      assert.match(stderr, /^baton: lock "job" was lost \(expired\); stopping the command\n$/, 'the loss, and nothing else, is reported');
      assert.equal(alive(commandPid), false, 'the command that ignored SIGTERM was killed');
      assert.ok(took <= bound, `baton exited ${took.toFixed(0)} ms after the SIGSTOP, past TTL + grace + 1 s = ${bound} ms; stderr: ${stderr}`);
    } finally {
      server.resume();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      if (commandPid && alive(commandPid)) process.kill(commandPid, 'SIGKILL');
      await exited;
      await server.stop();
    }
  });
});
