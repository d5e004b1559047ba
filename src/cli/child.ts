/** Running the command of `baton run`: spawning it, passing signals on, and reading how it ended. */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EXIT, signalExitCode } from './exit-codes.js';

/** ChildOutcome: the child exited (with a code or of a signal), or could not be started. */
export type ChildOutcome =
  | { readonly started: true; readonly code: number | null; readonly signal: NodeJS.Signals | null }
  | { readonly started: false; readonly error: NodeJS.ErrnoException };

/** RunningChild: a spawned command and the promise of its end. */
export interface RunningChild {
  readonly process: ChildProcess | null;
  readonly ended: Promise<ChildOutcome>;
}

/**
 * startChild spawns `command` with inherited stdio and no shell. A failure to start (not
 * found, not executable) is reported through `ended`, never thrown.
 */
export function startChild(command: string, args: readonly string[], env: NodeJS.ProcessEnv): RunningChild {
  let child: ChildProcess;
  try {
    child = spawn(command, args, { stdio: 'inherit', env });
  } catch (error) {
    // spawn throws synchronously for arguments it cannot pass at all, such as a NUL byte.
    return { process: null, ended: Promise.resolve({ started: false, error: error as NodeJS.ErrnoException }) };
  }
  const ended = new Promise<ChildOutcome>((resolve) => {
    child.once('exit', (code, signal) => resolve({ started: true, code, signal }));
    child.on('error', (error) => {
      // After a successful start, 'error' only reports a failed kill; the exit still comes.
      if (child.pid === undefined) resolve({ started: false, error });
    });
  });
  return { process: child, ended };
}

/** outcomeExitCode: the exit code of baton for how its command ended, as a shell would report it. */
export function outcomeExitCode(outcome: ChildOutcome): number {
  if (!outcome.started) return outcome.error.code === 'ENOENT' ? EXIT.notFound : EXIT.cannotRun;
  if (outcome.signal !== null) return signalExitCode(outcome.signal);
  return outcome.code ?? EXIT.internal;
}

/** startFailure: the message for a command that could not be started. */
export function startFailure(command: string, error: NodeJS.ErrnoException): string {
  if (error.code === 'ENOENT') return `command not found: ${command}`;
  if (error.code === 'EACCES') return `cannot run ${command}: permission denied`;
  return `cannot run ${command}: ${error.message}`;
}

/** The signals a user or a supervisor sends to stop a command; baton passes them on. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = Object.freeze(['SIGINT', 'SIGTERM', 'SIGHUP'] as const);

/**
 * SignalRelay catches SIGINT, SIGTERM and SIGHUP for as long as `baton run` needs them. While
 * a child runs they are passed on to it (its exit then decides baton's), except those a
 * terminal already sent it (see `inForeground`). Before that, while
 * waiting for the lock, the first one aborts `signal`, whose reason is an `Interrupted`.
 */
export class SignalRelay {
  readonly #controller = new AbortController();
  readonly #handlers = new Map<NodeJS.Signals, () => void>();
  #child: ChildProcess | null = null;

  constructor() {
    for (const name of FORWARDED_SIGNALS) {
      const handler = (): void => this.#receive(name);
      this.#handlers.set(name, handler);
      process.on(name, handler);
    }
  }

  /** signal aborts when a signal arrives while no child runs. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  /** forwardTo sets (or, with null, clears) the child that receives the signals. */
  forwardTo(child: ChildProcess | null): void {
    this.#child = child;
  }

  /** dispose restores the default handling of the signals. */
  dispose(): void {
    for (const [name, handler] of this.#handlers) process.removeListener(name, handler);
    this.#handlers.clear();
  }

  #receive(name: NodeJS.Signals): void {
    if (this.#child && this.#child.exitCode === null && this.#child.signalCode === null) {
      // Ctrl-C (and a terminal's hangup) already went to the child itself: not twice.
      if (!(name in FROM_TERMINAL && inForeground(this.#child.pid))) this.#child.kill(name);
      return;
    }
    if (!this.#controller.signal.aborted) this.#controller.abort(new Interrupted(name));
  }
}

/** Signals a terminal sends to its whole foreground process group: Ctrl-C, and a hangup. */
const FROM_TERMINAL: Partial<Record<NodeJS.Signals, true>> = { SIGINT: true, SIGHUP: true };

/**
 * inForeground tells whether baton and the process `pid` are both in the foreground process
 * group of a terminal: then a SIGINT from Ctrl-C, or a SIGHUP from the terminal going away,
 * reached both of them, and baton must not pass it on (many commands take a second Ctrl-C
 * as "stop now, skip the cleanup"). The child inherits baton's process group unless it
 * leaves it. Read from /proc (Linux); elsewhere, or if unsure, false: the signal is passed on.
 */
export function inForeground(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  const self = terminalGroups('self');
  const child = terminalGroups(String(pid));
  return self !== null && child !== null && self.tty !== 0 && self.pgrp === self.tpgid && child.pgrp === self.tpgid;
}

/** The process group, controlling terminal and terminal foreground group of a process, from /proc/PID/stat. */
function terminalGroups(pid: string): { pgrp: number; tty: number; tpgid: number } | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After "pid (comm)": state ppid pgrp session tty_nr tpgid ...; comm may hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const [pgrp, tty, tpgid] = [Number(fields[2]), Number(fields[4]), Number(fields[5])];
    return Number.isInteger(pgrp) && Number.isInteger(tty) && Number.isInteger(tpgid) ? { pgrp, tty, tpgid } : null;
  } catch {
    return null;
  }
}

/** Interrupted: the reason of a `SignalRelay`'s signal, naming the signal that arrived. */
export class Interrupted extends Error {
  readonly signal: NodeJS.Signals;

  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
    this.signal = signal;
  }
}
