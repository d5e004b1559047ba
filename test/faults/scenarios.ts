/**
 * The fault scenarios. Every nemesis targets the worker that the store says holds the lock,
 * and leaves the last three TTLs of a run fault-free so that the run ends settled.
 */
import { monotonicNow } from '../../src/index.js';
import type { NemesisEvent, WorkerEvent } from './checkers.js';
import type { NemesisContext, Scenario, StoreServer, Worker } from './harness.js';

const BASE = { workers: 3, ttlMs: 400, holdMs: 20 };

/**
 * Runs `act` on the holder every `gapMs` until three TTLs before the end. When no worker can
 * be named as the holder (the lock is between two holders, or the store's answer crossed a
 * hand-off), it asks again 20 ms later rather than a whole gap later: with a long gap and a
 * short run, a few misses in a row would leave a run without any fault.
 */
async function onHolder(ctx: NemesisContext, act: (w: Worker) => Promise<void>, gapMs: number): Promise<void> {
  while (monotonicNow() < ctx.until - ctx.ttlMs * 3) {
    const holder = await ctx.holder();
    if (!holder) {
      await ctx.sleep(20);
      continue;
    }
    await act(holder);
    await ctx.sleep(gapMs);
  }
}

/** A fault on the holder's process: pause past the TTL, kill, or block its event loop (TTL/4 or 1.2 × TTL). */
async function processFault(ctx: NemesisContext, w: Worker, roll: number): Promise<void> {
  if (roll < 0.35) await ctx.pause(w, Math.round(ctx.ttlMs * (0.5 + 1.5 * ctx.random())));
  else if (roll < 0.55) await ctx.kill(w);
  else ctx.block(w, roll < 0.8);
}

/** A fault on the holder's network for `ms`, then healed: blackhole, half-open, reset, or latency up to 1.5 × TTL. */
async function networkFault(ctx: NemesisContext, w: Worker, mode: 'blackhole' | 'half-open' | 'reset' | 'latency', ms: number): Promise<void> {
  const latencyMs = Math.round(ctx.ttlMs * 1.5 * ctx.random());
  ctx.network(w, mode, mode === 'latency' ? { latencyMs, jitterMs: Math.round(latencyMs / 5) } : undefined);
  await ctx.sleep(ms);
  if (!w.exited) ctx.network(w, 'pass');
}

/** The scenarios on the clients, for every store: pauses, kills, blocked event loops, and all of them at random. */
export function localScenarios(store: string, durationMs: number, epsilonMs: number, servers?: readonly StoreServer[], extra?: Partial<Scenario>): Scenario[] {
  const base = { ...BASE, store, durationMs, epsilonMs, ...(servers ? { servers } : {}), ...extra };
  return [
    { ...base, name: 'pause-past-ttl', nemesis: (ctx) => onHolder(ctx, (w) => ctx.pause(w, Math.round(ctx.ttlMs * (1.5 + ctx.random()))), 300) },
    { ...base, name: 'kill-holder', nemesis: (ctx) => onHolder(ctx, (w) => ctx.kill(w), ctx.ttlMs * 2) },
    { ...base, name: 'block-quarter-ttl', nemesis: (ctx) => onHolder(ctx, async (w) => ctx.block(w, false), 200) },
    { ...base, name: 'block-past-ttl', nemesis: (ctx) => onHolder(ctx, async (w) => ctx.block(w, true), ctx.ttlMs * 2) },
    { ...base, name: 'random-nemesis', nemesis: (ctx) => onHolder(ctx, (w) => processFault(ctx, w, ctx.random()), 250) },
  ];
}

/**
 * The scenarios on the network, for a store with a server: each worker talks to it through
 * its own fault proxy, and the nemesis slows or cuts the holder's.
 *
 * - latency-steps: the holder's latency steps from 0 to 1.5 × TTL (jitter ± 20%), one step
 *   every two TTLs (down to one TTL in a run too short for that), each step on whoever holds then; a slowed worker stays slow until the
 *   cycle ends, so it also waits and is granted through a slow link (a grant whose reply
 *   arrives after its deadline);
 * - blackhole-heal: the holder's network is cut for 0.5 to 2.5 TTLs, then healed (what it
 *   sent meanwhile then arrives late, as TCP delivers it);
 * - half-open: the holder's requests reach the server but no reply comes back, for 0.5 to
 *   2 TTLs; then that connection is reset and the client reconnects (resending what was unanswered);
 * - reset: the holder's connections are reset, and reconnections refused, for 0.1 to 1.5 TTLs;
 * - random-network: any of those and the process faults at random, with server restarts
 *   when `restarts` is set.
 */
export function networkScenarios(store: string, servers: readonly StoreServer[], durationMs: number, epsilonMs: number, options?: { restarts?: boolean; nodes?: boolean }, extra?: Partial<Scenario>): Scenario[] {
  const base = { ...BASE, store, servers, durationMs, epsilonMs, ...extra };
  return [
    {
      ...base,
      name: 'latency-steps',
      nemesis: async (ctx) => {
        // Steps of two TTLs, shortened (to one TTL at least) so that a short run still reaches 1.5 × TTL.
        const room = ctx.until - ctx.ttlMs * 3 - monotonicNow();
        const count = Math.max(3, Math.min(8, Math.floor(room / (ctx.ttlMs * 2))));
        const stepMs = Math.max(ctx.ttlMs, Math.min(ctx.ttlMs * 2, Math.floor(room / count)));
        while (monotonicNow() < ctx.until - ctx.ttlMs * 3) {
          for (let i = 0; i < count && monotonicNow() < ctx.until - ctx.ttlMs * 3; i++) {
            const latencyMs = Math.round((ctx.ttlMs * 1.5 * i) / (count - 1));
            // Nobody can be named as the holder between two holders: ask again 20 ms later
            // within the step, as onHolder does, so that a short run (few steps, a long TTL)
            // still slows someone.
            const stepEnd = monotonicNow() + stepMs;
            let holder = await ctx.holder();
            while (!holder && monotonicNow() < stepEnd - 20) {
              await ctx.sleep(20);
              holder = await ctx.holder();
            }
            if (holder) ctx.network(holder, 'latency', { latencyMs, jitterMs: Math.round(latencyMs / 5) });
            await ctx.sleep(Math.max(0, stepEnd - monotonicNow()));
          }
          for (const w of ctx.workers()) if (w.proxies.some((p) => p.mode !== 'pass')) ctx.network(w, 'pass');
          await ctx.sleep(ctx.ttlMs);
        }
      },
    },
    { ...base, name: 'blackhole-heal', nemesis: (ctx) => onHolder(ctx, (w) => networkFault(ctx, w, 'blackhole', Math.round(ctx.ttlMs * (0.5 + 2 * ctx.random()))), ctx.ttlMs) },
    { ...base, name: 'half-open', nemesis: (ctx) => onHolder(ctx, (w) => networkFault(ctx, w, 'half-open', Math.round(ctx.ttlMs * (0.5 + 1.5 * ctx.random()))), ctx.ttlMs) },
    { ...base, name: 'reset', nemesis: (ctx) => onHolder(ctx, (w) => networkFault(ctx, w, 'reset', Math.round(ctx.ttlMs * (0.1 + 1.4 * ctx.random()))), ctx.ttlMs) },
    {
      ...base,
      name: options?.restarts ? 'random-network-restarts' : options?.nodes ? 'random-network-nodes' : 'random-network',
      nemesis: (ctx) => onHolder(ctx, async (w) => {
        const roll = ctx.random();
        const modes = ['blackhole', 'half-open', 'reset', 'latency'] as const;
        if (options?.restarts && roll < 0.1) await ctx.restartServer();
        else if (options?.nodes && roll < 0.15) await minorityDown(ctx, 1 + Math.floor(ctx.random() * (ctx.servers - majorityOf(ctx.servers))));
        else if (roll < 0.5) await networkFault(ctx, w, modes[Math.floor(ctx.random() * modes.length)]!, Math.round(ctx.ttlMs * (0.3 + 1.7 * ctx.random())));
        else await processFault(ctx, w, ctx.random());
      }, 250),
    },
  ];
}

/**
 * The server restarts while a lease is held: SIGKILL and start again on the same port. Each
 * holder keeps the lock for 300 ms (renewing at TTL/3 meanwhile), so that a holder is still
 * at work when the server is back. `forgets` says the server keeps no data across restarts.
 */
export function restartScenario(name: string, store: string, server: StoreServer, durationMs: number, epsilonMs: number, forgets: boolean, extra?: Partial<Scenario>): Scenario {
  return {
    ...BASE,
    ...extra,
    holdMs: 300,
    name,
    store,
    servers: [server],
    durationMs,
    epsilonMs,
    ...(forgets ? { restartForgets: true } : {}),
    nemesis: (ctx) => onHolder(ctx, () => ctx.restartServer(), ctx.ttlMs * 2),
  };
}

/**
 * The master that owns the lock's hash slot restarts while a lease is held (a Redis Cluster):
 * the nemesis finds it by asking each master for the lock's holders (only the owner can
 * answer), then restarts it; the other masters stay up. Holders keep the lock 300 ms, as in
 * `restartScenario`. A restarted master refuses commands for its first 2 s (Redis's delay
 * before it takes writes again), so the holder loses its lease meanwhile; the restart counts
 * as done once the cluster serves again, and the lock must be granted within TTL + ε of that.
 */
export function slotOwnerRestartScenario(name: string, store: string, servers: readonly StoreServer[], durationMs: number, epsilonMs: number, extra?: Partial<Scenario>): Scenario {
  return {
    ...BASE,
    ...extra,
    holdMs: 300,
    name,
    store,
    servers,
    durationMs,
    epsilonMs,
    nemesis: (ctx) => onHolder(ctx, async () => {
      for (let i = 0; i < ctx.servers; i++) {
        if ((await ctx.holdersOn(i)).length === 0) continue;
        await ctx.restartServer(i);
        return;
      }
    }, ctx.ttlMs * 2),
  };
}

/**
 * A stalled server while a lease is held: the server (`which` says which: the only one, a
 * majority of a quorum picked at random, or the cluster master that owns the lock's slot) is
 * SIGSTOPped for 1.5 to 2.5 TTLs, longer than any lease, then SIGCONTed. Its connections stay
 * open and nothing answers: the holder cannot renew and must count its lease lost by its
 * deadline; what the clients sent meanwhile (grants they gave up on, renewals, releases) runs
 * late, in order, once the server resumes, and a late grant must be given back. The checkers
 * are the usual ones: no two holders at once, no stale write accepted.
 */
export function stallScenario(name: string, store: string, servers: readonly StoreServer[], which: 'only' | 'majority' | 'slot-owner', durationMs: number, epsilonMs: number, extra?: Partial<Scenario>): Scenario {
  return {
    ...BASE,
    ...extra,
    name,
    store,
    servers,
    durationMs,
    epsilonMs,
    nemesis: (ctx) => onHolder(ctx, async () => {
      let stalled: number[] = [0];
      if (which === 'majority') stalled = pick(ctx, majorityOf(ctx.servers));
      if (which === 'slot-owner') {
        stalled = [];
        for (let i = 0; i < ctx.servers && stalled.length === 0; i++) if ((await ctx.holdersOn(i)).length > 0) stalled.push(i);
        if (stalled.length === 0) return;
      }
      await ctx.stallServers(stalled, Math.round(ctx.ttlMs * (1.5 + ctx.random())));
    }, ctx.ttlMs * 2),
  };
}

const majorityOf = (n: number): number => Math.floor(n / 2) + 1;

/** `count` distinct server indexes out of `n`, at random. */
function pick(ctx: NemesisContext, count: number): number[] {
  const all = Array.from({ length: ctx.servers }, (_, i) => i);
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(ctx.random() * (i + 1));
    [all[i], all[j]] = [all[j]!, all[i]!];
  }
  return all.slice(0, count);
}

/**
 * Takes `count` servers down for 1.5 to 2.5 TTLs, then starts them again, empty. They stay
 * down longer than a TTL, as docs/guarantees.md asks of a quorum's nodes without persistence:
 * every lease that counted on them has run out by the time they are back.
 */
async function minorityDown(ctx: NemesisContext, count: number): Promise<number[]> {
  const down = pick(ctx, count);
  for (const i of down) await ctx.serverDown(i);
  await ctx.sleep(Math.round(ctx.ttlMs * (1.5 + ctx.random())));
  for (const i of down) await ctx.serverUp(i);
  return down;
}

/** Intervals during which at least `count` servers were down: from the `count`-th down to the next `up`. */
function downIntervals(nemesis: readonly NemesisEvent[], count: number): { from: number; to: number; serving: number }[] {
  const intervals: { from: number; to: number; serving: number }[] = [];
  const down = new Set<string>();
  let from: number | null = null;
  let current: { from: number; to: number; serving: number } | null = null;
  for (const n of nemesis) {
    if (n.fault === 'down') {
      down.add(n.worker);
      if (down.size >= count && from === null) from = n.at;
    }
    if (n.fault === 'up') {
      if (from !== null && down.size >= count) {
        current = { from, to: n.at, serving: Infinity };
        intervals.push(current);
      }
      down.delete(n.worker);
      if (down.size < count) from = null;
    }
    if (n.fault === 'serving' && current && down.size === 0) {
      current.serving = n.at;
      current = null;
    }
  }
  return intervals;
}

/** A grant's reply can be handled a little after the last answer it needed: the slack between the two, ms. */
const LOG_SLACK_MS = 100;
/** Service resumes within this long after every server is back (ioredis reconnects with a growing backoff). */
const RESUME_MS = 2000;

/**
 * The scenarios of a quorum (Redlock) of `servers.length` servers without persistence, each
 * worker reaching each server through its own proxy. The store issues no fencing token: the
 * workers use the register unfenced, and the checkers assert no overlapping validity windows.
 *
 * - minority-down: a minority (2 of 5) of the servers is down for 1.5 to 2.5 TTLs, then back
 *   (empty), again and again: grants go on meanwhile, with no overlap;
 * - majority-down: while a lease is held, a majority (3 of 5) goes down for 2.5 to 3.5 TTLs:
 *   every acquire fails with QuorumError (the workers record it), nothing is granted, the live
 *   servers keep no entry longer than an attempt takes, and grants resume once they are back;
 * - pause-past-ttl (local scenarios): a paused holder writes after its lease ended, which
 *   docs/guarantees.md says a quorum cannot prevent; its check asserts that it happened.
 */
export function quorumScenarios(store: string, servers: readonly StoreServer[], durationMs: number, epsilonMs: number, nodeTimeoutMs: number): Scenario[] {
  const extra: Partial<Scenario> = { unfenced: true };
  const base = { ...BASE, store, servers, durationMs, epsilonMs, unfenced: true };
  const minority = servers.length - majorityOf(servers.length);
  const local = localScenarios(store, durationMs, epsilonMs, servers, extra).map((scenario) => scenario.name !== 'pause-past-ttl' ? scenario : { ...scenario, check: writesAfterLeaseEnded });
  return [
    ...local,
    ...networkScenarios(store, servers, durationMs, epsilonMs, { nodes: true }, extra),
    {
      ...base,
      name: 'minority-down',
      nemesis: async (ctx) => {
        while (monotonicNow() < ctx.until - ctx.ttlMs * 6) {
          await minorityDown(ctx, minority);
          await ctx.sleep(ctx.ttlMs);
        }
      },
      check: (events, nemesis) => {
        const intervals = downIntervals(nemesis, minority);
        const grants = events.filter((e) => e.e === 'grant');
        const starved = intervals.filter((i) => !grants.some((g) => g.at > i.from + LOG_SLACK_MS && g.at < i.to));
        return [
          ...(intervals.length === 0 ? ['no minority of the servers was ever down'] : []),
          ...starved.map((i) => `nothing was granted in the ${(i.to - i.from).toFixed(0)} ms while a minority was down (from ${i.from.toFixed(0)})`),
        ];
      },
    },
    {
      ...base,
      name: 'majority-down',
      nemesis: async (ctx) => {
        while (monotonicNow() < ctx.until - ctx.ttlMs * 7) {
          const holder = await ctx.holder();
          if (!holder) {
            await ctx.sleep(20);
            continue;
          }
          const down = pick(ctx, majorityOf(ctx.servers));
          for (const i of down) await ctx.serverDown(i);
          const live = Array.from({ length: ctx.servers }, (_, i) => i).filter((i) => !down.includes(i));
          const upAt = monotonicNow() + Math.round(ctx.ttlMs * (2.5 + ctx.random()));
          // Once the holder's entries have run out, every entry on a live server belongs to an
          // attempt in progress, which rolls it back within its node timeout: none is seen longer.
          await ctx.sleep(ctx.ttlMs + epsilonMs);
          const firstSeen = new Map<string, number>();
          while (monotonicNow() < upAt) {
            for (const i of live) {
              for (const owner of await ctx.holdersOn(i)) {
                const key = `${i}/${owner}`;
                const seen = firstSeen.get(key) ?? monotonicNow();
                firstSeen.set(key, seen);
                if (monotonicNow() - seen > nodeTimeoutMs + LOG_SLACK_MS) {
                  ctx.fail(`server${i} kept the entry of ${owner} for over ${nodeTimeoutMs + LOG_SLACK_MS} ms while the majority was down: not rolled back`);
                  firstSeen.set(key, Infinity);
                }
              }
            }
            await ctx.sleep(20);
          }
          for (const i of down) await ctx.serverUp(i);
          await ctx.sleep(ctx.ttlMs * 3);
        }
      },
      check: (events, nemesis) => {
        const problems: string[] = [];
        const intervals = downIntervals(nemesis, majorityOf(servers.length));
        if (intervals.length === 0) problems.push('the majority was never down');
        for (const { from, to, serving } of intervals) {
          for (const g of events.filter((e) => e.e === 'grant' && e.at > from + LOG_SLACK_MS && e.at < to)) {
            problems.push(`${g.worker} was granted at ${g.at.toFixed(0)}, ${(g.at - from).toFixed(0)} ms after the majority went down`);
          }
          const failed = events.filter((e) => e.e === 'acquire-failed' && e.at > from && e.at < to);
          if (failed.length === 0) problems.push(`no acquire failed while the majority was down (from ${from.toFixed(0)} to ${to.toFixed(0)})`);
          for (const f of failed.filter((e) => e.name !== 'QuorumError')) problems.push(`${f.worker}'s acquire failed with ${String(f.name)} (${String(f.code)}), not QuorumError, while the majority was down`);
          const resumed = events.find((e) => e.e === 'grant' && e.at > to);
          if (!resumed || resumed.at - serving > RESUME_MS) problems.push(`no grant within ${RESUME_MS} ms after the majority was back (${resumed ? `${(resumed.at - serving).toFixed(0)} ms` : 'none'})`);
        }
        return problems;
      },
    },
  ];
}

/**
 * What a quorum does not promise, asserted as documented: a holder paused past its TTL resumes
 * and writes after its lease ended (it does not check `lease.signal`, and there is no token a
 * resource could check). A pause bites when it lands between a holder's grant and its write,
 * and the holder writes after it resumes: then that write must come after the lease ended. A
 * pause that landed elsewhere (after the write, while the holder released) shows nothing, and
 * a run may have only such pauses: it then has nothing to assert.
 */
function writesAfterLeaseEnded(events: readonly WorkerEvent[], nemesis: readonly NemesisEvent[]): string[] {
  const problems: string[] = [];
  for (const pause of nemesis.filter((n) => n.fault === 'pause')) {
    const mine = events.filter((e) => e.worker === pause.worker);
    const before = mine.filter((e) => e.at <= pause.at).at(-1);
    if (before?.e !== 'grant') continue;
    const resumed = nemesis.find((n) => n.fault === 'resume' && n.worker === pause.worker && n.at >= pause.at);
    const next = mine.find((e) => e.at > pause.at && e.e !== 'block');
    if (!resumed || next?.e !== 'write') continue;
    if (!(next.at > before.deadline!)) {
      problems.push(`${pause.worker}, paused ${(resumed.at - pause.at).toFixed(0)} ms between its grant and its write, wrote at ${next.at.toFixed(0)}, not after its lease ended (${before.deadline!.toFixed(0)})`);
    }
  }
  return problems;
}
