// What `baton run` shows while it waits: the report, on a terminal and off one, over a real memory store.
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { reportWaiting } from '../../src/cli/waiting.js';
import type { Io } from '../../src/cli/io.js';

function recorder(terminal: boolean): Io & { lines: string[]; statuses: string[] } {
  const lines: string[] = [];
  const statuses: string[] = [];
  return { out: () => undefined, err: (line) => void lines.push(line), env: {}, errIsTerminal: terminal, status: (line) => void statuses.push(line), lines, statuses };
}

it('on a terminal, a wait over a second shows its place in the queue and the holder, rewritten in place, and the line is cleared when it ends', async () => {
  const store = createMemoryStore();
  const holder = createBaton(store, { holder: { command: './deploy.sh' } });
  const waiter = createBaton(store);
  const io = recorder(true);
  try {
    const lease = await holder.mutex('deploy').acquire({ ttlMs: 10_000, label: 'deploy 381' });
    const report = reportWaiting(waiter as never, 'deploy', 'mutex', io, false);
    const waiting = waiter.mutex('deploy').acquire({ ttlMs: 10_000, timeoutMs: 10_000 });
    for (const end = Date.now() + 5000; io.statuses.length < 2 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 50));
    assert.ok(io.statuses.length >= 2, `reports: ${io.statuses.length}`);
    assert.match(io.statuses[0]!, new RegExp(`^baton: waiting for mutex "deploy", position 1 of 1 in the queue; held by ${hostname()}:${process.pid} "deploy 381" \\./deploy\\.sh \\(\\ds\\)$`));
    assert.deepEqual(io.lines, [], 'nothing but the status line');
    await lease.release();
    await (await waiting).release();
    report.stop();
    assert.equal(io.statuses.at(-1), '', 'the line is cleared');
  } finally {
    await waiter.close();
    await holder.close();
  }
});

it('off a terminal it is silent unless verbose, and verbose writes a line only when what it says changes', async () => {
  const store = createMemoryStore();
  const holder = createBaton(store);
  const waiter = createBaton(store);
  const quiet = recorder(false);
  const verbose = recorder(false);
  try {
    const lease = await holder.semaphore('pool', { permits: 1 }).acquire({ ttlMs: 10_000 });
    const reports = [reportWaiting(waiter as never, 'pool', 'semaphore', quiet, false), reportWaiting(waiter as never, 'pool', 'semaphore', verbose, true)];
    const waiting = waiter.semaphore('pool', { permits: 1 }).acquire({ ttlMs: 10_000, timeoutMs: 10_000 });
    await new Promise((r) => setTimeout(r, 3400));
    assert.deepEqual([quiet.lines, quiet.statuses], [[], []]);
    assert.equal(verbose.lines.length, 1, verbose.lines.join('\n'));
    assert.match(verbose.lines[0]!, /^baton: waiting for semaphore "pool", position 1 of 1 in the queue; held by \S+:\d+ \(1s\)$/);
    await lease.release();
    await (await waiting).release();
    for (const report of reports) report.stop();
    assert.deepEqual(verbose.statuses, []);
  } finally {
    await waiter.close();
    await holder.close();
  }
});
