/**
 * The fault scenarios. Every nemesis targets the worker that the store says holds the lock,
 * and leaves the last three TTLs of a run fault-free so that the run ends settled.
 */
import { monotonicNow } from '../../src/index.js';
import type { NemesisContext, Scenario, StoreServer, Worker } from './harness.js';

const BASE = { workers: 3, ttlMs: 400, holdMs: 20 };

/** Runs `act` on the holder every `gapMs` until three TTLs before the end. */
async function onHolder(ctx: NemesisContext, act: (w: Worker) => Promise<void>, gapMs: number): Promise<void> {
  while (monotonicNow() < ctx.until - ctx.ttlMs * 3) {
    const holder = await ctx.holder();
    if (holder) await act(holder);
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
export function localScenarios(store: string, durationMs: number, epsilonMs: number, server?: StoreServer): Scenario[] {
  const base = { ...BASE, store, durationMs, epsilonMs, ...(server ? { server } : {}) };
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
 *   every two TTLs, each step on whoever holds then; a slowed worker stays slow until the
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
export function networkScenarios(store: string, server: StoreServer, durationMs: number, epsilonMs: number, options?: { restarts?: boolean }): Scenario[] {
  const base = { ...BASE, store, server, durationMs, epsilonMs };
  return [
    {
      ...base,
      name: 'latency-steps',
      nemesis: async (ctx) => {
        const stepMs = ctx.ttlMs * 2;
        const room = ctx.until - ctx.ttlMs * 3 - monotonicNow();
        const count = Math.max(3, Math.min(8, Math.floor(room / stepMs)));
        while (monotonicNow() < ctx.until - ctx.ttlMs * 3) {
          for (let i = 0; i < count && monotonicNow() < ctx.until - ctx.ttlMs * 3; i++) {
            const latencyMs = Math.round((ctx.ttlMs * 1.5 * i) / (count - 1));
            const holder = await ctx.holder();
            if (holder) ctx.network(holder, 'latency', { latencyMs, jitterMs: Math.round(latencyMs / 5) });
            await ctx.sleep(stepMs);
          }
          for (const w of ctx.workers()) if (w.proxy?.mode !== 'pass') ctx.network(w, 'pass');
          await ctx.sleep(ctx.ttlMs);
        }
      },
    },
    { ...base, name: 'blackhole-heal', nemesis: (ctx) => onHolder(ctx, (w) => networkFault(ctx, w, 'blackhole', Math.round(ctx.ttlMs * (0.5 + 2 * ctx.random()))), ctx.ttlMs) },
    { ...base, name: 'half-open', nemesis: (ctx) => onHolder(ctx, (w) => networkFault(ctx, w, 'half-open', Math.round(ctx.ttlMs * (0.5 + 1.5 * ctx.random()))), ctx.ttlMs) },
    { ...base, name: 'reset', nemesis: (ctx) => onHolder(ctx, (w) => networkFault(ctx, w, 'reset', Math.round(ctx.ttlMs * (0.1 + 1.4 * ctx.random()))), ctx.ttlMs) },
    {
      ...base,
      name: options?.restarts ? 'random-network-restarts' : 'random-network',
      nemesis: (ctx) => onHolder(ctx, async (w) => {
        const roll = ctx.random();
        const modes = ['blackhole', 'half-open', 'reset', 'latency'] as const;
        if (options?.restarts && roll < 0.1) await ctx.restartServer();
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
export function restartScenario(name: string, store: string, server: StoreServer, durationMs: number, epsilonMs: number, forgets: boolean): Scenario {
  return {
    ...BASE,
    holdMs: 300,
    name,
    store,
    server,
    durationMs,
    epsilonMs,
    ...(forgets ? { restartForgets: true } : {}),
    nemesis: (ctx) => onHolder(ctx, () => ctx.restartServer(), ctx.ttlMs * 2),
  };
}
