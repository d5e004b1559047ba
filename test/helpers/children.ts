/**
 * adopt: the servers and worker processes a test file starts must not outlive it. `adopt`
 * records a child's PID, with its start time so that a reused PID is never taken for it, in
 * the PID file the test runner gives each test file (`BATON_TEST_PIDS`), and kills the child
 * by PID when this process exits, normally or on an uncaught error. What no exit handler can
 * cover, this process killed by a signal, the runner covers: after the file, it kills every
 * recorded process that still runs (scripts/reap.mjs). Never by name: the machine may run
 * other redis-servers and etcd members.
 */
import type { ChildProcess } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';

const live = new Set<ChildProcess>();
let hooked = false;

export function adopt<C extends ChildProcess>(child: C, label: string): C {
  const pid = child.pid;
  if (pid === undefined) return child; // it did not start: spawn reports the error on the child
  record(`+${pid} ${startTime(pid)} ${label.replaceAll('\n', ' ')}`);
  live.add(child);
  child.once('exit', () => {
    live.delete(child);
    record(`-${pid}`);
  });
  if (!hooked) {
    hooked = true;
    process.on('exit', () => {
      for (const orphan of live) {
        try {
          process.kill(orphan.pid!, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
  }
  return child;
}

function record(line: string): void {
  const file = process.env.BATON_TEST_PIDS;
  if (file) appendFileSync(file, `${line}\n`);
}

/** startTime: field 22 of /proc/PID/stat, `?` where there is no /proc (the runner then trusts the PID alone). */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '?';
  } catch {
    return '?';
  }
}
