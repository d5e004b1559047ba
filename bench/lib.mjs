// What every benchmark in bench/ shares: the cycle rate, the hot-key statistics, free ports
// and the Markdown tables. Nothing here is asserted; see docs/benchmarks.md.
import { createServer } from 'node:net';
import { monotonicNow } from 'baton-lock';

/** Runs `cycle` back to back for `ms` after a warm-up (200 ms by default); returns cycles per second. */
export async function rate(cycle, ms, warmUpMs = 200) {
  for (const end = monotonicNow() + warmUpMs; monotonicNow() < end; ) await cycle();
  let n = 0;
  const start = monotonicNow();
  while (monotonicNow() - start < ms) {
    await cycle();
    n++;
  }
  return n / ((monotonicNow() - start) / 1000);
}

/**
 * The hot-key figures from each worker's [asked, granted, released] instants (on the shared
 * monotonic clock) over a window of `ms`: locks per second, hand-off latency (one worker's
 * release to the next grant), acquire wait, grants per worker and Jain's fairness index.
 */
export function hotKeyStats(perWorker, ms) {
  const all = perWorker.flat().sort((a, b) => a[1] - b[1]);
  const waits = all.map(([asked, granted]) => granted - asked).sort((a, b) => a - b);
  const handoffs = [];
  for (let i = 1; i < all.length; i++) handoffs.push(all[i][1] - all[i - 1][2]);
  handoffs.sort((a, b) => a - b);
  const counts = perWorker.map((t) => t.length);
  const sum = counts.reduce((a, b) => a + b, 0);
  const jain = (sum * sum) / (counts.length * counts.reduce((a, b) => a + b * b, 0));
  const q = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
  return { locksPerSec: sum / (ms / 1000), handoffP50: q(handoffs, 0.5), handoffP99: q(handoffs, 0.99), waitP50: q(waits, 0.5), waitP99: q(waits, 0.99), waitMax: waits.at(-1), counts, jain };
}

/**
 * Heap bytes per held lock: `acquire(i)` is called `n` times between two collections and
 * what it returns is kept (needs --expose-gc). Returns the bytes per lock and what is held.
 */
export async function heapPerHeld(acquire, n) {
  const held = [];
  globalThis.gc?.();
  const before = process.memoryUsage().heapUsed;
  for (let i = 0; i < n; i++) held.push(await acquire(i));
  globalThis.gc?.();
  return { bytes: Math.round((process.memoryUsage().heapUsed - before) / n), held };
}

/** A free TCP port on loopback. */
export async function freePort() {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export const fmt = (x, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : '-');

/** Prints a Markdown table under its title. */
export function table(title, header, rows) {
  console.log(`\n${title}\n| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}
