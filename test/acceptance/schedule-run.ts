/**
 * The scheduled-job acceptance run, shared by one test file a store: 3 processes schedule one
 * job every second, their clocks offset by -2 s, 0 and +2 s, for about 20 s; halfway, the
 * process running a slot is SIGKILLed in the middle of its run. Every slot from the first
 * the fastest clock ran to the last runs exactly once; the killed slot is not run again, and
 * the next slot runs on another process.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { Fixture, type Event } from '../helpers/process.js';

const OFFSETS = [-2000, 0, 2000];
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function runSchedule(t: TestContext, label: string, url: string): Promise<void> {
  const workers = OFFSETS.map((offset) => new Fixture('schedule-worker.js', [url, 'every-second', String(offset), '300']));
  try {
    await Promise.all(workers.map((w) => w.waitFor((e) => e.e === 'ready')));
    await sleep(10_000);
    // Kill the process that starts the next run, in the middle of it.
    const before = workers.map((w) => w.events.length);
    let victim: Fixture | undefined;
    let killedStart: Event | undefined;
    for (const end = Date.now() + 5000; !victim && Date.now() < end; await sleep(5)) {
      for (const [i, w] of workers.entries()) {
        const start = w.events.slice(before[i]).find((e) => e.e === 'start');
        if (start) {
          victim = w;
          killedStart = start;
          break;
        }
      }
    }
    assert.ok(victim && killedStart, 'a run started within 5 s');
    victim.kill('SIGKILL');
    await victim.exited;
    await sleep(10_000);
    const living = workers.filter((w) => w !== victim);
    for (const w of living) w.kill('SIGTERM');
    for (const w of living) assert.equal((await w.exited).code, 0, w.stderr);
    const starts = workers.flatMap((w) => w.events.filter((e) => e.e === 'start').map((e) => ({ slot: Number(e.slot), pid: Number(e.pid) })));
    const slots = starts.map((s) => s.slot).sort((a, b) => a - b);
    // From the first slot the fastest clock (+2 s) ran: before it, at start, a slower clock may
    // have run a slot that the fastest then left behind (the mark only moves forward).
    const fastest = workers[OFFSETS.indexOf(2000)]!;
    const first = Math.min(...fastest.events.filter((e) => e.e === 'start').map((e) => Number(e.slot)));
    const last = slots.at(-1)! - 1000;
    t.diagnostic(`${label}: ${slots.length} runs of slots ${new Date(slots[0]!).toISOString()} to ${new Date(slots.at(-1)!).toISOString()}; killed pid ${victim.child.pid} in slot ${new Date(Number(killedStart.slot)).toISOString()}; runs by pid: ${JSON.stringify(Object.fromEntries(workers.map((w) => [w.child.pid, starts.filter((s) => s.pid === w.child.pid).length])))}`);
    assert.equal(new Set(slots).size, slots.length, `no slot ran twice: ${JSON.stringify(slots)}`);
    assert.ok((last - first) / 1000 >= 12, `slots over ${(last - first) / 1000} s`);
    for (let slot = first; slot <= last; slot += 1000) assert.ok(slots.includes(slot), `slot ${new Date(slot).toISOString()} ran`);
    const killed = Number(killedStart.slot);
    assert.deepEqual(starts.filter((s) => s.slot === killed).map((s) => s.pid), [victim.child.pid], 'the killed slot ran once, on the killed process');
    assert.ok(!victim.events.some((e) => e.e === 'end' && Number(e.slot) === killed), 'killed in the middle of its run');
    const next = starts.find((s) => s.slot === killed + 1000);
    assert.ok(next && next.pid !== victim.child.pid, 'the next slot ran on another process');
    for (const w of workers) assert.ok(!w.events.some((e) => e.e === 'error'), `${w.child.pid}: ${JSON.stringify(w.events.filter((e) => e.e === 'error'))}`);
  } finally {
    for (const w of workers) w.kill('SIGKILL');
  }
}
