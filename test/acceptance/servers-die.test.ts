/**
 * No server outlives its test file. The helpers record each server's PID in the file's PID
 * file and kill it when their process exits; when that process is killed by a signal (no exit
 * handler runs), the test runner's clean-up (scripts/reap.mjs) kills what was recorded. Each
 * case runs the helpers in a fixture process with a PID file of its own.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { adopt } from '../helpers/children.js';
import { Fixture, killProcess } from '../helpers/process.js';
import { until } from '../helpers/wait.js';

interface Reaper {
  /** reap kills what a PID file recorded and still runs; returns what it killed. */
  reap(pidFile: string): Promise<{ pid: number; label: string }[]>;
  /** startTime: null once no such process runs (a zombie counts as gone: it has exited). */
  startTime(pid: number): string | null;
}
const { reap, startTime } = (await import(pathToFileURL(resolve('scripts/reap.mjs')).href)) as Reaper;

const dir = mkdtempSync(join(tmpdir(), 'baton-servers-die-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function owner(kind: 'redis' | 'etcd', crash: boolean): Promise<{ fixture: Fixture; pid: number; pidFile: string }> {
  const pidFile = join(dir, `${kind}-${crash ? 'crash' : 'kill'}.pids`);
  const fixture = new Fixture('server-owner.js', crash ? [kind, 'crash'] : [kind], { BATON_TEST_PIDS: pidFile });
  const serving = await fixture.waitFor((event) => event.e === 'serving', 30_000);
  return { fixture, pid: serving.pid as number, pidFile };
}

for (const kind of ['redis', 'etcd'] as const) {
  describe(`${kind === 'redis' ? 'a redis-server' : 'an etcd member'} started through the helpers`, () => {
    it('outlives a SIGKILLed owner, and is gone once the runner has reaped the PID file', async () => {
      const { fixture, pid, pidFile } = await owner(kind, false);
      fixture.kill('SIGKILL');
      await fixture.exited;
      assert.notEqual(startTime(pid), null, `the server (PID ${pid}) died with its owner: the runner's clean-up was not put to the test`);
      const killed = await reap(pidFile);
      assert.deepEqual(killed.map((entry) => entry.pid), [pid]);
      assert.equal(startTime(pid), null, `PID ${pid} still runs after the runner's clean-up`);
      assert.deepEqual(await reap(pidFile), [], 'a second clean-up finds nothing left');
    });

    it('dies with an owner that dies of an uncaught error', async () => {
      const { fixture, pid, pidFile } = await owner(kind, true);
      const { code } = await fixture.exited;
      assert.equal(code, 1, fixture.stderr);
      await until(() => startTime(pid) === null, `the exit of the server (PID ${pid}) with its owner`, { ms: 5000 });
      assert.deepEqual(await reap(pidFile), [], 'the exit handler left nothing to reap');
    });
  });
}

it('the runner never kills a PID that was reused by another process', async () => {
  const other = adopt(spawn('sleep', ['30'], { stdio: 'ignore' }), 'sleep 30');
  try {
    const pidFile = join(dir, 'reused.pids');
    writeFileSync(pidFile, `+${other.pid} 1 redis-server on a port long closed\n`);
    assert.deepEqual(await reap(pidFile), []);
    assert.notEqual(startTime(other.pid!), null);
  } finally {
    await killProcess(other);
  }
});
