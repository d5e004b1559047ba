/**
 * The multi-lock acceptance run, shared by one test file a store (each file gets its own time
 * limit): `WORKERS` processes each take random overlapping subsets of 5 names, in random
 * orders, `TIMES` times, with `lockAll`. The run ends within its bound (no deadlock), and no
 * name ever had two holders at once: each name's unfenced counter ends at exactly the number
 * of times it was taken (a lost update would leave it short), and on a store with fencing
 * each name's fenced register accepted every write, in token order.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { monotonicNow } from '../../src/index.js';
import { Fixture } from '../helpers/process.js';
import { openRegister } from '../fixtures/register.js';

const NAMES = ['alpha', 'beta', 'gamma', 'delta', 'epsilon'];
const WORKERS = 8;
const TIMES = 200;
/** The bound the whole run ends within: far above what it takes (30 to 90 s), far below a deadlock's forever. */
const BOUND_MS = 300_000;

/** runMultiLock runs the workers on the store at `url` (fencing checked when `fenced`), and checks what they did. */
export async function runMultiLock(t: TestContext, label: string, url: string, fenced: boolean): Promise<void> {
  const place = mkdtempSync(join(tmpdir(), `baton-multi-${label}-`));
  const running: Fixture[] = [];
  try {
    for (const name of NAMES) writeFileSync(join(place, `${name}.json`), '0');
    const startedAt = monotonicNow();
    for (let i = 0; i < WORKERS; i++) running.push(new Fixture('multi-lock-worker.js', [url, place, NAMES.join(','), String(TIMES), fenced ? '1' : '0']));
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<'bound'>((resolve) => (timer = setTimeout(() => resolve('bound'), BOUND_MS)));
    const ended = await Promise.race([Promise.all(running.map((w) => w.exited)), bound]);
    clearTimeout(timer);
    if (ended === 'bound') assert.fail(`the run did not end within ${BOUND_MS} ms: a deadlock, or a store far too slow`);
    const took = monotonicNow() - startedAt;
    for (const [i, exit] of ended.entries()) assert.equal(exit.code, 0, `worker ${i} exited ${JSON.stringify(exit)}: ${running[i]!.stderr}`);
    const done = running.map((w) => w.events.find((e) => e.e === 'done')!);
    const totals = Object.fromEntries(NAMES.map((name) => [name, done.reduce((sum, d) => sum + (d.takes as Record<string, number>)[name]!, 0)]));
    const counters = Object.fromEntries(NAMES.map((name) => [name, Number(readFileSync(join(place, `${name}.json`), 'utf8'))]));
    t.diagnostic(`${label}: ${WORKERS} processes x ${TIMES} multi-locks in ${(took / 1000).toFixed(1)} s; takes per name ${JSON.stringify(totals)}`);
    assert.deepEqual(counters, totals, 'every name\'s counter counts every take: no update was lost to a second holder');
    assert.ok(Object.values(totals).reduce((a, b) => a + b, 0) >= WORKERS * TIMES * 2, 'every multi-lock took at least 2 names');
    if (fenced) {
      assert.deepEqual(done.map((d) => d.refused), new Array(WORKERS).fill(0), 'no fenced write was refused');
      for (const name of NAMES) {
        const register = openRegister(join(place, `${name}.db`));
        const state = register.read();
        register.close();
        assert.deepEqual([state.value, state.writes], [totals[name], totals[name]], `fenced register of ${name}`);
      }
    }
  } finally {
    for (const fixture of running) fixture.kill('SIGKILL');
    rmSync(place, { recursive: true, force: true });
  }
}
