/**
 * The fault harness: starts the fenced register and the workers as separate processes,
 * lets a nemesis pause, kill or block them, cut or slow their network, or restart the
 * store's server, then stops everything and checks the histories. One machine, no
 * containers; every process is stopped by its PID at the end.
 *
 * On a network store each worker reaches each server through a fault proxy of its own, so
 * the nemesis can cut or slow the holder's network and nobody else's; the harness's own
 * connection (which asks who holds the lock, and checks for leftovers) goes straight to
 * the servers. A quorum store has several servers, which the nemesis can also take down.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createBaton, monotonicNow } from '../../src/index.js';
import { openStore } from '../../src/url.js';
import { check, type NemesisEvent, type RegisterWrite, type Report, type WorkerEvent } from './checkers.js';
import { createFaultProxy, type FaultProxy, type ProxyMode } from './proxy.js';
import { adopt } from '../helpers/children.js';
import { cleanUp } from '../helpers/clean-up.js';
import { within } from '../helpers/wait.js';

/** Worker: what a nemesis sees of a worker, a process here or a task in the in-process runner. */
export interface Worker {
  readonly id: string;
  exited: boolean;
  /** The worker's own fault proxies, one per server of a network store (none otherwise). */
  readonly proxies: readonly FaultProxy[];
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
  /** down stops the server (SIGKILL) and leaves it down; `up` starts it again on the same port. */
  down?(): Promise<void>;
  up?(): Promise<void>;
  /** pause SIGSTOPs the server (its connections stay open, nothing answers: a stalled server); `resume` SIGCONTs it. */
  pause?(): void;
  resume?(): void;
  /**
   * keys lists what the server keeps of a run (keys matching the `{run}` prefix's pattern)
   * once every client has closed, for leftover checks: on a fenced store a lock's fence hash
   * stays by design, so it is listed only for the entry records left in it (`KEY w:owner`).
   */
  keys?(pattern: string): Promise<string[]>;
  /** holders lists the owners this server alone lists as holders of mutex `lock` under key prefix `prefix`. */
  holders?(prefix: string, lock: string): Promise<string[]>;
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
  /** network sets the mode of every proxy of the worker (network stores only); `pass` heals. */
  network(worker: Worker, mode: ProxyMode, options?: { latencyMs?: number; jitterMs?: number }): void;
  /** restartServer kills the store's server (server `index` of a quorum) and starts it again (network stores only). */
  restartServer(index?: number): Promise<void>;
  /** How many servers the store has (0 for an embedded store). */
  readonly servers: number;
  /** serverDown kills server `index` and leaves it down; serverUp starts it again, empty unless it persists. */
  serverDown(index: number): Promise<void>;
  serverUp(index: number): Promise<void>;
  /** stallServers SIGSTOPs servers `indexes` together, for `ms`, then SIGCONTs them. */
  stallServers(indexes: readonly number[], ms: number): Promise<void>;
  /** keysLeft lists the keys of this run on server `index`. */
  keysLeft(index: number): Promise<string[]>;
  /** holdersOn lists the owners server `index` alone lists as holders of the lock. */
  holdersOn(index: number): Promise<string[]>;
  /** fail records a problem the scenario's nemesis found itself. */
  fail(problem: string): void;
  sleep(ms: number): Promise<void>;
  until: number;
}

export interface Scenario {
  name: string;
  /**
   * Store URL; `{dir}` is replaced by the run's folder, `{run}` by a fresh id (a key prefix
   * on a shared server), `{portN}` by the port of `servers[N]` (for the harness) or of the
   * worker's own proxy in front of it (for each worker), and `{port}` as `{port0}`.
   */
  store: string;
  /** The network store's servers (several for a quorum); without them there are no proxies and no restarts. */
  servers?: readonly StoreServer[];
  workers: number;
  ttlMs: number;
  holdMs: number;
  durationMs: number;
  /** The ε of the liveness check for this store. */
  epsilonMs: number;
  /**
   * The TTL after which the store itself frees a dead holder's lock, when it is not `ttlMs`:
   * on etcd the session lease's (`sessionTtlMs`), which is what etcd enforces. Liveness (after
   * a kill and after a server restart) is checked against it + `epsilonMs`.
   */
  livenessTtlMs?: number;
  /**
   * The store forgets its leases when its server restarts (no persistence), as
   * docs/guarantees.md says: overlapping validity windows are then expected, but only where
   * a restart came while the earlier lease was valid. Every other checker still holds.
   */
  restartForgets?: boolean;
  /**
   * The store is a Redis Cluster: its nodes announce their own addresses (CLUSTER SLOTS), so
   * each worker's client maps them to the worker's own proxies (ioredis `natMap`, keyed
   * `127.0.0.1:PORT` as announced); without it a worker would reach the nodes directly.
   */
  natMap?: boolean;
  /**
   * The store issues no fencing token (a quorum): the worker writes to the unfenced register
   * only, token checks do not apply, and the register's lost updates are what docs/guarantees.md
   * says such a store allows. Its promise is checked by the overlap checker instead.
   */
  unfenced?: boolean;
  nemesis(ctx: NemesisContext): Promise<void>;
  /** check: the scenario's own checks over the histories, after the run; each string is a problem. */
  check?(events: readonly WorkerEvent[], nemesis: readonly NemesisEvent[]): string[];
}

export interface RunResult extends Report {
  scenario: string;
  /** The seed of the run's random choices: `BATON_FAULT_SEED` (tests) or `--seed` (npm run faults) replays them. */
  seed: number;
  slowExits: number;
  unhandled: number;
  leftover: number;
  workerFailures: string[];
  /** Problems found by the scenario's nemesis or its own `check`. */
  findings: string[];
}

const LOCK = 'fault-lock';
const fixture = (name: string): string => resolve('build/test/faults', name);

function readJsonl<T>(path: string): T[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8').split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as T);
}

/**
 * faultSeed: the seed a fault run starts from: `BATON_FAULT_SEED` when set, to replay a run,
 * else a fresh one. Seeds are 32-bit, as `xorshift` uses them, so the seed printed is the seed used.
 */
export function faultSeed(): number {
  const given = process.env.BATON_FAULT_SEED;
  if (given === undefined || given === '') return Math.floor(Math.random() * 2 ** 31) + 1;
  const seed = Number(given);
  if (!Number.isInteger(seed) || seed < 1 || seed >= 2 ** 32) throw new Error(`Expected \`BATON_FAULT_SEED\` to be an integer from 1 to 2^32 - 1, got ${given}`);
  return seed;
}

/**
 * xorshift: a small seeded generator, so that a run's faults can be replayed from its seed:
 * the same seed makes the same choices (which fault, how long). What the processes do meanwhile
 * still depends on timing, so a replay is the same faults, not the same history.
 */
export function xorshift(seed: number): () => number {
  let state = seed >>> 0 || 1;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

export async function runScenario(scenario: Scenario, seed = faultSeed()): Promise<RunResult> {
  process.stderr.write(`fault run ${scenario.name}: seed ${seed} (replay with BATON_FAULT_SEED=${seed}, or --seed ${seed} in npm run faults)\n`);
  if (scenario.store.startsWith('memory:')) return (await import('./in-process.js')).runInProcess(scenario, seed);
  const dir = mkdtempSync(join(tmpdir(), `baton-faults-${scenario.name}-`));
  const run = `r${process.pid}x${(seed >>> 0).toString(36)}x${Date.now().toString(36)}`;
  const template = scenario.store.replaceAll('{dir}', dir).replaceAll('{run}', run).replaceAll('{port}', '{port0}');
  const servers = scenario.servers ?? [];
  const withPorts = (ports: readonly number[]): string => ports.reduce((url, port, i) => url.replaceAll(`{port${i}}`, String(port)), template);
  const store = withPorts(servers.map((s) => s.port));
  const findings: string[] = [];
  const nemesisLog: NemesisEvent[] = [];
  const all: ProcessWorker[] = [];
  const failures: string[] = [];
  const random = xorshift(seed);
  const register = adopt(spawn(process.execPath, [fixture('register-server.js'), join(dir, 'register.jsonl')], { stdio: ['ignore', 'pipe', 'inherit'] }), `fault register of ${scenario.name}`);
  const registerExit = new Promise<void>((done) => (register.exitCode !== null || register.signalCode !== null ? done() : register.once('exit', () => done())));
  const listening = new Promise<number>((done, fail) => {
    register.stdout!.once('data', (chunk: Buffer) => done((JSON.parse(chunk.toString()) as { port: number }).port));
    void registerExit.then(() => fail(new Error(`the register server exited (${register.exitCode ?? register.signalCode}) before listening`)));
  });
  const port = await within(listening, 10_000, 'the register server listening').catch(async (error: unknown) => {
    register.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
    throw error;
  });

  let next = 0;
  const startWorker = async (): Promise<ProcessWorker> => {
    const id = `w${next++}`;
    const proxies: FaultProxy[] = [];
    for (const server of servers) proxies.push(await createFaultProxy({ port: server.port }, { random }));
    const config = { id, store: withPorts(proxies.map((p) => p.port)), register: port, history: join(dir, `${id}.jsonl`), name: LOCK, ttlMs: scenario.ttlMs, holdMs: scenario.holdMs, blockShortMs: Math.round(scenario.ttlMs / 4), blockLongMs: Math.round(scenario.ttlMs * 1.2), unfenced: scenario.unfenced ?? false, ...(scenario.natMap ? { natMap: Object.fromEntries(servers.map((server, i) => [`127.0.0.1:${server.port}`, { host: '127.0.0.1', port: proxies[i]!.port }])) } : {}) };
    const child = adopt(spawn(process.execPath, [fixture('worker.js'), JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] }), `fault worker ${id} of ${scenario.name}`);
    let started!: () => void;
    const exit = new Promise<void>((done) => child.once('exit', () => done()));
    const ready = within(Promise.race([new Promise<void>((done) => (started = done)), exit]), 30_000, `worker ${id} opening its store`);
    const worker: ProcessWorker = { id, process: child, holding: null, exited: false, exit, ready, stopped: false, proxies };
    void worker.exit.then(() => {
      worker.exited = true;
      if (!worker.stopped) failures.push(`${id} exited on its own (${child.exitCode ?? child.signalCode})`);
      return Promise.all(proxies.map((p) => p.close()));
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

  let admin: ReturnType<typeof createBaton> | null = null;
  const ctx: NemesisContext = {
    ttlMs: scenario.ttlMs,
    random,
    until: monotonicNow() + scenario.durationMs,
    workers: () => all.filter((w) => !w.exited),
    holder: async () => {
      // While the server restarts nobody can say who holds the lock.
      const owner = (await admin!.inspect(LOCK).catch(() => null))?.holders[0]?.owner;
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
      if (worker.proxies.length === 0) throw new Error(`scenario ${scenario.name}: network faults need a network store`);
      for (const proxy of worker.proxies) proxy.set(mode, options);
      nemesisLog.push({ at: monotonicNow(), fault: mode === 'pass' ? 'heal' : mode, worker: worker.id, ...(mode === 'latency' ? { latencyMs: options?.latencyMs, jitterMs: options?.jitterMs } : {}) });
    },
    restartServer: async (index = 0) => {
      const server = servers[index];
      if (!server) throw new Error(`scenario ${scenario.name}: a restart needs a server`);
      nemesisLog.push({ at: monotonicNow(), fault: 'restart', worker: servers.length > 1 ? `server${index}` : 'server' });
      await server.restart();
      nemesisLog.push({ at: monotonicNow(), fault: 'restarted', worker: servers.length > 1 ? `server${index}` : 'server' });
    },
    servers: servers.length,
    serverDown: async (index) => {
      const server = servers[index];
      if (!server?.down) throw new Error(`scenario ${scenario.name}: server ${index} cannot be taken down`);
      await server.down();
      nemesisLog.push({ at: monotonicNow(), fault: 'down', worker: `server${index}` });
    },
    serverUp: async (index) => {
      const server = servers[index];
      if (!server?.up) throw new Error(`scenario ${scenario.name}: server ${index} cannot be started`);
      nemesisLog.push({ at: monotonicNow(), fault: 'up', worker: `server${index}` });
      await server.up();
      nemesisLog.push({ at: monotonicNow(), fault: 'serving', worker: `server${index}` });
    },
    stallServers: async (indexes, ms) => {
      const stalled = indexes.map((index) => {
        const server = servers[index];
        if (!server?.pause || !server.resume) throw new Error(`scenario ${scenario.name}: server ${index} cannot be paused`);
        return { server, name: servers.length > 1 ? `server${index}` : 'server' };
      });
      for (const { server, name } of stalled) {
        server.pause!();
        nemesisLog.push({ at: monotonicNow(), fault: 'stall', worker: name });
      }
      try {
        await ctx.sleep(ms);
      } finally {
        for (const { server, name } of stalled) {
          server.resume!();
          nemesisLog.push({ at: monotonicNow(), fault: 'unstall', worker: name });
        }
      }
    },
    keysLeft: async (index) => {
      const server = servers[index];
      if (!server?.keys) throw new Error(`scenario ${scenario.name}: server ${index} cannot list its keys`);
      return server.keys(`{${run}:*`);
    },
    holdersOn: async (index) => {
      const server = servers[index];
      if (!server?.holders) throw new Error(`scenario ${scenario.name}: server ${index} cannot list its holders`);
      return server.holders(run, LOCK);
    },
    fail: (problem) => void findings.push(problem),
    sleep: (ms) => new Promise((done) => setTimeout(done, ms)),
  };

  let failed = false;
  try {
    admin = createBaton(await openStore(store));
    for (let i = 0; i < scenario.workers; i++) await startWorker();
    await Promise.all(all.map((worker) => worker.ready));
    await ctx.sleep(300);
    // The scenario's time runs from here: workers that were slow to start (a loaded machine)
    // must not eat the time its faults need.
    ctx.until = monotonicNow() + scenario.durationMs;
    await scenario.nemesis(ctx);
    // Heal every network before the end: close() must then finish within a second.
    for (const worker of ctx.workers()) if (worker.proxies.some((p) => p.mode !== 'pass')) ctx.network(worker, 'pass');
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
    let leftover = state.holders.length + state.waiters.length;
    await admin.close();
    admin = null;
    // On a quorum or a cluster, each node on its own: once every client has closed (and the
    // entries of killed holders have run out their TTL), no node keeps a key of this run
    // (on a fenced store, no entry in a lock's fence hash).
    if (servers.length > 1 && servers.every((s) => s.keys)) {
      await ctx.sleep(scenario.ttlMs + scenario.epsilonMs);
      for (let i = 0; i < servers.length; i++) {
        const keys = await ctx.keysLeft(i);
        leftover += keys.length;
        if (keys.length > 0) findings.push(`server${i} keeps ${keys.join(', ')} after every client closed`);
      }
    }

    const events = all.flatMap((w) => readJsonl<WorkerEvent>(join(dir, `${w.id}.jsonl`))).sort((a, b) => a.at - b.at);
    const writes = readJsonl<RegisterWrite>(join(dir, 'register.jsonl'));
    const report = check(events, writes, nemesisLog, scenario.livenessTtlMs ?? scenario.ttlMs, scenario.epsilonMs);
    findings.push(...(scenario.check?.(events, nemesisLog) ?? []));
    return {
      scenario: scenario.name,
      seed,
      ...report,
      slowExits,
      unhandled: events.filter((e) => e.e === 'unhandled').length,
      leftover,
      workerFailures: failures,
      findings,
    };
  } catch (error) {
    failed = true;
    throw error;
  } finally {
    // After a failure, that failure is the one reported: the clean-up's own errors are only printed.
    // A server a failed nemesis left stalled serves again for the next scenario.
    for (const server of servers) server.resume?.();
    await cleanUp(`end fault run ${scenario.name} (seed ${seed})`, {
      'kill the workers': () => {
        for (const worker of all) {
          worker.stopped = true;
          if (!worker.exited) worker.process.kill('SIGKILL');
        }
      },
      'close the proxies': () => Promise.all(all.flatMap((worker) => worker.proxies.map((p) => p.close()))),
      'close the admin client': () => (admin ? within(admin.close(), 10_000, 'the admin client closing') : undefined),
      'stop the register server': async () => {
        register.kill('SIGTERM');
        const killer = setTimeout(() => register.kill('SIGKILL'), 5000);
        await within(registerExit, 10_000, 'the register server exiting').finally(() => clearTimeout(killer));
      },
      // BATON_FAULT_KEEP=1 keeps each run's folder (histories, register log) to read after a failure.
      'remove or keep the histories': () => {
        if (process.env.BATON_FAULT_KEEP) {
          writeFileSync(join(dir, 'nemesis.jsonl'), nemesisLog.map((n) => `${JSON.stringify(n)}\n`).join(''));
          process.stderr.write(`histories of ${scenario.name} (seed ${seed}) kept in ${dir}\n`);
        } else rmSync(dir, { recursive: true, force: true });
      },
    }, { failed });
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
    'liveness violations after a restart': result.restartLivenessViolations,
    [scenario.restartForgets ? 'overlaps not explained by a restart' : 'overlaps']: result.overlaps - (scenario.restartForgets ? result.restartOverlaps : 0),
    leftovers: result.leftover,
    'slow exits': result.slowExits,
    'unhandled rejections': result.unhandled,
    'worker failures': result.workerFailures.length,
    'scenario findings': result.findings.length,
  };
  for (const [what, count] of Object.entries(counts)) if (count > 0) found.push(`${count} ${what}`);
  found.push(...result.findings, ...result.workerFailures);
  // Without persistence a holder learns that its lease is gone at its next renewal, at most TTL/3 after the server is back.
  const told = Math.round(scenario.ttlMs / 3) + scenario.epsilonMs;
  if (scenario.restartForgets && result.worstOverlapMs > told) found.push(`an overlap of ${result.worstOverlapMs.toFixed(0)} ms after a restart, over TTL/3 + ${scenario.epsilonMs} ms`);
  return found;
}
