// The test runner's half of "no server outlives its test file". A test file's helpers record
// every server or worker process they start in the file's PID file (BATON_TEST_PIDS; see
// test/helpers/children.ts) and kill them when the file's process exits. A process killed by
// a signal (the runner's watchdog, the OOM killer) runs no exit handler: `reap` then kills,
// by PID, whatever the file recorded and is still running.
//
// PID file lines: `+PID START LABEL` when a process starts, `-PID` once the file saw it exit.
// START is the process's start time (field 22 of /proc/PID/stat, `?` where there is no
// /proc): a PID that was reused by another process since is never killed.
import { readFileSync } from 'node:fs';

/** startTime: the start time of process `pid` from /proc, `?` without /proc, null when no such process runs. */
export function startTime(pid) {
  let stat;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch (error) {
    if (error.code !== 'ENOENT') throw error;
    if (readable('/proc/self/stat')) return null;
    return running(pid) ? '?' : null;
  }
  // Fields after the command name, which is in parentheses and may hold spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // A zombie has exited; only its parent's wait is missing (orphans wait on an init that may not reap).
  if (fields[0] === 'Z') return null;
  return fields[19];
}

function readable(path) {
  try {
    readFileSync(path);
    return true;
  } catch {
    return false;
  }
}

function running(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === 'EPERM';
  }
}

/** recorded: the processes a PID file lists as started and not seen exiting, oldest first. */
export function recorded(pidFile) {
  let text;
  try {
    text = readFileSync(pidFile, 'utf8');
  } catch (error) {
    if (error.code === 'ENOENT') return [];
    throw error;
  }
  const live = new Map();
  for (const line of text.split('\n')) {
    if (line.startsWith('+')) {
      const [pid, start, ...label] = line.slice(1).split(' ');
      live.set(Number(pid), { pid: Number(pid), start, label: label.join(' ') });
    } else if (line.startsWith('-')) {
      live.delete(Number(line.slice(1)));
    }
  }
  return [...live.values()];
}

/**
 * reap SIGKILLs every process of `pidFile` that still runs (the same PID with the same start
 * time), waits up to `withinMs` for each to be gone, and returns what it killed. It never
 * kills by name: the machine may run other redis-servers and etcd members.
 */
export async function reap(pidFile, withinMs = 5000) {
  const killed = [];
  for (const entry of recorded(pidFile)) {
    const now = startTime(entry.pid);
    if (now === null || (entry.start !== '?' && now !== entry.start)) continue;
    try {
      process.kill(entry.pid, 'SIGKILL');
    } catch (error) {
      if (error.code === 'ESRCH') continue;
      throw error;
    }
    killed.push(entry);
  }
  const deadline = Date.now() + withinMs;
  for (const entry of killed) {
    while (startTime(entry.pid) !== null) {
      if (Date.now() > deadline) throw new Error(`process ${entry.pid} (${entry.label}) still runs ${withinMs} ms after SIGKILL`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  return killed;
}
