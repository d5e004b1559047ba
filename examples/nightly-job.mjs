// A nightly job that must run once, however many instances start it: cron on every
// instance runs this file at midnight, and only one of them does the work.
//
// Each instance asks for the lock once (`tryAcquire`, like `baton run --no-wait`): if another
// instance holds it, this one skips. The one that gets it also checks that tonight's report
// is not there yet, so that an instance that starts late, after the job ended and released
// the lock, does not run it a second time.
//
// `node examples/nightly-job.mjs` starts 4 instances as separate processes and checks that
// exactly one ran the job. The lock file is BATON_EXAMPLE_DB (default .baton/example.db).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const lockFile = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const [role, id, reports, night] = process.argv.slice(2);

if (role === 'instance') {
  // What each instance runs.
  const baton = createBaton(createSqliteStore({ path: lockFile }));
  const tonight = join(reports, `report-${night}.json`);
  const lease = await baton.mutex('nightly-report').tryAcquire({ ttlMs: 30_000, autoRenew: true });
  if (lease === null) {
    console.log(`instance ${id}: skipped, another instance is running the job`);
  } else {
    try {
      if (existsSync(tonight)) {
        console.log(`instance ${id}: skipped, tonight's report is already written`);
      } else {
        console.log(`instance ${id}: running the job with token ${lease.token}`);
        await sleep(300); // the job's work; stop it if the lease is lost
        lease.signal.throwIfAborted();
        writeFileSync(tonight, JSON.stringify({ writtenBy: Number(id), token: String(lease.token) }));
        console.log(`instance ${id}: ran the job`);
      }
    } finally {
      await lease.release();
    }
  }
  await baton.close();
} else {
  // Start 4 instances at once, as cron on 4 instances would, and check the outcome.
  const reports = mkdtempSync(join(tmpdir(), 'nightly-reports-'));
  const night = new Date().toISOString().slice(0, 10);
  const instances = 4;
  let output = '';
  await Promise.all(Array.from({ length: instances }, (_, i) => new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'instance', String(i + 1), reports, night], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.setEncoding('utf8').on('data', (text) => {
      process.stdout.write(text);
      output += text;
    });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`instance ${i + 1} exited with ${code}`))));
  })));
  const ran = output.match(/ran the job/g)?.length ?? 0;
  const report = join(reports, `report-${night}.json`);
  const writer = existsSync(report) ? JSON.parse(readFileSync(report, 'utf8')).writtenBy : 'none';
  rmSync(reports, { recursive: true, force: true });
  console.log(`\n${instances} instances started: ${ran} ran the job (report written by instance ${writer}), ${instances - ran} skipped`);
  if (ran !== 1) {
    console.error(`expected exactly one instance to run the job, got ${ran}`);
    process.exitCode = 1;
  }
}
