// Runs the compiled test files with node's test runner, one file at a time, and ends with the
// line "N passed, N failed, N skipped"; exits 1 when anything failed or ran out of time.
// Arguments narrow the run: paths of compiled files, or substrings of their paths.
//
// Nothing can hang the run:
// - each file runs under node's `--test-timeout` (on Node 20 it bounds the file's test as a
//   whole; later versions also bound each test in it), and under a watchdog that kills the
//   file's whole process group shortly after that limit, should node's own cancel not end
//   it; a file stopped either way is counted as failed, by name;
// - the run as a whole has a budget: a file starts with at most what is left of it, and a
//   file that cannot start any more is counted as failed, by name;
// - the servers and workers a file started (its PID file, see scripts/reap.mjs) are killed
//   by PID after the file, however it ended.
//
// Limits (ms) from the environment: BATON_TEST_FILE_TIMEOUT_MS (default 6 minutes a file;
// a file may state a longer one of its own, see declaredTimeoutMs), BATON_TEST_BUDGET_MS
// (default 80 minutes for the run).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { reap } from './reap.mjs';

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out.sort();
}

function limit(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const ms = Number(value);
  if (!Number.isInteger(ms) || ms <= 0) {
    console.error(`Expected \`${name}\` to be a positive integer of milliseconds, got ${value}`);
    process.exit(2);
  }
  return ms;
}

const fileTimeoutMs = limit('BATON_TEST_FILE_TIMEOUT_MS', 6 * 60_000);
const budgetMs = limit('BATON_TEST_BUDGET_MS', 80 * 60_000);
/** How long node's own cancel of a timed-out file may take before the watchdog kills it. */
const GRACE_MS = 30_000;

const all = find('build/test');
const args = process.argv.slice(2);
const files = args.length === 0 ? all : all.filter((file) => args.some((arg) => file.includes(arg)));
if (files.length === 0) {
  console.error(`No test file matches ${args.join(' ')}`);
  process.exit(2);
}

const pidDir = mkdtempSync(join(tmpdir(), 'baton-test-pids-'));
const startedAt = Date.now();
const totals = { passed: 0, failed: 0, skipped: 0 };
/** Files that failed in a way node's summary does not name: ran out of time, crashed, or never started. */
const stopped = [];
let current = null;

// Interrupted (Ctrl-C, or CI cancelling the job): the file's process group and its servers go too.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.once(signal, async () => {
    if (current) {
      kill(current.child);
      await reap(current.pidFile).catch((error) => console.error(String(error)));
    }
    rmSync(pidDir, { recursive: true, force: true });
    process.exit(128 + ({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1 })[signal]);
  });
}

/** kill SIGKILLs a file's process group: node's runner, the file's process, and what they started in it. */
function kill(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch (error) {
    if (error.code !== 'ESRCH') throw error;
  }
}

/**
 * declaredTimeoutMs: a longer limit a file states for itself, in a line of its own near its
 * top: `// test-file-timeout-ms: 900000` (a file that starts a process per run of the CLI).
 * 0 when it states none; BATON_TEST_FILE_TIMEOUT_MS still applies when it is longer.
 */
function declaredTimeoutMs(file) {
  const head = readFileSync(file, 'utf8').slice(0, 4000);
  return Number(head.match(/^\/\/ test-file-timeout-ms: (\d+)$/m)?.[1] ?? 0);
}

function runFile(file, index, timeoutMs) {
  const pidFile = join(pidDir, `${index}.pids`);
  // Its own process group (detached), so that the watchdog can kill everything the file started.
  const child = spawn(process.execPath, ['--test', '--test-reporter=spec', '--test-concurrency=1', `--test-timeout=${timeoutMs}`, file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true,
    env: { ...process.env, BATON_TEST_PIDS: pidFile },
  });
  current = { child, pidFile };
  let output = '';
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    output += chunk.toString();
  });
  let killed = false;
  const watchdog = setTimeout(() => {
    killed = true;
    kill(child);
  }, timeoutMs + GRACE_MS);
  const closed = new Promise((resolve) => child.once('close', resolve));
  return new Promise((resolve) => {
    child.once('exit', async (code, signal) => {
      clearTimeout(watchdog);
      current = null;
      let leftovers = [];
      try {
        leftovers = await reap(pidFile);
      } catch (error) {
        console.error(`${file}: ${error.message}`);
      }
      for (const { pid, label } of leftovers) console.error(`${file}: killed its leftover ${label} (PID ${pid})`);
      rmSync(pidFile, { force: true });
      // The rest of its output, unless something it started still holds the pipe.
      await Promise.race([closed, new Promise((done) => setTimeout(done, 5000))]);
      child.stdout.destroy();
      resolve({ output, code, signal, killed });
    });
  });
}

for (const [index, file] of files.entries()) {
  const left = budgetMs - (Date.now() - startedAt);
  if (left < 10_000) {
    totals.failed++;
    stopped.push(`${file}: not run, the run's ${budgetMs / 60_000} min budget (BATON_TEST_BUDGET_MS) was spent`);
    continue;
  }
  const timeoutMs = Math.min(Math.max(fileTimeoutMs, declaredTimeoutMs(file)), left);
  const fileStartedAt = Date.now();
  const { output, code, signal, killed } = await runFile(file, index, timeoutMs);
  const count = (label) => Number(output.match(new RegExp(`^ℹ ${label} (\\d+)$`, 'm'))?.[1] ?? 0);
  const passed = count('pass');
  const failed = count('fail') + count('cancelled');
  totals.passed += passed;
  totals.failed += failed;
  totals.skipped += count('skipped');
  const seconds = ((Date.now() - fileStartedAt) / 1000).toFixed(1);
  if (killed) {
    if (failed === 0) totals.failed++;
    stopped.push(`${file}: killed by the watchdog after ${seconds} s (limit ${timeoutMs / 1000} s, BATON_TEST_FILE_TIMEOUT_MS)`);
  } else if (/test timed out after \d+ms/.test(output) && failed > 0) {
    stopped.push(`${file}: timed out after ${seconds} s (limit ${timeoutMs / 1000} s, BATON_TEST_FILE_TIMEOUT_MS)`);
  } else if ((code !== 0 || signal !== null) && failed === 0) {
    totals.failed++;
    stopped.push(`${file}: exited with ${signal ?? `code ${code}`} and no failed test reported`);
  }
  console.log(`${file}: ${passed} passed, ${failed} failed in ${seconds} s\n`);
}

rmSync(pidDir, { recursive: true, force: true });
if (stopped.length > 0) console.log(`Files that did not finish:\n${stopped.map((line) => `  ✖ ${line}`).join('\n')}`);
console.log(`${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped`);
process.exit(totals.failed === 0 && totals.passed > 0 ? 0 : 1);
