/**
 * The in-process runner, for the memory store: its locks live in one process, so the
 * workers are tasks in this process, each with its own baton instance on one shared store,
 * and the register is an object. The same scenarios and checkers as for the other stores,
 * with the faults an in-process store can meet:
 *
 * - pause: the holder stalls in its critical section (between its read and its write), and
 *   its calls to the store are held, for the pause's length; its timers still run, so it is
 *   told of the loss at its deadline, but it writes anyway when it resumes;
 * - kill: the holder's task is abandoned: it never renews, never releases, never writes
 *   again, and its calls to the store never return (a task that hangs or crashes without
 *   cleaning up); liveness is measured from that moment with ε 50 ms;
 * - block: the holder busy-waits in its critical section. That blocks the whole process,
 *   the store's clock included: nobody else can be granted until it ends, so a block cannot
 *   make anyone write stale here (it is checked anyway).
 *
 * A SIGSTOP or SIGKILL of the process, a server restart and network faults do not apply: the
 * store's locks end with its process, and it has no server and no network.
 */
import { createBaton, monotonicNow, type LockStore } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { wrapStore } from '../helpers/wrap-store.js';
import { check, type NemesisEvent, type RegisterWrite, type WorkerEvent } from './checkers.js';
import { xorshift, type NemesisContext, type RunResult, type Scenario, type Worker } from './harness.js';
import { Register } from './register.js';

const LOCK = 'fault-lock';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const never = new Promise<never>(() => undefined);

interface TaskWorker extends Worker {
  holding: string | null;
  /** Set while paused: every step of the worker waits for it. */
  gate: Promise<void> | null;
  dead: boolean;
  block: number;
  stopping: boolean;
  done: Promise<void>;
  close(): Promise<void>;
}

export async function runInProcess(scenario: Scenario, seed = Date.now()): Promise<RunResult> {
  const random = xorshift(seed);
  const store = createMemoryStore();
  const events: WorkerEvent[] = [];
  const writes: RegisterWrite[] = [];
  const nemesisLog: NemesisEvent[] = [];
  const register = new Register((write) => writes.push(write));
  const all: TaskWorker[] = [];
  const failures: string[] = [];
  const findings: string[] = [];
  let unhandled = 0;
  const onUnhandled = (reason: unknown): void => {
    unhandled++;
    events.push({ at: monotonicNow(), worker: '?', e: 'unhandled', error: String(reason) });
  };
  process.on('unhandledRejection', onUnhandled);

  let next = 0;
  const startWorker = (): TaskWorker => {
    const id = `w${next++}`;
    const log = (event: Record<string, unknown> & { e: string }): void => {
      if (!worker.dead) events.push({ at: monotonicNow(), worker: id, ...event });
    };
    // The worker's view of the store: held while it is paused, silent forever once it is dead.
    const step = async <T>(call: () => Promise<T>): Promise<T> => {
      while (worker.gate) await worker.gate;
      if (worker.dead) return never;
      const result = await call();
      if (worker.dead) return never;
      return result;
    };
    const view: LockStore = wrapStore(store, {
      grant: (request, call) => step(() => store.grant(request, call)),
      extend: (key, owner, ttlMs, call) => step(() => store.extend(key, owner, ttlMs, call)),
      release: (key, owner, call) => step(() => store.release(key, owner, call)),
      wait: (key, owner, call) => step(() => store.wait(key, owner, call)),
      close: async () => undefined,
    });
    const baton = createBaton(view);
    baton.on('lost', (event) => log({ e: 'lost', token: String(event.token), owner: event.owner, reason: event.reason }));
    const worker: TaskWorker = {
      id, exited: false, proxies: [], holding: null, gate: null, dead: false, block: 0, stopping: false, done: Promise.resolve(),
      close: async () => {
        worker.stopping = true;
        const started = monotonicNow();
        await baton.close();
        await worker.done;
        log({ e: 'closed', closeMs: monotonicNow() - started });
        worker.exited = true;
      },
    };
    const loop = async (): Promise<void> => {
      log({ e: 'started' });
      while (!worker.stopping) {
        log({ e: 'invoke' });
        let lease;
        try {
          lease = await baton.mutex(LOCK).acquire({ ttlMs: scenario.ttlMs, autoRenew: true, timeoutMs: 60_000 });
        } catch (error) {
          if (worker.stopping) break;
          log({ e: 'acquire-failed', code: (error as { code?: string }).code });
          continue;
        }
        const token = String(lease.token);
        worker.holding = lease.owner;
        log({ e: 'grant', token, owner: lease.owner, deadline: monotonicNow() + (lease.expiresAt - Date.now()) });
        const state = register.read(lease.token!);
        await sleep(scenario.holdMs);
        while (worker.gate) await worker.gate;
        if (worker.dead) return never;
        if (worker.block > 0) {
          const until = monotonicNow() + worker.block;
          log({ e: 'block', ms: worker.block });
          worker.block = 0;
          while (monotonicNow() < until);
        }
        const fenced = register.write({ register: 'fenced', worker: id, token, value: state.fenced.value + 1 });
        const unfenced = register.write({ register: 'unfenced', worker: id, token, value: state.unfenced.value + 1 });
        log({ e: 'write', token, fenced, unfenced });
        log({ e: 'release-call', token, held: lease.held, deadline: monotonicNow() + (lease.expiresAt - Date.now()) });
        try {
          await lease.release();
          log({ e: 'released', token });
        } catch (error) {
          log({ e: 'release-failed', token, code: (error as { code?: string }).code });
        }
        worker.holding = null;
      }
    };
    worker.done = loop().catch((error: unknown) => void failures.push(`${id} failed: ${String(error)}`));
    all.push(worker);
    return worker;
  };

  const task = (w: Worker): TaskWorker => w as TaskWorker;
  const ctx: NemesisContext = {
    ttlMs: scenario.ttlMs,
    random,
    until: monotonicNow() + scenario.durationMs,
    workers: () => all.filter((w) => !w.exited),
    holder: async () => {
      const owner = (await store.inspect({ kind: 'mutex', name: LOCK })).holders[0]?.owner;
      return all.find((w) => !w.exited && w.holding === owner && owner !== undefined);
    },
    pause: async (w, ms) => {
      let resume!: () => void;
      task(w).gate = new Promise((done) => (resume = done));
      nemesisLog.push({ at: monotonicNow(), fault: 'pause', worker: w.id });
      await sleep(ms);
      task(w).gate = null;
      resume();
      nemesisLog.push({ at: monotonicNow(), fault: 'resume', worker: w.id });
    },
    kill: async (w) => {
      task(w).dead = true;
      w.exited = true;
      nemesisLog.push({ at: monotonicNow(), fault: 'kill', worker: w.id });
      startWorker();
    },
    block: (w, long) => {
      task(w).block = Math.round(scenario.ttlMs * (long ? 1.2 : 0.25));
      nemesisLog.push({ at: monotonicNow(), fault: long ? 'block-long' : 'block-short', worker: w.id });
    },
    network: () => {
      throw new Error('the memory store has no network');
    },
    restartServer: () => Promise.reject(new Error('the memory store has no server')),
    servers: 0,
    serverDown: () => Promise.reject(new Error('the memory store has no server')),
    serverUp: () => Promise.reject(new Error('the memory store has no server')),
    stallServers: () => Promise.reject(new Error('the memory store has no server')),
    keysLeft: () => Promise.reject(new Error('the memory store has no server')),
    holdersOn: () => Promise.reject(new Error('the memory store has no server')),
    fail: (problem) => void findings.push(problem),
    sleep,
  };

  try {
    for (let i = 0; i < scenario.workers; i++) startWorker();
    await sleep(100);
    await scenario.nemesis(ctx);
    while (monotonicNow() < ctx.until) await sleep(50);
    let slowExits = 0;
    await Promise.all(all.filter((w) => !w.exited).map(async (w) => {
      const asked = monotonicNow();
      await w.close();
      if (monotonicNow() - asked > 1000) slowExits++;
    }));
    // A dead task's lease stays in the store until its TTL runs out, as a crashed holder's would.
    await sleep(scenario.ttlMs);
    const state = await store.inspect({ kind: 'mutex', name: LOCK });
    const leftover = state.holders.length + state.waiters.length;
    await store.close();
    events.sort((a, b) => a.at - b.at);
    const report = check(events, writes, nemesisLog, scenario.ttlMs, scenario.epsilonMs);
    findings.push(...(scenario.check?.(events, nemesisLog) ?? []));
    return { scenario: scenario.name, seed, ...report, slowExits, unhandled, leftover, workerFailures: failures, findings };
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
}
