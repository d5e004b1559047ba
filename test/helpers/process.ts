/** Runs test fixtures as real processes and reads the JSON lines they print. */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { adopt } from './children.js';
import { within } from './wait.js';

export type Event = Record<string, unknown> & { e: string; at: number };

export class Fixture {
  readonly child: ChildProcess;
  readonly events: Event[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stderr = '';
  #waiters: (() => void)[] = [];

  /** With `stdin`, the fixture reads lines the test sends (`send`); else its stdin is closed. */
  constructor(script: string, args: string[], env: NodeJS.ProcessEnv = {}, options: { stdin?: boolean } = {}) {
    this.child = adopt(spawn(process.execPath, [resolve('build/test/fixtures', script), ...args], { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }), `fixture ${script}`);
    let buffer = '';
    this.child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 1);
        if (line.startsWith('{')) this.events.push(JSON.parse(line) as Event);
        for (const wake of this.#waiters.splice(0)) wake();
      }
    });
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.exited = new Promise((done) => this.child.once('exit', (code, signal) => {
      done({ code, signal });
      for (const wake of this.#waiters.splice(0)) wake();
    }));
  }

  /** waitFor resolves with the first event matching `match`, already seen or still to come. */
  async waitFor(match: (event: Event) => boolean, timeoutMs = 15_000): Promise<Event> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`fixture exited (${this.child.exitCode ?? this.child.signalCode}) before the event; stderr: ${this.stderr}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for an event; seen: ${JSON.stringify(this.events.slice(-5))}; stderr: ${this.stderr}`);
      await new Promise<void>((wake) => {
        const timer = setTimeout(wake, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          wake();
        });
      });
    }
  }

  /** next resolves with the first event named `name` printed from now on. */
  next(name: string, timeoutMs?: number): Promise<Event> {
    const from = this.events.length;
    return this.waitFor((event) => event.e === name && this.events.indexOf(event) >= from, timeoutMs);
  }

  /** send writes one line to the fixture's stdin (made with `stdin: true`). */
  send(line: string): void {
    this.child.stdin!.write(`${line}\n`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** freePort: a loopback port that was free a moment ago, for a server the test starts. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise((resolve) => server.close(resolve));
  return typeof address === 'object' && address ? address.port : 0;
}

/** killProcess SIGKILLs a child (if it still runs) and waits for it to exit, 10 s at most. */
export async function killProcess(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await within(exited, 10_000, `the exit of PID ${child.pid} (${child.spawnfile}) after SIGKILL`);
}

/**
 * runInGroup runs `file args` in a process group of its own, adopted for clean-up, and
 * resolves with its stdout once it exits with 0; it rejects, with its output, on any other
 * exit, or after `timeoutMs`, when it and every process it started are killed.
 */
export function runInGroup(file: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs: number; what: string }): Promise<string> {
  const child = adopt(spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] }), options.what);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }, options.timeoutMs);
  return new Promise((done, fail) => {
    child.once('error', (error) => {
      clearTimeout(timer);
      fail(error);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const output = `stdout:\n${stdout}\nstderr:\n${stderr}`;
      if (timedOut) fail(new Error(`${options.what}: killed after ${options.timeoutMs} ms\n${output}`));
      else if (code !== 0) fail(new Error(`${options.what}: exited with ${signal ?? `code ${code}`}\n${output}`));
      else done(stdout);
    });
  });
}
