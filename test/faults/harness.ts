/**
 * The fault harness: starts the fenced register and the workers as separate processes,
 * lets a nemesis pause, kill or block them, then stops everything and checks the histories.
 * One machine, no containers; every process is stopped by its PID at the end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBaton, monotonicNow } from '../../src/index.js';
import { openStore } from '../../src/url.js';
import { check, type NemesisEvent, type RegisterWrite, type Report, type WorkerEvent } from './checkers.js';

export interface Worker {
  readonly id: string;
  readonly process: ChildProcess;
  /** The owner id of the lease this worker holds now, from its own log. */
  holding: string | null;
  exited: boolean;
  exit: Promise<void>;
}

export interface NemesisContext {
  readonly ttlMs: number;
  readonly random: () => number;
  /** Live workers. */
  workers(): Worker[];
  /** The worker that holds the lock now, by the store's own answer. */
  holder(): Promise<Worker | undefined>;
  pause(worker: Worker, ms: number): Promise<void>;
  kill(worker: Worker): Promise<void>;
  block(worker: Worker, long: boolean): void;
  sleep(ms: number): Promise<void>;
  until: number;
}

export interface Scenario {
  name: string;
  /** Store URL; `{dir}` is replaced by the run's folder, `{run}` by a fresh id (a key prefix on a shared server). */
  store: string;
  workers: number;
  ttlMs: number;
  holdMs: number;
  durationMs: number;
  /** The ε of the liveness check for this store. */
  epsilonMs: number;
  nemesis(ctx: NemesisContext): Promise<void>;
}

export interface RunResult extends Report {
  scenario: string;
  slowExits: number;
  unhandled: number;
  leftover: number;
  workerFailures: string[];
}

const LOCK = 'fault-lock';
const fixture = (name: string): string => resolve('build/test/faults', name);

function readJsonl<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as T);
}

export async function runScenario(scenario: Scenario, seed = Date.now()): Promise<RunResult> {
  const dir = mkdtempSync(join(tmpdir(), `baton-faults-${scenario.name}-`));
  const store = scenario.store.replaceAll('{dir}', dir).replaceAll('{run}', `r${process.pid}x${(seed >>> 0).toString(36)}x${Date.now().toString(36)}`);
  const nemesisLog: NemesisEvent[] = [];
  const all: Worker[] = [];
  let state = seed >>> 0 || 1;
  const random = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const register = spawn(process.execPath, [fixture('register-server.js'), join(dir, 'register.jsonl')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((done) => register.stdout!.once('data', (chunk: Buffer) => done((JSON.parse(chunk.toString()) as { port: number }).port)));

  let next = 0;
  const startWorker = (): Worker => {
    const id = `w${next++}`;
    const config = { id, store, register: port, history: join(dir, `${id}.jsonl`), name: LOCK, ttlMs: scenario.ttlMs, holdMs: scenario.holdMs, blockShortMs: Math.round(scenario.ttlMs / 4), blockLongMs: Math.round(scenario.ttlMs * 1.2) };
    const child = spawn(process.execPath, [fixture('worker.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    const worker: Worker = { id, process: child, holding: null, exited: false, exit: new Promise((done) => child.once('exit', () => done())) };
    void worker.exit.then(() => (worker.exited = true));
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffer.slice(0, newline)) as WorkerEvent;
        buffer = buffer.slice(newline + 1);
        if (event.e === 'grant') worker.holding = event.owner!;
        if (event.e === 'released' || event.e === 'release-failed') worker.holding = null;
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => process.stderr.write(`[${id}] ${chunk.toString()}`));
    all.push(worker);
    return worker;
  };

  const admin = createBaton(await openStore(store));
  const ctx: NemesisContext = {
    ttlMs: scenario.ttlMs,
    random,
    until: monotonicNow() + scenario.durationMs,
    workers: () => all.filter((w) => !w.exited),
    holder: async () => {
      const owner = (await admin.inspect(LOCK)).holders[0]?.owner;
      return all.find((w) => !w.exited && w.holding === owner && owner !== undefined);
    },
    pause: async (worker, ms) => {
      worker.process.kill('SIGSTOP');
      nemesisLog.push({ at: monotonicNow(), fault: 'pause', worker: worker.id });
      await ctx.sleep(ms);
      worker.process.kill('SIGCONT');
      nemesisLog.push({ at: monotonicNow(), fault: 'resume', worker: worker.id });
    },
    kill: async (worker) => {
      worker.process.kill('SIGKILL');
      nemesisLog.push({ at: monotonicNow(), fault: 'kill', worker: worker.id });
      await worker.exit;
      startWorker();
    },
    block: (worker, long) => {
      worker.process.kill(long ? 'SIGUSR2' : 'SIGUSR1');
      nemesisLog.push({ at: monotonicNow(), fault: long ? 'block-long' : 'block-short', worker: worker.id });
    },
    sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
  };

  try {
    for (let i = 0; i < scenario.workers; i++) startWorker();
    await ctx.sleep(300);
    await scenario.nemesis(ctx);
    while (monotonicNow() < ctx.until) await ctx.sleep(50);

    // Stop: every live worker closes its baton instance; it must exit within 1 s.
    let slowExits = 0;
    const failures: string[] = [];
    await Promise.all(ctx.workers().map(async (worker) => {
      worker.process.kill('SIGCONT');
      const asked = monotonicNow();
      worker.process.kill('SIGTERM');
      const timer = setTimeout(() => worker.process.kill('SIGKILL'), 5000);
      await worker.exit;
      clearTimeout(timer);
      if (monotonicNow() - asked > 1000) slowExits++;
      if (worker.process.exitCode !== 0) failures.push(`${worker.id} exited ${worker.process.exitCode ?? worker.process.signalCode}`);
    }));
    const state = await admin.inspect(LOCK);
    const leftover = state.holders.length + state.waiters.length;
    await admin.close();

    const events = all.flatMap((w) => readJsonl<WorkerEvent>(join(dir, `${w.id}.jsonl`))).sort((a, b) => a.at - b.at);
    const writes = readJsonl<RegisterWrite>(join(dir, 'register.jsonl'));
    const report = check(events, writes, nemesisLog, scenario.ttlMs, scenario.epsilonMs);
    return {
      scenario: scenario.name,
      ...report,
      slowExits,
      unhandled: events.filter((e) => e.e === 'unhandled').length,
      leftover,
      workerFailures: failures,
    };
  } finally {
    for (const worker of all) if (!worker.exited) worker.process.kill('SIGKILL');
    register.kill('SIGTERM');
    await new Promise((done) => (register.exitCode !== null ? done(undefined) : register.once('exit', done)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The scenarios on the clients, for every store: pauses, kills, blocked event loops, and all of them at random. */
export function localScenarios(store: string, durationMs: number, epsilonMs: number): Scenario[] {
  const base = { store, workers: 3, ttlMs: 400, holdMs: 20, durationMs, epsilonMs };
  const onHolder = async (ctx: NemesisContext, act: (w: Worker) => Promise<void>, gapMs: number): Promise<void> => {
    while (monotonicNow() < ctx.until - ctx.ttlMs * 3) {
      const holder = await ctx.holder();
      if (holder) await act(holder);
      await ctx.sleep(gapMs);
    }
  };
  return [
    { ...base, name: 'pause-past-ttl', nemesis: (ctx) => onHolder(ctx, (w) => ctx.pause(w, Math.round(ctx.ttlMs * (1.5 + ctx.random()))), 300) },
    { ...base, name: 'kill-holder', nemesis: (ctx) => onHolder(ctx, (w) => ctx.kill(w), ctx.ttlMs * 2) },
    { ...base, name: 'block-quarter-ttl', nemesis: (ctx) => onHolder(ctx, async (w) => ctx.block(w, false), 200) },
    { ...base, name: 'block-past-ttl', nemesis: (ctx) => onHolder(ctx, async (w) => ctx.block(w, true), ctx.ttlMs * 2) },
    {
      ...base,
      name: 'random-nemesis',
      nemesis: (ctx) => onHolder(ctx, async (w) => {
        const roll = ctx.random();
        if (roll < 0.35) await ctx.pause(w, Math.round(ctx.ttlMs * (0.5 + 1.5 * ctx.random())));
        else if (roll < 0.55) await ctx.kill(w);
        else ctx.block(w, roll < 0.8);
      }, 250),
    },
  ];
}
