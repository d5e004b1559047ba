import { applyMark } from '../../core/mark.js';
import { decide, grantable, type QueueEntry } from '../../core/queue.js';
import { storageKey, type ExtendResult, type GrantRequest, type GrantResult, type LockKind, type MarkRequest, type MarkState, type ResourceKey, type ResourceState, type StoreCall } from '../../store.js';

/**
 * The lease algorithm of the stores that keep their entries as rows of a table (SQLite),
 * written once over an async transaction, with no driver imported. (The PostgreSQL store
 * runs the same rule and wake-ups server-side, one PL/pgSQL function per verb, so that each
 * operation is one round trip: stores/postgres/sql.ts, checked against core/queue.ts.)
 *
 * What a table store provides, as a `TableDriver`:
 * - `transaction(mode, call, body)`: runs `body` in one transaction, commits what it wrote
 *   or nothing, and retries it (or fails with `StoreUnavailableError`) by the call's deadline
 *   and signal. In a `write` transaction, no other writer may change a resource between
 *   `entries` of it and the commit (SQLite: `BEGIN IMMEDIATE`; PostgreSQL: a lock on the
 *   resource first). Nothing else may run on the connection until `body` settles.
 * - A `TableTx`: the store's clock (`now`, read once per transaction; TTLs and `expiresAt`
 *   are on it), a resource's entries in arrival order, its fence, and the few writes below.
 *   Each method answers a value or a promise. A body whose every answer was a value returns
 *   its result synchronously, so a synchronous driver (better-sqlite3) runs a transaction
 *   without yielding to the event loop; a promise is awaited before the next step.
 * - Storage: per resource a fence that only grows and an arrival counter (`bump` makes the
 *   row on first use, starting its fence at a store-wide floor; only `dropResource` removes
 *   it, raising the floor to its fence), per entry one row keyed by (resource, owner).
 *
 * What it gets: grant, extend, release, forceRelease, inspect, list and prune with the grant rule of
 * `core/queue.ts` (a newcomer whose limit is not the live entries' is refused), FIFO by arrival, dead entries deleted when a writer sees them, and with
 * every write the entries that may now hold (`Outcome.wakes`, never the caller's own), which
 * the store wakes its own way (SQLite: a loopback datagram; PostgreSQL: NOTIFY). Each entry
 * keeps the opaque address `W` its owner is woken at.
 *
 * Left out: waiting, the wake-ups' transport, and hand-offs (a release wakes waiters; it
 * does not grant to them). Those stay with each store.
 */

/** PRUNE_BATCH: how many resources one transaction of `prune` looks at. */
const PRUNE_BATCH = 500;

/** Awaitable: a driver answers with a value or a promise of it. */
export type Awaitable<T> = T | Promise<T>;

/** TableEntry: one entry row, with the address `W` its owner is woken at (null: not woken, it polls). */
export interface TableEntry<W> extends QueueEntry {
  readonly wake: W | null;
}

/** TableResource: one resource row; `id` is its stored key, `${prefix}:${kind}:${name}`. */
export interface TableResource extends ResourceKey {
  readonly id: string;
}

/** TableTx: what the algorithm asks of one transaction. Resources are named by their stored key (`id`). */
export interface TableTx<W> {
  /** now: the store's clock, in ms. */
  now(): Awaitable<number>;
  /** entries: every entry of a resource, dead ones included, in arrival order (`seq`). */
  entries(id: string): Awaitable<TableEntry<W>[]>;
  /** fence: the last token issued for a resource; undefined for a resource never used. */
  fence(id: string): Awaitable<bigint | undefined>;
  /** bump issues `tokens` new tokens and takes `arrivals` new arrival numbers (0 or 1 each), making the resource row on first use; answers the fence and the counter after it. */
  bump(resource: TableResource, tokens: 0 | 1, arrivals: 0 | 1): Awaitable<{ fence: bigint; seq: number }>;
  /** putEntry inserts or replaces the entry of `entry.owner`. */
  putEntry(id: string, entry: TableEntry<W>): Awaitable<void>;
  /** extendEntry sets a holding entry's TTL and expiry. */
  extendEntry(id: string, owner: string, ttlMs: number, expiresAt: number): Awaitable<void>;
  /** deleteEntry removes one entry, holding or queued. */
  deleteEntry(id: string, owner: string): Awaitable<void>;
  /** deleteHolders removes every holding entry of a resource and answers how many. */
  deleteHolders(id: string): Awaitable<number>;
  /** resources: every resource whose id starts with `idPrefix`, ordered by id; only those after `after`, and at most `limit`, when given. */
  resources(idPrefix: string, after?: string, limit?: number): Awaitable<TableResource[]>;
  /**
   * dropResource removes a resource's row and its entries, first raising the store-wide
   * floor to the resource's fence: `bump` starts a new resource's fence at the floor, so a
   * name used again never issues a token it issued before.
   */
  dropResource(id: string): Awaitable<void>;
  /** mark: the mark kept under a resource's stored key (`advanceMark`), apart from its row; undefined when there is none. Optional: a store without marks leaves the three out. */
  mark?(id: string): Awaitable<MarkState | undefined>;
  /** putMark inserts or replaces the mark of `id`, with the kind and name it belongs to. */
  putMark?(resource: TableResource, state: MarkState): Awaitable<void>;
  /** marks: every mark whose id starts with `idPrefix`, ordered by id. */
  marks?(idPrefix: string): Awaitable<(MarkState & { resource: TableResource })[]>;
}

/**
 * TableDriver: a table store's transactions. `read` transactions never write. `body` answers
 * a promise only if some answer of `tx` was one; the driver commits once it settles.
 */
export interface TableDriver<W> {
  transaction<T>(mode: 'write' | 'read', call: StoreCall, body: (tx: TableTx<W>) => Awaitable<T>): Promise<T>;
}

/** Outcome: a write's answer and the entries, other than the caller's, that may hold now. */
export interface Outcome<T, W> {
  readonly result: T;
  readonly wakes: readonly TableEntry<W>[];
}

/** LeaseTableOptions configures a `LeaseTable`. */
export interface LeaseTableOptions {
  /** Prefix of every stored key. */
  readonly prefix: string;
  /**
   * An entry whose grant time lies more than this many ms after `now` was written before the
   * store's clock restarted (CLOCK_MONOTONIC restarts when the host reboots), so its owner is
   * gone and it counts as expired. Leave out for a clock that does not restart.
   */
  readonly restartedAfterMs?: number;
}

const NONE: readonly never[] = [];

/** LeaseTable runs the store contract's writes and reads over a `TableDriver`; a store adds the wake-ups' transport. */
export class LeaseTable<W> {
  readonly #driver: TableDriver<W>;
  readonly #prefix: string;
  readonly #restartedAfterMs: number;

  constructor(driver: TableDriver<W>, options: LeaseTableOptions) {
    this.#driver = driver;
    this.#prefix = options.prefix;
    this.#restartedAfterMs = options.restartedAfterMs ?? Infinity;
  }

  /** grant: see `LockStore.grant`. A queued entry records `wake`, where its owner is woken. */
  grant(request: GrantRequest, wake: W | null, call: StoreCall): Promise<Outcome<GrantResult, W>> {
    const resource: TableResource = { id: storageKey(this.#prefix, request.key), kind: request.key.kind, name: request.key.name };
    return this.#driver.transaction('write', call, (tx) => drive(this.#grant(tx, request, resource, wake)));
  }

  *#grant(tx: TableTx<W>, request: GrantRequest, resource: TableResource, wake: W | null): Steps<Outcome<GrantResult, W>> {
    const now = yield* ask(tx.now());
    const { live, wakes } = yield* this.#live(tx, resource.id, now, request.owner);
    const mine = live.find((entry) => entry.owner === request.owner);
    if (mine?.held) return { result: { granted: true, token: mine.token! }, wakes };
    const decision = decide(live, request, mine, now);
    if (decision.limitInUse !== undefined) return { result: { granted: false, limitInUse: decision.limitInUse }, wakes };
    if (decision.grant) {
      const { fence, seq } = yield* ask(tx.bump(resource, 1, mine ? 0 : 1));
      yield tx.putEntry(resource.id, entryOf<W>(request, mine?.seq ?? seq, true, fence, request.ttlMs, now, null));
      return { result: { granted: true, token: fence }, wakes };
    }
    if (request.enqueue) {
      const seq = mine?.seq ?? (yield* ask(tx.bump(resource, 0, 1))).seq;
      yield tx.putEntry(resource.id, entryOf(request, seq, false, null, request.queueTtlMs, now, wake));
    }
    return { result: { granted: false, position: decision.position, retryAfterMs: decision.retryAfterMs }, wakes };
  }

  /** extend: see `LockStore.extend`. */
  extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall): Promise<Outcome<ExtendResult, W>> {
    const id = storageKey(this.#prefix, key);
    return this.#driver.transaction('write', call, (tx) => drive(this.#extend(tx, id, owner, ttlMs)));
  }

  *#extend(tx: TableTx<W>, id: string, owner: string, ttlMs: number): Steps<Outcome<ExtendResult, W>> {
    const now = yield* ask(tx.now());
    const { live, wakes } = yield* this.#live(tx, id, now, owner);
    if (!live.some((entry) => entry.owner === owner && entry.held)) return { result: { held: false }, wakes };
    yield tx.extendEntry(id, owner, ttlMs, now + ttlMs);
    return { result: { held: true }, wakes };
  }

  /** release: see `LockStore.release`; wakes the entries that may hold once `owner`'s is gone. */
  release(key: ResourceKey, owner: string, call: StoreCall): Promise<Outcome<boolean, W>> {
    const id = storageKey(this.#prefix, key);
    return this.#driver.transaction('write', call, (tx) => drive(this.#release(tx, id, owner)));
  }

  *#release(tx: TableTx<W>, id: string, owner: string): Steps<Outcome<boolean, W>> {
    const { live, wakes } = yield* this.#live(tx, id, yield* ask(tx.now()), owner);
    const rest = live.filter((entry) => entry.owner !== owner);
    if (rest.length === live.length) return { result: false, wakes };
    yield tx.deleteEntry(id, owner);
    return { result: true, wakes: grantable(rest) as TableEntry<W>[] };
  }

  /** downgrade: see `LockStore.downgrade`; wakes the entries that may hold once `owner`'s is shared. */
  downgrade(key: ResourceKey, owner: string, call: StoreCall): Promise<Outcome<boolean, W>> {
    const id = storageKey(this.#prefix, key);
    return this.#driver.transaction('write', call, (tx) => drive(this.#downgrade(tx, id, owner)));
  }

  *#downgrade(tx: TableTx<W>, id: string, owner: string): Steps<Outcome<boolean, W>> {
    const { live, wakes } = yield* this.#live(tx, id, yield* ask(tx.now()), owner);
    const index = live.findIndex((entry) => entry.owner === owner && entry.held);
    if (index < 0) return { result: false, wakes };
    if (live[index]!.mode === 'shared') return { result: true, wakes };
    const shared: TableEntry<W> = { ...live[index]!, mode: 'shared' };
    yield tx.putEntry(id, shared);
    live[index] = shared;
    return { result: true, wakes: grantable(live) as TableEntry<W>[] };
  }

  /** advanceMark: see `LockStore.advanceMark`; one write transaction. */
  advanceMark(key: ResourceKey, request: MarkRequest, call: StoreCall): Promise<MarkState & { advanced: boolean }> {
    const resource: TableResource = { id: storageKey(this.#prefix, key), kind: key.kind, name: key.name };
    return this.#driver.transaction(request.to < 0 ? 'read' : 'write', call, (tx) => drive(this.#advanceMark(tx, resource, request)));
  }

  *#advanceMark(tx: TableTx<W>, resource: TableResource, request: MarkRequest): Steps<MarkState & { advanced: boolean }> {
    if (!tx.mark || !tx.putMark) throw new Error('this table store keeps no marks');
    const { state, advanced, write } = applyMark(yield* ask(tx.mark(resource.id)), request);
    if (write) yield tx.putMark(resource, state);
    return { ...state, advanced };
  }

  /** listMarks: see `LockStore.listMarks`. */
  listMarks(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<(MarkState & { key: ResourceKey })[]> {
    return this.#driver.transaction('read', call, (tx) => drive(this.#listMarks(tx, this.#idPrefix(filter))));
  }

  *#listMarks(tx: TableTx<W>, idPrefix: string): Steps<(MarkState & { key: ResourceKey })[]> {
    if (!tx.marks) throw new Error('this table store keeps no marks');
    return (yield* ask(tx.marks(idPrefix))).map(({ resource, ...state }) => ({ key: { kind: resource.kind, name: resource.name }, ...state }));
  }

  /** forceRelease: see `LockStore.forceRelease`; wakes the queued entries that may hold once no one does. */
  forceRelease(key: ResourceKey, call: StoreCall): Promise<Outcome<number, W>> {
    const id = storageKey(this.#prefix, key);
    return this.#driver.transaction('write', call, (tx) => drive(this.#forceRelease(tx, id)));
  }

  *#forceRelease(tx: TableTx<W>, id: string): Steps<Outcome<number, W>> {
    const { live, wakes } = yield* this.#live(tx, id, yield* ask(tx.now()), null);
    const removed = yield* ask(tx.deleteHolders(id));
    return { result: removed, wakes: removed > 0 ? (grantable(live.filter((entry) => !entry.held)) as TableEntry<W>[]) : wakes };
  }

  /** inspect: see `LockStore.inspect`. Reads only: dead entries are skipped, not deleted. */
  inspect(key: ResourceKey, call: StoreCall): Promise<ResourceState> {
    const resource: TableResource = { id: storageKey(this.#prefix, key), kind: key.kind, name: key.name };
    return this.#driver.transaction('read', call, (tx) => drive(this.#inspect(tx, resource)));
  }

  *#inspect(tx: TableTx<W>, resource: TableResource): Steps<ResourceState> {
    return yield* this.#state(tx, resource, yield* ask(tx.now()));
  }

  /** list: see `LockStore.list`; every resource with a row, in the order of their stored keys. */
  list(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<ResourceState[]> {
    return this.#driver.transaction('read', call, (tx) => drive(this.#list(tx, this.#idPrefix(filter))));
  }

  *#list(tx: TableTx<W>, idPrefix: string): Steps<ResourceState[]> {
    const now = yield* ask(tx.now());
    const states: ResourceState[] = [];
    for (const resource of yield* ask(tx.resources(idPrefix))) states.push(yield* this.#state(tx, resource, now));
    return states;
  }

  /**
   * prune: see `LockStore.prune`. Resources are looked at `PRUNE_BATCH` at a time, each batch
   * one write transaction, so that a table of many names is never locked for long.
   */
  async prune(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<number> {
    const idPrefix = this.#idPrefix(filter);
    let removed = 0;
    let after = '';
    for (;;) {
      const batch = await this.#driver.transaction('write', call, (tx) => drive(this.#prune(tx, idPrefix, after)));
      removed += batch.removed;
      if (batch.last === undefined) return removed;
      after = batch.last;
    }
  }

  *#prune(tx: TableTx<W>, idPrefix: string, after: string): Steps<{ removed: number; last: string | undefined }> {
    const now = yield* ask(tx.now());
    const resources = yield* ask(tx.resources(idPrefix, after, PRUNE_BATCH));
    let removed = 0;
    for (const resource of resources) {
      // A resource with a live entry stays; one with dead entries only goes with them (nobody can be woken by them).
      if ((yield* ask(tx.entries(resource.id))).some((entry) => this.#isLive(entry, now))) continue;
      yield tx.dropResource(resource.id);
      removed++;
    }
    return { removed, last: resources.length < PRUNE_BATCH ? undefined : resources[resources.length - 1]!.id };
  }

  /** The stored-key prefix of every resource (of one kind). */
  #idPrefix(filter: { kind?: LockKind } | undefined): string {
    return filter?.kind ? `${this.#prefix}:${filter.kind}:` : `${this.#prefix}:`;
  }

  /** Reads a resource's entries, deletes the dead ones, and lists whom their removal lets hold (`except` left out). */
  *#live(tx: TableTx<W>, id: string, now: number, except: string | null): Steps<{ live: TableEntry<W>[]; wakes: readonly TableEntry<W>[] }> {
    const live: TableEntry<W>[] = [];
    let dead = 0;
    for (const entry of yield* ask(tx.entries(id))) {
      if (this.#isLive(entry, now)) live.push(entry);
      else {
        yield tx.deleteEntry(id, entry.owner);
        dead++;
      }
    }
    return { live, wakes: dead > 0 ? (grantable(live) as TableEntry<W>[]).filter((entry) => entry.owner !== except) : NONE };
  }

  *#state(tx: TableTx<W>, resource: TableResource, now: number): Steps<ResourceState> {
    const fence = yield* ask(tx.fence(resource.id));
    const live = (yield* ask(tx.entries(resource.id))).filter((entry) => this.#isLive(entry, now));
    return {
      key: { kind: resource.kind, name: resource.name },
      fence: fence ?? 0n,
      holders: live.filter((e) => e.held).map((e) => ({ owner: e.owner, mode: e.mode, token: e.token!, ttlMs: e.ttlMs, expiresInMs: Math.round(e.expiresAt - now), ...(e.value === undefined ? {} : { value: e.value }) })),
      waiters: live.filter((e) => !e.held).map((e, position) => ({ owner: e.owner, mode: e.mode, position, expiresInMs: Math.round(e.expiresAt - now) })),
    };
  }

  #isLive(entry: TableEntry<W>, now: number): boolean {
    return entry.expiresAt > now && entry.expiresAt - entry.ttlMs <= now + this.#restartedAfterMs;
  }
}

/**
 * Steps: the algorithm's body, one step per answer of the transaction. A step yields the
 * answer, and `drive` hands it back: at once when it is a value, after awaiting it when it
 * is a promise. So the algorithm is written once, and costs a synchronous driver no turn of
 * the event loop (an async body, awaiting about ten answers per acquire and release, cost
 * the SQLite store some 2.5 µs of CPU per cycle, about 4% of one on a tmpfs).
 */
type Steps<T> = Generator<unknown, T, any>;

/** ask yields one answer of the transaction and returns it, typed. */
function* ask<T>(answer: Awaitable<T>): Steps<T> {
  return yield answer;
}

/** drive runs `steps` to their end: synchronously while every answer is a value, else in a promise. */
function drive<T>(steps: Steps<T>): Awaitable<T> {
  let step = steps.next();
  while (!step.done) {
    if (isPromise(step.value)) return driveAsync(steps, step.value);
    step = steps.next(step.value);
  }
  return step.value;
}

async function driveAsync<T>(steps: Steps<T>, pending: Promise<unknown>): Promise<T> {
  for (;;) {
    // A rejected answer is thrown into the body at its step; an error of the body itself ends the drive.
    const [ok, answer] = await pending.then((value) => [true, value] as const, (error: unknown) => [false, error] as const);
    let step = ok ? steps.next(answer) : steps.throw(answer);
    while (!step.done && !isPromise(step.value)) step = steps.next(step.value);
    if (step.done) return step.value;
    pending = step.value as Promise<unknown>;
  }
}

/** isPromise: whether a driver answered with a promise (any thenable) rather than a value. */
export function isPromise(value: unknown): value is Promise<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

function entryOf<W>(request: GrantRequest, seq: number, held: boolean, token: bigint | null, ttlMs: number, now: number, wake: W | null): TableEntry<W> {
  return {
    owner: request.owner, seq, mode: request.mode, limit: request.limit, held, token, ttlMs, expiresAt: now + ttlMs,
    ...(request.value === undefined ? {} : { value: request.value }), wake,
  };
}
