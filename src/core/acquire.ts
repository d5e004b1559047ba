import { LockTimeoutError, PermitsMismatchError, StoreUnavailableError } from '../errors.js';
import type { GrantResult, HoldMode, LockStore, ResourceKey, StoreCall } from '../store.js';
import { bounded, isTimeout, NEVER, type CallObserver } from './call.js';
import { monotonicNow, systemClock, type Clock } from './clock.js';
import { DEFAULTS } from './options.js';
import { backoffMs, sleep } from './timing.js';
import type { Spot, WaitLines } from './wait-line.js';

/** AcquireSettings: the instance settings the acquire loop reads. */
export interface AcquireSettings {
  readonly queuePollMs: number;
  readonly queueTtlMs: number;
  readonly minBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly storeTimeoutMs: number;
}

/** AcquireHost: what the acquire loop needs from its baton instance. */
export interface AcquireHost {
  readonly store: LockStore;
  readonly clock: Clock;
  readonly settings: AcquireSettings;
  /** The local deadline (a clock reading) of a TTL that the store started no earlier than `startedAt`. */
  deadlineFor(startedAt: number, ttlMs: number): number;
  /** Removes `owner`'s entry of `key` in the background (a queued entry, a grant that came too late), bounded; settles when done or given up, never rejects. */
  forget(key: ResourceKey, owner: string): Promise<void>;
  /** The lock was busy on the first try. */
  contended(key: ResourceKey, owner: string, position: number | undefined): void;
  /** This process's waiters in line per resource, on a store that cannot notify (see wait-line.ts). */
  readonly lines?: WaitLines | null;
  /** Hears how each try ended. */
  readonly observer?: CallObserver;
}

/** AcquireRequest: one acquisition, checked. */
export interface AcquireRequest {
  readonly key: ResourceKey;
  readonly owner: string;
  readonly mode: HoldMode;
  readonly limit: number;
  readonly ttlMs: number;
  readonly value?: string;
  /** False tries once (`tryAcquire`). */
  readonly wait: boolean;
  /** The wait's limit as asked, for the timeout's message; `deadline` is when it ends on the host's clock. */
  readonly timeoutMs: number;
  readonly deadline: number;
  /** Aborts the acquisition: the caller's signal and the instance's close. */
  readonly signal: AbortSignal;
}

/** Granted: the store granted the lock; its TTL started no earlier than `triedAt`, enforcing `enforcedTtlMs` of it if less. */
export interface Granted {
  readonly token: bigint;
  readonly triedAt: number;
  readonly enforcedTtlMs: number | undefined;
  /** The lock was busy at first. */
  readonly contended: boolean;
}

/**
 * acquire is the loop behind every grant: ask the store, and while the lock is busy and the
 * deadline is ahead, keep a place in the queue and wait for a wake-up (or back off on stores
 * that cannot notify), then ask again. It resolves with the grant, or null when a try finds
 * the lock busy; it rejects with `LockTimeoutError` by the deadline and with the signal's
 * reason when it aborts, whatever the store does meanwhile: every store call is bounded by
 * both; with `PermitsMismatchError` at once when the store refuses the request's limit. An
 * entry left in the store by a failed acquisition (a queued place, a grant that answered too
 * late) is removed in the background.
 */
export async function acquire(host: AcquireHost, request: AcquireRequest): Promise<Granted | null> {
  const { store, clock, settings } = host;
  const { key, owner, deadline, signal } = request;
  let enqueued = false;
  let contended = false;
  let spot: Spot | null = null;
  let granted = false;
  /** A grant that answers after the loop gave up on it is given back. */
  const late = (result: GrantResult): void => {
    if (result.granted) void host.forget(key, owner);
  };
  try {
    for (let attempt = 0; ; attempt++) {
      signal.throwIfAborted();
      const triedAt = clock.now();
      const mayWait = request.wait && triedAt < deadline;
      if (mayWait) enqueued = true;
      // The deadline is on the host's clock; the loop's own clock is it unless a test gave another.
      const call: StoreCall = { signal, deadline: (clock === systemClock ? triedAt : monotonicNow()) + tryBudget(request, settings, triedAt) };
      let result: GrantResult;
      try {
        result = await bounded(call, (c) => store.grant({
          key, owner, mode: request.mode, limit: request.limit, ttlMs: request.ttlMs, enqueue: mayWait, queueTtlMs: settings.queueTtlMs,
          ...(request.value === undefined ? {} : { value: request.value }),
        }, c), { store, verb: 'grant', late, observer: host.observer });
      } catch (error) {
        // A try the store did not answer within storeTimeoutMs is tried again while the
        // acquire's own deadline is ahead: it waits for the lock until its timeout, as it
        // promises, through a store that stalls for a while (a late grant is given back).
        if (mayWait && isTimeout(error) && !signal.aborted && clock.now() < deadline) continue;
        throw error;
      }
      if (result.granted) {
        granted = true;
        return { token: result.token, triedAt, enforcedTtlMs: result.enforcedTtlMs, contended };
      }
      // Holders and waiters that count permits differently would each let in as many as their own count.
      if (result.limitInUse !== undefined) throw new PermitsMismatchError(key.name, key.kind, request.limit, result.limitInUse);
      if (!contended) {
        contended = true;
        host.contended(key, owner, result.position);
      }
      if (!request.wait) return null;
      const now = clock.now();
      if (now >= deadline) throw new LockTimeoutError(key.name, request.timeoutMs);
      let pause = store.wait ? settings.queuePollMs : backoffMs(attempt, settings.minBackoffMs, settings.maxBackoffMs);
      if (result.retryAfterMs !== undefined) pause = Math.min(pause, result.retryAfterMs + 1);
      pause = Math.max(1, Math.min(pause, deadline - now));
      if (store.wait) {
        // A hand-off's TTL runs from the store's receipt of this attempt, our last request.
        const waitCall: StoreCall = { signal, deadline: monotonicNow() + pause };
        const handOff = await bounded(waitCall, (c) => store.wait!(key, owner, c), { store, verb: 'wait', resolveAtDeadline: true });
        // One that ran out before this process could look (a blocked event loop) is asked for again.
        const grantedTtlMs = handOff ? Math.min(handOff.ttlMs, request.ttlMs) : 0;
        if (handOff && clock.now() < host.deadlineFor(triedAt, grantedTtlMs)) {
          granted = true;
          return { token: handOff.token, triedAt, enforcedTtlMs: grantedTtlMs, contended };
        }
      } else if (host.lines) {
        // Only the first of this process's waiters asks again; the others wait their turn.
        spot ??= host.lines.join(key);
        await spot.pause(pause, Math.max(1, deadline - now), signal);
      } else {
        await sleep(clock, pause, signal);
      }
    }
  } catch (error) {
    // The queued place is removed; waited for briefly, so that a store that answers leaves
    // nothing behind by the time the acquire rejects, but a stalled one does not delay it:
    // when the store just failed to answer in time, the removal goes on in the background
    // only (waiting for it too would take the acquire past its deadline + finalTryMs).
    if (enqueued && !(error instanceof StoreUnavailableError)) await bounded({ signal: NEVER, deadline: monotonicNow() + DEFAULTS.cleanupWaitMs }, () => host.forget(key, owner), { store, verb: 'release', resolveAtDeadline: true });
    // A store call cut by the acquire's own deadline is the acquire timing out.
    if (request.wait && error instanceof StoreUnavailableError && !signal.aborted && clock.now() >= deadline) {
      throw new LockTimeoutError(key.name, request.timeoutMs, { cause: error });
    }
    throw error;
  } finally {
    // Granted an exclusive hold, the lock is busy again: the next in line backs off first.
    spot?.leave(granted && (request.mode === 'exclusive' || request.limit === 1));
  }
}

/**
 * How long one try may take: the store's call timeout, cut at the acquire's deadline (plus a
 * short last chance for the final try, which asks without queueing).
 */
function tryBudget(request: AcquireRequest, settings: AcquireSettings, now: number): number {
  if (!request.wait || request.timeoutMs === 0) return settings.storeTimeoutMs;
  return Math.min(settings.storeTimeoutMs, Math.max(0, request.deadline - now) + DEFAULTS.finalTryMs);
}
