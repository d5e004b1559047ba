/**
 * The fault harness: starts the fenced register and the workers as separate processes,
 * lets a nemesis pause, kill or block them, cut or slow their network, or restart the
 * store's server, then stops everything and checks the histories. One machine, no
 * containers; every process is stopped by its PID at the end.
 *
 * On a network store each worker reaches the server through a fault proxy of its own, so
 * the nemesis can cut or slow the holder's network and nobody else's; the harness's own
 * connection (which asks who holds the lock, and checks for leftovers) goes straight to
 * the server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBaton, monotonicNow } from '../../src/index.js';
import { openStore } from '../../src/url.js';
import { check, type NemesisEvent, type RegisterWrite, type Report, type WorkerEvent } from './checkers.js';
import { createFaultProxy, type FaultProxy, type ProxyMode } from './proxy.js';

/** Worker: what a nemesis sees of a worker, a process here or a task in the in-process runner. */
export interface Worker {
  readonly id: string;
  exited: boolean;
  /** The worker's own fault proxy, on a network store. */
  readonly proxy: FaultProxy | null;
}

interface ProcessWorker extends Worker {
  readonly process: ChildProcess;
  /** The owner id of the lease this worker holds now, from its own log. */
  holding: string | null;
  exit: Promise<void>;
  /** Resolves once the worker has opened its store (or exited). */
  ready: Promise<void>;
  /** Killed by the nemesis or stopped by the harness; any other exit is a failure. */
  stopped: boolean;
}

/** StoreServer: the server of a network store, which the harness can put proxies in front of and restart. */
export interface StoreServer {
  readonly port: number;
  /** restart stops the server at once (SIGKILL) and starts it again on the same port. */
  restart(): Promise<void>;
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
  /** network sets the mode of the worker's proxy (network stores only); `pass` heals. */
  network(worker: Worker, mode: ProxyMode, options?: { latencyMs?: number; jitterMs?: number }): void;
  /** restartServer kills the store's server and starts it again (network stores only). */
  restartServer(): Promise<void>;
  sleep(ms: number): Promise<void>;
  until: number;
}

export interface Scenario {
  name: string;
  /**
   * Store URL; `{dir}` is replaced by the run's folder, `{run}` by a fresh id (a key prefix
   * on a shared server), `{port}` by the port of `server` (for the harness) or of the
   * worker's own proxy in front of it (for each worker).
   */
  store: string;
  /** The network store's server; without it there are no proxies and no restarts. */
  server?: StoreServer;
  workers: number;
  ttlMs: number;
  holdMs: number;
  durationMs: number;
  /** The ε of the liveness check for this store. */
  epsilonMs: number;
  /**
   * The store forgets its leases when its server restarts (no persistence), as
   * docs/guarantees.md says: overlapping validity windows are then expected, but only where
   * a restart came while the earlier lease was valid. Every other checker still holds.
   */
  restartForgets?: boolean;
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

/** xorshift: a small seeded generator, so that a run's faults can be replayed from its seed. */
export function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

export async function runScenario(scenario: Scenario, seed = Date.now()): Promise<RunResult> {
  if (scenario.store.startsWith('memory:')) return (await import('./in-process.js')).runInProcess(scenario, seed);
  const dir = mkdtempSync(join(tmpdir(), `baton-faults-${scenario.name}-`));
  const template = scenario.store.replaceAll('{dir}', dir).replaceAll('{run}', `r${process.pid}x${(seed >>> 0).toString(36)}x${Date.now().toString(36)}`);
  const server = scenario.server;
  const store = template.replaceAll('{port}', String(server?.port ?? ''));
  const nemesisLog: NemesisEvent[] = [];
  const all: ProcessWorker[] = [];
  const failures: string[] = [];
  const random = xorshift(seed);
  const register = spawn(process.execPath, [fixture('register-server.js'), join(dir, 'register.jsonl')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((done) => register.stdout!.once('data', (chunk: Buffer) => done((JSON.parse(chunk.toString()) as { port: number }).port)));

  let next = 0;
  const startWorker = async (): Promise<ProcessWorker> => {
    const id = `w${next++}`;
    const proxy = server ? await createFaultProxy({ port: server.port }, { random }) : null;
    const config = { id, store: proxy ? template.replaceAll('{port}', String(proxy.port)) : store, register: port, history: join(dir, `${id}.jsonl`), name: LOCK, ttlMs: scenario.ttlMs, holdMs: scenario.holdMs, blockShortMs: Math.round(scenario.ttlMs / 4), blockLongMs: Math.round(scenario.ttlMs * 1.2) };
    const child = spawn(process.execPath, [fixture('worker.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let started!: () => void;
    const exit = new Promise<void>((done) => child.once('exit', () => done()));
    const worker: ProcessWorker = { id, process: child, holding: null, exited: false, exit, ready: Promise.race([new Promise<void>((done) => (started = done)), exit]), stopped: false, proxy };
    void worker.exit.then(() => {
      worker.exited = true;
      if (!worker.stopped) failures.push(`${id} exited on its own (${child.exitCode ?? child.signalCode})`);
      return proxy?.close();
    });
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const event = JSON.parse(buffer.slice(0, newline)) as WorkerEvent;
        buffer = buffer.slice(newline + 1);
        if (event.e === 'started') started();
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
      // While the server restarts nobody can say who holds the lock.
      const owner = (await admin.inspect(LOCK).catch(() => null))?.holders[0]?.owner;
      return all.find((w) => !w.exited && w.holding === owner && owner !== undefined);
    },
    pause: async (worker, ms) => {
      (worker as ProcessWorker).process.kill('SIGSTOP');
      nemesisLog.push({ at: monotonicNow(), fault: 'pause', worker: worker.id });
      await ctx.sleep(ms);
      (worker as ProcessWorker).process.kill('SIGCONT');
      nemesisLog.push({ at: monotonicNow(), fault: 'resume', worker: worker.id });
    },
    kill: async (worker) => {
      (worker as ProcessWorker).stopped = true;
      (worker as ProcessWorker).process.kill('SIGKILL');
      nemesisLog.push({ at: monotonicNow(), fault: 'kill', worker: worker.id });
      await (worker as ProcessWorker).exit;
      // The next fault waits until the replacement has opened its store (it could not during a restart).
      await (await startWorker()).ready;
    },
    block: (worker, long) => {
      (worker as ProcessWorker).process.kill(long ? 'SIGUSR2' : 'SIGUSR1');
      nemesisLog.push({ at: monotonicNow(), fault: long ? 'block-long' : 'block-short', worker: worker.id });
    },
    network: (worker, mode, options) => {
      if (!worker.proxy) throw new Error(`scenario ${scenario.name}: network faults need a network store`);
      worker.proxy.set(mode, options);
      nemesisLog.push({ at: monotonicNow(), fault: mode === 'pass' ? 'heal' : mode, worker: worker.id, ...(mode === 'latency' ? { latencyMs: options?.latencyMs, jitterMs: options?.jitterMs } : {}) });
    },
    restartServer: async () => {
      if (!server) throw new Error(`scenario ${scenario.name}: a restart needs a server`);
      nemesisLog.push({ at: monotonicNow(), fault: 'restart', worker: 'server' });
      await server.restart();
      nemesisLog.push({ at: monotonicNow(), fault: 'restarted', worker: 'server' });
    },
    sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
  };

  try {
    for (let i = 0; i < scenario.workers; i++) await startWorker();
    await Promise.all(all.map((worker) => worker.ready));
    await ctx.sleep(300);
    await scenario.nemesis(ctx);
    // Heal every network before the end: close() must then finish within a second.
    for (const worker of ctx.workers()) if (worker.proxy && worker.proxy.mode !== 'pass') ctx.network(worker, 'pass');
    while (monotonicNow() < ctx.until) await ctx.sleep(50);

    // Stop: every live worker closes its baton instance; it must exit within 1 s.
    let slowExits = 0;
    await Promise.all(all.filter((w) => !w.exited).map(async (worker) => {
      worker.stopped = true;
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
    for (const worker of all) {
      worker.stopped = true;
      if (!worker.exited) worker.process.kill('SIGKILL');
    }
    await Promise.all(all.map((worker) => worker.proxy?.close()));
    register.kill('SIGTERM');
    await new Promise((done) => (register.exitCode !== null ? done(undefined) : register.once('exit', done)));
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * problems lists what a run got wrong, empty when every checker passed: lost updates, stale
 * writes accepted, token regressions, liveness, hygiene, and overlapping validity windows
 * (on a store that forgets its leases on restart, only overlaps a restart explains are allowed).
 */
export function problems(scenario: Scenario, result: RunResult): string[] {
  const found: string[] = [];
  const counts = {
    'lost updates': result.lostUpdates,
    'stale writes accepted': result.staleAccepted,
    'token regressions': result.tokenRegressions,
    'liveness violations': result.livenessViolations,
    [scenario.restartForgets ? 'overlaps not explained by a restart' : 'overlaps']: result.overlaps - (scenario.restartForgets ? result.restartOverlaps : 0),
    leftovers: result.leftover,
    'slow exits': result.slowExits,
    'unhandled rejections': result.unhandled,
    'worker failures': result.workerFailures.length,
  };
  for (const [what, count] of Object.entries(counts)) if (count > 0) found.push(`${count} ${what}`);
  // Without persistence a holder learns that its lease is gone at its next renewal, at most TTL/3 after the server is back.
  const told = Math.round(scenario.ttlMs / 3) + scenario.epsilonMs;
  if (scenario.restartForgets && result.worstOverlapMs > told) found.push(`an overlap of ${result.worstOverlapMs.toFixed(0)} ms after a restart, over TTL/3 + ${scenario.epsilonMs} ms`);
  return found;
}
