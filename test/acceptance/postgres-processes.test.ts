// test-file-timeout-ms: 1200000
/**
 * Acceptance on PostgreSQL with real processes: 8 shells each run `baton run --store
 * postgres://...` 200 times, and each command adds 1 to a counter file (read, then write:
 * two commands overlapping would lose an update) and appends its `$BATON_TOKEN` to a log.
 * The counter ends at exactly 1600, and the tokens, in the order the commands ran, strictly
 * increase. 1600 CLI processes take minutes on two cores (379 s with a load average of 14):
 * the file states a limit of 20 minutes (the first line, read by scripts/run-tests.mjs).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, it } from 'node:test';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';
import { runInGroup } from '../helpers/process.js';

let server: PostgresServer;
let dir: string;
before(async () => {
  server = await startPostgres();
  dir = mkdtempSync(join(tmpdir(), 'baton-accept-pg-'));
});
after(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('8 processes run `baton run --store postgres://...` 200 times each, adding 1 to a counter: it ends at exactly 1600, every write with a higher token', async (t) => {
  const counter = join(dir, 'counter');
  const log = join(dir, 'tokens.log');
  writeFileSync(counter, '0');
  writeFileSync(log, '');
  const command = `n=$(cat "$COUNTER"); echo $((n + 1)) > "$COUNTER"; echo "$BATON_TOKEN" >> "$LOG"`;
  const loop = `i=0; while [ $i -lt 200 ]; do node "$MAIN" --store "$STORE" run counter --ttl 10s -- sh -c '${command}' || exit 1; i=$((i + 1)); done`;
  const env = { ...process.env, MAIN: resolve('build/src/cli/main.js'), STORE: `${server.url}?schema=accept`, COUNTER: counter, LOG: log };
  const started = Date.now();
  await Promise.all(Array.from({ length: 8 }, (_, i) => runInGroup('sh', ['-c', loop], { env, timeoutMs: 1_200_000, what: `worker ${i}` })));
  t.diagnostic(`1600 runs in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  assert.equal(readFileSync(counter, 'utf8').trim(), '1600');
  const tokens = readFileSync(log, 'utf8').trim().split('\n').map(BigInt);
  assert.equal(tokens.length, 1600);
  for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `token ${tokens[i]} written after ${tokens[i - 1]}`);
});
