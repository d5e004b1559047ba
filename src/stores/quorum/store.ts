import { NEVER, storeCall } from '../../core/call.js';
import { monotonicNow, systemClock } from '../../core/clock.js';
import { checkDuration, checkOptions } from '../../core/validate.js';
import { ClosedError, InvalidArgumentError, QuorumError, UnsupportedError, type QuorumAnswer } from '../../errors.js';
import type { ExtendResult, GrantRequest, GrantResult, HolderInfo, LockKind, LockStore, MarkRequest, MarkState, ResourceKey, ResourceState, StoreCall } from '../../store.js';

/** QuorumOptions configures `quorum`. */
export interface QuorumOptions {
  /**
   * Longest wait for one node's answer, in ms; a node that does not answer in time counts as
   * failed for that call. Every call is also cut at the lease's remaining validity. Default 250.
   */
  nodeTimeoutMs?: number;
  /** Share of the TTL allowed for clock drift between the nodes, as Redlock's 0.01. Default 0.01. */
  driftFactor?: number;
  /** Close the member stores on `close()`. Default true. */
  closeStores?: boolean;
}

/** Clock resolution added to the drift: Redis keeps PX expiries in whole ms. */
const DRIFT_FLOOR_MS = 2;

type Outcome<T> = { ok: true; value: T; ms: number } | { ok: false; error: unknown; timedOut: boolean; ms: number };

/**
 * QuorumStore is the Redlock algorithm as a store: each call goes to every node at once, and
 * it holds when a majority (N/2 + 1) of independent nodes granted it within its validity,
 * `TTL - elapsed - drift`, measured on the monotonic clock. A grant that misses either is
 * rolled back on every node.
 *
 * What it does not give, and says so in its `guarantees`:
 * - **No fencing token** (`fencing: false`): each node counts its own tokens, and a node that
 *   restarts without its data forgets them, so no number derived from the nodes is proven to
 *   increase. `lease.token` is `null`, and the types say `bigint | null`.
 * - **No queue** (`fifo: false`, `notify: false`): a waiter queued on some nodes and not on
 *   others could split the majority, so waiters retry with backoff and jitter, as Redlock does.
 *
 * A grant that no majority gave is refused for its limit (`limitInUse`) when any node that
 * answered refused it so: a live entry there counts permits otherwise.
 *
 * The nodes must be independent servers (not replicas of one another), and Redis nodes
 * should persist with `appendfsync always` or stay down for one TTL after a restart: a node
 * that comes back empty can hand a second majority to someone else (see docs/guarantees.md).
 */
export class QuorumStore implements LockStore {
  readonly name: string;
  readonly guarantees = Object.freeze({ clock: 'quorum', scope: 'network', fencing: false, fifo: false, notify: false, outlivesClient: true, mixedModes: true } as const);
  readonly defaultTimeoutMs = 5000;
  /** Nodes that must agree: `Math.floor(N / 2) + 1`. */
  readonly majority: number;
  readonly #stores: readonly LockStore[];
  readonly #nodeTimeoutMs: number;
  readonly #driftFactor: number;
  readonly #closeStores: boolean;
  /**
   * Grants with node answers still to come, by resource and owner. A release of that owner
   * marks its entry, and a node that grants after that gives the grant back: a release wins
   * over a grant of the same owner that reaches a node later (a resend after NOSCRIPT, a
   * slow link), instead of leaving an entry nobody holds for a whole TTL.
   */
  readonly #granting = new Map<string, { released: boolean }>();
  #closed = false;

  constructor(stores: readonly LockStore[], options?: QuorumOptions) {
    if (!Array.isArray(stores) || stores.length === 0) {
      throw new InvalidArgumentError('stores', 'Expected `stores` to be a non-empty array of stores, one per independent server');
    }
    stores.forEach((store, i) => {
      if (!store || typeof store.grant !== 'function' || typeof store.release !== 'function') {
        throw new InvalidArgumentError('stores', `Expected \`stores[${i}]\` to be a store, such as createRedisStore(client)`);
      }
    });
    if (new Set(stores).size !== stores.length) {
      throw new InvalidArgumentError('stores', 'Expected `stores` to hold each store once: a store listed twice would vote twice');
    }
    const o = checkOptions<QuorumOptions>(options, 'options', ['nodeTimeoutMs', 'driftFactor', 'closeStores']);
    this.#nodeTimeoutMs = o.nodeTimeoutMs === undefined ? 250 : checkDuration(o.nodeTimeoutMs, 'nodeTimeoutMs');
    const drift = o.driftFactor ?? 0.01;
    if (typeof drift !== 'number' || !(drift >= 0 && drift < 0.5)) {
      throw new InvalidArgumentError('driftFactor', `Expected \`driftFactor\` to be a number from 0 up to 0.5, got ${String(drift)}`);
    }
    this.#driftFactor = drift;
    this.#closeStores = o.closeStores ?? true;
    this.#stores = [...stores];
    this.majority = Math.floor(stores.length / 2) + 1;
    this.name = `quorum(${stores.map((s) => s.name).join(',')})`;
  }

  /** The nodes, in the order given. */
  get stores(): readonly LockStore[] {
    return this.#stores;
  }

  /** validityMs: how long a grant of `ttlMs` that took `elapsedMs` can still be trusted. */
  validityMs(ttlMs: number, elapsedMs: number): number {
    return ttlMs - elapsedMs - Math.floor(ttlMs * this.#driftFactor) - DRIFT_FLOOR_MS;
  }

  async grant(request: GrantRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<GrantResult> {
    this.#assertOpen();
    // A try on every node: queued entries on some nodes and not others would split the majority.
    const nodeRequest: GrantRequest = { ...request, enqueue: false };
    const startedAt = monotonicNow();
    const budget = Math.min(this.#nodeTimeoutMs, Math.max(1, this.validityMs(request.ttlMs, 0)));
    let rolledBack = false;
    const rollback = (i: number): void => void this.#stores[i]!.release(request.key, request.owner, storeCall(this.#nodeTimeoutMs)).catch(() => undefined);
    const id = grantId(request.key, request.owner);
    const flight = { released: false };
    this.#granting.set(id, flight);
    let unanswered = this.#stores.length;
    const nodeAnswered = (): void => {
      if (--unanswered === 0 && this.#granting.get(id) === flight) this.#granting.delete(id);
    };
    const outcomes = await this.#poll(
      call,
      (store, nodeCall) => {
        const asked = store.grant(nodeRequest, nodeCall);
        asked.then(nodeAnswered, nodeAnswered);
        return asked;
      },
      budget,
      // Decided when a majority granted; or when no majority can grant and it is known
      // whether the lock is busy (a majority answered) or out of reach (too many failed): a
      // node that failed does not make a busy lock an error while the others may still answer.
      (done) => {
        const granted = done.filter((o) => o?.ok && o.value.granted).length;
        const answered = done.filter((o) => o?.ok).length;
        const failed = done.filter((o) => o && !o.ok).length;
        const minority = this.#stores.length - this.majority;
        return granted >= this.majority || failed > minority || (answered - granted + failed > minority && answered >= this.majority);
      },
      // A node that answers after the verdict was a failure, or after the owner released,
      // gives its grant back at once.
      (i, late) => {
        if ((rolledBack || flight.released) && late.ok && late.value.granted) rollback(i);
      },
    );
    const elapsed = monotonicNow() - startedAt;
    const granted = outcomes.filter((o) => o?.ok && o.value.granted).length;
    if (granted >= this.majority && this.validityMs(request.ttlMs, elapsed) > 0) return { granted: true, token: 0n };

    rolledBack = true;
    // Given back on every node; waited for until a majority answered, as a release is: a node
    // that is down would otherwise cost every failed attempt the whole node timeout. A node
    // whose release fails is asked again, in the background.
    const given = await this.#poll(
      storeCall(this.#nodeTimeoutMs),
      (store, nodeCall) => store.release(request.key, request.owner, nodeCall),
      this.#nodeTimeoutMs,
      (done) => done.filter((o) => o?.ok).length >= this.majority,
      (i, late) => void (late.ok || rollback(i)),
    );
    given.forEach((o, i) => void (o?.ok || (o && !o.timedOut && rollback(i))));
    const answers = this.#answers(outcomes, (value) => (value.granted ? 'granted' : value.limitInUse === undefined ? 'busy' : 'mismatch'));
    if (granted >= this.majority) {
      throw new QuorumError('grant', this.majority, answers, `took ${elapsed} ms, longer than the ${request.ttlMs} ms TTL allows after drift; rolled back on every node`);
    }
    // A node whose live entries use another limit refused the request for that: the caller
    // counts permits unlike a holder, whether or not the other nodes answered.
    const limitInUse = outcomes.map((o) => (o?.ok && !o.value.granted ? o.value.limitInUse : undefined)).find((limit) => limit !== undefined);
    if (limitInUse !== undefined) return { granted: false, limitInUse };
    const answered = outcomes.filter((o) => o?.ok).length;
    if (answered < this.majority) throw new QuorumError('grant', this.majority, answers, 'too few nodes answered');
    const hints = outcomes.flatMap((o) => (o?.ok && !o.value.granted && o.value.limitInUse === undefined && o.value.retryAfterMs !== undefined ? [o.value.retryAfterMs] : []));
    return hints.length > 0 ? { granted: false, retryAfterMs: hints.sort((a, b) => a - b)[Math.min(hints.length - 1, this.#stores.length - this.majority)]! } : { granted: false };
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ExtendResult> {
    this.#assertOpen();
    const startedAt = monotonicNow();
    const budget = Math.min(this.#nodeTimeoutMs, Math.max(1, this.validityMs(ttlMs, 0)));
    const outcomes = await this.#poll(
      call,
      (store, nodeCall) => store.extend(key, owner, ttlMs, nodeCall),
      budget,
      (done) => {
        const yes = done.filter((o) => o?.ok && o.value.held).length;
        const no = done.filter((o) => o && !(o.ok && o.value.held)).length;
        return yes >= this.majority || no > this.#stores.length - this.majority;
      },
    );
    const yes = outcomes.filter((o) => o?.ok && o.value.held).length;
    if (yes >= this.majority && this.validityMs(ttlMs, monotonicNow() - startedAt) > 0) return { held: true };
    const lost = outcomes.filter((o) => o?.ok && !o.value.held).length;
    // A majority that says "not yours" is an answer; anything short of one is an outage to retry.
    if (lost > this.#stores.length - this.majority) return { held: false };
    throw new QuorumError('extend', this.majority, this.#answers(outcomes, (value) => (value.held ? 'extended' : 'lost')), yes >= this.majority ? 'the majority answered too late' : 'too few nodes answered');
  }

  async release(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    this.#assertOpen();
    const flight = this.#granting.get(grantId(key, owner));
    if (flight) flight.released = true;
    // Decided once a majority answered (the others' releases go on): a node that is down would
    // otherwise hold every release for the whole node timeout.
    const outcomes = await this.#poll(call, (store, nodeCall) => store.release(key, owner, nodeCall), this.#nodeTimeoutMs, (done) => done.filter((o) => o?.ok).length >= this.majority);
    if (outcomes.some((o) => o?.ok && o.value)) return true;
    if (outcomes.some((o) => o?.ok)) return false;
    throw new QuorumError('release', this.majority, this.#answers(outcomes, (value) => (value ? 'released' : 'absent')), 'no node answered; the entries expire with their TTL');
  }

  /**
   * downgrade makes the entry shared on every node; true when a majority did, false when a
   * majority says the owner holds nothing. Until a majority did, the entry still excludes:
   * a reader needs a majority of nodes, and the nodes not yet downgraded refuse it.
   */
  async downgrade(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    this.#assertOpen();
    const outcomes = await this.#poll(
      call,
      (store, nodeCall) => {
        if (!store.downgrade) throw new UnsupportedError(store.name, 'downgrade', 'it keeps no shared entries');
        return store.downgrade(key, owner, nodeCall);
      },
      this.#nodeTimeoutMs,
      (done) => {
        const yes = done.filter((o) => o?.ok && o.value).length;
        const no = done.filter((o) => o && !(o.ok && o.value)).length;
        return yes >= this.majority || no > this.#stores.length - this.majority;
      },
    );
    if (outcomes.filter((o) => o?.ok && o.value).length >= this.majority) return true;
    if (outcomes.filter((o) => o?.ok && !o.value).length > this.#stores.length - this.majority) return false;
    throw new QuorumError('downgrade', this.majority, this.#answers(outcomes, (value) => (value ? 'downgraded' : 'absent')), 'too few nodes answered');
  }

  /**
   * advanceMark moves the mark on every node: advanced when a majority advanced it (of
   * callers racing for one mark, at most one gets a majority; with many racers, possibly
   * none); the mark as the majority that answered has it, the highest first.
   */
  async advanceMark(key: ResourceKey, request: MarkRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<MarkState & { advanced: boolean }> {
    const outcomes = await this.#poll(call, (store, nodeCall) => {
      if (!store.advanceMark) throw new UnsupportedError(store.name, 'keep a mark', 'it has no advanceMark');
      return store.advanceMark(key, request, nodeCall);
    }, this.#nodeTimeoutMs, () => false);
    const answers = outcomes.flatMap((o) => (o?.ok ? [o.value] : []));
    if (answers.length < this.majority) throw new QuorumError('advanceMark', this.majority, this.#answers(outcomes, (value) => (value.advanced ? 'advanced' : 'kept')), 'too few nodes answered');
    const advanced = answers.filter((a) => a.advanced).length >= this.majority;
    const { advanced: _, ...highest } = answers.reduce((a, b) => (b.at > a.at ? b : a));
    return { ...(advanced ? { at: request.to, ...(request.note === undefined ? {} : { note: request.note }) } : highest), advanced };
  }

  /** listMarks: the marks a majority of nodes report, each at the highest any of them has. */
  async listMarks(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<(MarkState & { key: ResourceKey })[]> {
    this.#assertOpen();
    const lists = await this.#states(call, (store, nodeCall) => {
      if (!store.listMarks) throw new UnsupportedError(store.name, 'list marks', 'it has no listMarks');
      return store.listMarks(filter, nodeCall);
    }, 'listMarks');
    const byKey = new Map<string, MarkState & { key: ResourceKey }>();
    for (const mark of lists.flat()) {
      const id = `${mark.key.kind}\u0000${mark.key.name}`;
      const found = byKey.get(id);
      if (!found || mark.at > found.at) byKey.set(id, mark);
    }
    return [...byKey.values()].sort((a, b) => (a.key.kind + a.key.name < b.key.kind + b.key.name ? -1 : 1));
  }

  async forceRelease(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    return this.#removedOnEvery('forceRelease', call, (store, nodeCall) => store.forceRelease(key, nodeCall));
  }

  /**
   * inspect reports the holders that a majority of nodes list. The fence and the holders'
   * tokens are 0n, which baton shows as `null`: a quorum issues no fencing tokens. There are
   * no waiters.
   */
  async inspect(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState> {
    this.#assertOpen();
    const states = await this.#states(call, (store, nodeCall) => store.inspect(key, nodeCall), 'inspect');
    return mergeStates(key, states.flat(), this.majority);
  }

  /** prune removes idle resources on every node (a node without a fence keeps little: its keys expire with their last entry); answers the most any node removed. */
  async prune(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    return this.#removedOnEvery('prune', call, (store, nodeCall) => store.prune(filter, nodeCall));
  }

  /** Runs a removal on every node (waiting for each, within its timeout) and answers the most any node removed; a QuorumError unless a majority answered. */
  async #removedOnEvery(verb: string, call: StoreCall, remove: (store: LockStore, nodeCall: StoreCall) => Promise<number>): Promise<number> {
    this.#assertOpen();
    const outcomes = await this.#poll(call, remove, this.#nodeTimeoutMs, () => false);
    const counts = outcomes.flatMap((o) => (o?.ok ? [o.value] : []));
    if (counts.length < this.majority) throw new QuorumError(verb, this.majority, this.#answers(outcomes, (n) => `removed ${n}`), 'too few nodes answered');
    return Math.max(0, ...counts);
  }

  async list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    this.#assertOpen();
    const lists = await this.#states(call, (store, nodeCall) => store.list(filter, nodeCall), 'list');
    const byKey = new Map<string, ResourceState[]>();
    for (const state of lists.flat()) {
      const id = `${state.key.kind}\u0000${state.key.name}`;
      const found = byKey.get(id);
      if (found) found.push(state);
      else byKey.set(id, [state]);
    }
    return [...byKey.values()]
      .map((states) => mergeStates(states[0]!.key, states, this.majority))
      .filter((state) => state.holders.length > 0)
      .sort((a, b) => (a.key.kind + a.key.name < b.key.kind + b.key.name ? -1 : 1));
  }

  /**
   * unreachable: the nodes out of reach, each with its address and cause, when too many are
   * for a majority to answer; undefined while a majority can.
   */
  unreachable(): string | undefined {
    const out = this.#stores.flatMap((store, node) => {
      const why = because(store);
      return why ? [`#${node}${why}`] : [];
    });
    if (out.length <= this.#stores.length - this.majority) return undefined;
    return `Cannot reach a majority (${this.majority} of ${this.#stores.length}) of the quorum's nodes: ${out.join('; ')}`;
  }

  /** close closes the member stores (unless `closeStores` is false), each within the same bound. */
  async close(call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#closeStores) await Promise.allSettled(this.#stores.map((store) => store.close(call)));
  }

  /** Asks a majority for reports; fails when fewer than a majority answered. */
  async #states<T>(call: StoreCall, ask: (store: LockStore, nodeCall: StoreCall) => Promise<T>, operation: string): Promise<T[]> {
    const outcomes = await this.#poll(call, ask, this.#nodeTimeoutMs, () => false);
    const values = outcomes.flatMap((o) => (o?.ok ? [o.value] : []));
    if (values.length < this.majority) throw new QuorumError(operation, this.majority, this.#answers(outcomes, () => 'answered'), 'too few nodes answered');
    return values;
  }

  /**
   * Runs `ask` on every node at once, each cut at `timeoutMs` and at the call's deadline, and
   * resolves when all have answered, `decided` says the verdict cannot change, or the call's
   * signal aborts. `late` sees each answer that comes after that, so that a grant nobody
   * waited for can be given back.
   */
  #poll<T>(
    call: StoreCall,
    ask: (store: LockStore, nodeCall: StoreCall) => Promise<T>,
    timeoutMs: number,
    decided: (done: readonly (Outcome<T> | undefined)[]) => boolean,
    late?: (index: number, outcome: Outcome<T>) => void,
  ): Promise<(Outcome<T> | undefined)[]> {
    const startedAt = monotonicNow();
    timeoutMs = Math.max(0, Math.min(timeoutMs, call.deadline - startedAt));
    const nodeCall: StoreCall = { signal: call.signal, deadline: startedAt + timeoutMs };
    const outcomes: (Outcome<T> | undefined)[] = new Array(this.#stores.length).fill(undefined);
    return new Promise((resolve) => {
      let pending = this.#stores.length;
      let settled = false;
      const timer = systemClock.setTimeout(() => finish(), timeoutMs, true);
      const onAbort = (): void => finish();
      if (call.signal !== NEVER) call.signal.addEventListener('abort', onAbort, { once: true });
      const finish = (): void => {
        if (settled) return;
        settled = true;
        systemClock.clearTimeout(timer);
        call.signal.removeEventListener('abort', onAbort);
        const ms = monotonicNow() - startedAt;
        resolve(outcomes.map((o, i) => o ?? { ok: false, error: new Error(`no answer within ${timeoutMs} ms${because(this.#stores[i]!)}`), timedOut: true, ms }));
      };
      this.#stores.forEach((store, i) => {
        let promise: Promise<T>;
        try {
          promise = ask(store, nodeCall);
        } catch (error) {
          promise = Promise.reject(error);
        }
        promise.then(
          (value) => record(i, { ok: true, value, ms: monotonicNow() - startedAt }),
          (error: unknown) => record(i, { ok: false, error, timedOut: false, ms: monotonicNow() - startedAt }),
        );
      });
      const record = (i: number, outcome: Outcome<T>): void => {
        if (settled) {
          late?.(i, outcome);
          return;
        }
        outcomes[i] = outcome;
        pending--;
        if (pending === 0 || decided(outcomes)) finish();
      };
    });
  }

  #answers<T>(outcomes: readonly (Outcome<T> | undefined)[], describe: (value: T) => string): QuorumAnswer[] {
    return outcomes.map((o, node) => {
      const store = this.#stores[node]!.name;
      if (!o) return { node, store, answer: 'no answer', ms: 0 };
      if (o.ok) return { node, store, answer: describe(o.value), ms: o.ms };
      return { node, store, answer: o.timedOut ? 'timeout' : 'error', ms: o.ms, error: o.error };
    });
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('This quorum store');
  }
}

/** `: Cannot reach Redis at ...: connect ECONNREFUSED ...` when `store` knows why it is out of reach, else nothing. */
/** grantId names one owner's entry of one resource in `#granting`. */
function grantId(key: ResourceKey, owner: string): string {
  return `${key.kind}\0${key.name}\0${owner}`;
}

function because(store: LockStore): string {
  try {
    const why = store.unreachable?.();
    return why ? `: ${why}` : '';
  } catch {
    return '';
  }
}

/** One view of a resource from the nodes' reports: holders listed by a majority, with the shortest time left. */
function mergeStates(key: ResourceKey, states: readonly ResourceState[], majority: number): ResourceState {
  const seen = new Map<string, { holder: HolderInfo; votes: number }>();
  for (const state of states) {
    for (const holder of state.holders) {
      const found = seen.get(holder.owner);
      if (!found) seen.set(holder.owner, { holder, votes: 1 });
      else {
        found.votes++;
        if (holder.expiresInMs < found.holder.expiresInMs) found.holder = holder;
      }
    }
  }
  const holders = [...seen.values()].filter((s) => s.votes >= majority).map((s) => ({ ...s.holder, token: 0n }));
  return { key: { kind: key.kind, name: key.name }, fence: 0n, holders, waiters: [] };
}

/**
 * quorum makes one store out of N independent ones with the Redlock algorithm: a lock is held
 * when a majority of nodes granted it within its validity.
 *
 *   const store = quorum([1, 2, 3, 4, 5].map((i) => createRedisStore(new Redis(urls[i]))));
 *   const baton = createBaton(store); // lease.token is null: a quorum gives no fencing token
 */
export function quorum(stores: readonly LockStore[], options?: QuorumOptions): QuorumStore {
  return new QuorumStore(stores, options);
}
