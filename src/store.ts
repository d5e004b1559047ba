/**
 * The store contract: the narrow set of questions every store answers. Retries, deadlines,
 * keep-alive, lost-lease detection and events live once in `core/`; a store only decides,
 * atomically and on its own clock, who holds a resource.
 *
 * The model, shared by every primitive:
 * - A resource (`ResourceKey`) has a set of entries, one per owner, ordered by arrival (`seq`).
 *   An entry is either holding (it has a fencing token) or queued (waiting its turn).
 * - An entry may hold when `canHold` in `core/queue.ts` says so, looking only at the live
 *   entries ahead of it: a mutex is one exclusive permit, a semaphore N shared permits, a
 *   read-write lock mixes shared readers with exclusive writers, an election is a mutex whose
 *   holder carries a `value`.
 * - Each resource has a fence counter that the store increments on every grant, keeps
 *   durably, and never resets (not on release, expiry, `forceRelease`, or restart).
 * - Every entry has a TTL on the store's clock. Holders are kept alive by `extend`; queued
 *   entries by asking again (each `grant` with `enqueue` refreshes the entry). A store whose
 *   entries live as long as its client's session (`guarantees.outlivesClient` false: etcd,
 *   ZooKeeper) renews that session itself, once for all its entries; core then never renews
 *   entries one by one to keep them on the server.
 * - `kind` is only a namespace: a mutex and a semaphore of one name are different resources.
 *   Mode and limit always come from the entry, and every store keeps them per entry.
 * - The live entries of a resource agree on one `limit`. A newcomer (an owner with no live
 *   entry of the resource) that asks with another limit than theirs is refused, with nothing
 *   granted or queued: `GrantResult.limitInUse`. With no live entry, any limit is accepted,
 *   so a semaphore's permits change once every holder and waiter is gone. A primitive that
 *   mixes modes (a read-write lock) gives its exclusive and shared entries the same limit.
 *
 * Every call is bounded (contract v2): each method takes a `StoreCall` with a `signal` and a
 * `deadline`, and settles by them whatever its server does. Core also races every call
 * against both, so a store that cannot stop its driver still never holds a caller past its
 * promise; the store's part is to free what the call holds (a statement, a socket, a
 * stream) as soon as the signal aborts, so that nothing keeps the process alive after it.
 */

/** LockKind: the primitive a resource belongs to. A mutex and a semaphore of the same name never collide. */
export type LockKind = 'mutex' | 'semaphore' | 'rwlock' | 'election';

/** LOCK_KINDS: every `LockKind`, for checking one that comes from outside (an option, a flag, a stored key). */
export const LOCK_KINDS: readonly LockKind[] = Object.freeze(['mutex', 'semaphore', 'rwlock', 'election'] as const);

/** HoldMode: exclusive entries exclude everyone; shared entries exclude only exclusive ones. */
export type HoldMode = 'exclusive' | 'shared';

/** ResourceKey names one lockable resource in a store. */
export interface ResourceKey {
  readonly kind: LockKind;
  readonly name: string;
}

/**
 * StoreCall bounds one store call. The store settles the call by `deadline` (rejecting with
 * `StoreUnavailableError` when its server has not answered by then) and as soon as `signal`
 * aborts (rejecting with `signal.reason`). Core makes one per call; a store passes it on to
 * what it calls (a quorum to its nodes, a driver that takes a deadline).
 */
export interface StoreCall {
  /** Aborts when the caller gives up: its own signal, a timeout, or `close()`. */
  readonly signal: AbortSignal;
  /** The instant, on the host's monotonic clock (`monotonicNow()`), by which the call must settle. */
  readonly deadline: number;
}

/** GrantRequest asks the store to let `owner` hold `key`. */
export interface GrantRequest {
  readonly key: ResourceKey;
  /** 128-bit random id, unique per acquisition. */
  readonly owner: string;
  readonly mode: HoldMode;
  /**
   * Most entries that may hold at once: 1 for a mutex, the permits of a semaphore. Every
   * live entry of a resource has the same; a newcomer asking with another is refused.
   */
  readonly limit: number;
  /** The lease TTL if granted, on the store's clock. */
  readonly ttlMs: number;
  /**
   * When not granted: true keeps (or creates) a queued entry so that later arrivals cannot
   * overtake this owner; false leaves nothing behind (`tryAcquire`).
   */
  readonly enqueue: boolean;
  /** TTL of the queued entry; the waiter refreshes it by asking again before it runs out. */
  readonly queueTtlMs: number;
  /** Optional payload stored with the entry (a leader's proclaimed value). */
  readonly value?: string;
}

/**
 * GrantResult: granted with a fresh fencing token; busy, with a hint of when to ask again; or
 * refused because the request's `limit` is not the one the resource's live entries use.
 */
export type GrantResult =
  | {
      readonly granted: true;
      readonly token: bigint;
      /**
       * The TTL the store enforces on this grant, counted from when `grant` was called, when
       * it is shorter than the `ttlMs` asked for. Core then never lets the lease's deadline
       * pass it, and extends the entry every third of it for as long as the lease's own TTL
       * lasts (auto-renewing or not). Left out: the asked TTL is enforced.
       */
      readonly enforcedTtlMs?: number;
    }
  | {
      readonly granted: false;
      /** 0-based place among the live entries, when the store keeps a queue. */
      readonly position?: number;
      /** Time until the earliest entry ahead can expire: asking again before then cannot succeed unless someone releases. */
      readonly retryAfterMs?: number;
      readonly limitInUse?: undefined;
    }
  | {
      readonly granted: false;
      /**
       * limitInUse: the limit of the resource's live entries (holders or queued), which a
       * newcomer's request did not match. Every store answers this, atomically with its
       * decision, instead of granting or queueing: the newcomer leaves nothing behind, and
       * core rejects the acquisition with `PermitsMismatchError`. Entries that are not
       * baton's (an `etcdctl lock` key) state no limit and are not compared.
       */
      readonly limitInUse: number;
    };

/**
 * ExtendResult: whether the entry is still held; when the store enforces a shorter TTL than
 * the one asked for, that TTL, counted from when `extend` was called.
 */
export type ExtendResult = { readonly held: false } | { readonly held: true; readonly enforcedTtlMs?: number };

/** HolderInfo describes one entry that holds a resource. */
export interface HolderInfo {
  readonly owner: string;
  readonly mode: HoldMode;
  /**
   * The entry's fencing token. A store without fencing (`guarantees.fencing` false) puts 0n
   * here, in `ResourceState.fence` and in a grant's `token`; baton never shows users that
   * number: `lease.token`, `LockInfo` and `Leader` say `null`.
   */
  readonly token: bigint;
  /** The TTL the entry was granted (or last extended) with, as the store keeps it. */
  readonly ttlMs: number;
  /** Time left on the store's clock. */
  readonly expiresInMs: number;
  readonly value?: string;
  /** A holder that is not baton's: a Redis mutex's key set by another program (`SET NX PX`); `owner` is the key's value. */
  readonly foreign?: boolean;
}

/** WaiterInfo describes one queued entry. */
export interface WaiterInfo {
  readonly owner: string;
  readonly mode: HoldMode;
  /** 0-based place in the queue among waiters. */
  readonly position: number;
  readonly expiresInMs: number;
}

/** ResourceState is a snapshot of one resource, as `inspect` and `list` report it. */
export interface ResourceState {
  readonly key: ResourceKey;
  /** The last fencing token issued for this resource (0n if never granted, and always from a store without fencing). */
  readonly fence: bigint;
  /**
   * The limit the resource's live entries share (1 for a mutex, N for a semaphore of N
   * permits), when it has live entries and the store keeps it; left out otherwise.
   */
  readonly limit?: number;
  readonly holders: readonly HolderInfo[];
  readonly waiters: readonly WaiterInfo[];
}

/** StoreGuarantees: what a store promises, stated as data so that docs, types and tests agree. */
export interface StoreGuarantees {
  /**
   * Whose clock enforces TTLs. `observer`: no shared clock; each process counts an entry's TTL
   * on its own monotonic clock from when it first saw the entry's current record version
   * (DynamoDB). `wall`: the owners' and observers' wall clocks, trusted to agree within a
   * stated skew (DynamoDB's opt-in).
   */
  readonly clock: 'process' | 'host' | 'server' | 'quorum' | 'observer' | 'wall';
  /** Who can share locks through this store. */
  readonly scope: 'process' | 'host' | 'network';
  /** Tokens strictly increase per resource and survive restarts of clients and of the store. */
  readonly fencing: boolean;
  /** Queued waiters are granted in arrival order. */
  readonly fifo: boolean;
  /** The store implements `wait`, so a release wakes the next waiter instead of waiting for a poll. */
  readonly notify: boolean;
  /**
   * An entry outlives the client that made it until its own TTL runs out (memory, SQLite,
   * Redis). False for session-scoped stores (etcd, ZooKeeper): every entry of a client lives
   * as long as the client's session, which the store renews once for all of them, and ends
   * with it (`sessionDeadline` says until when it surely lasts).
   */
  readonly outlivesClient: boolean;
  /** Shared and exclusive entries can queue and hold on one resource (what a read-write lock needs). */
  readonly mixedModes: boolean;
}

/**
 * HandOff is a grant that a release made to a queued waiter and delivered with its wake-up,
 * saving the waiter a round trip. Its TTL runs from the waiter's last `grant` request (the
 * store times it from when that request reached it), so the waiter's local deadline stays
 * conservative; `ttlMs` is at most the queued entry's TTL, so a waiter that died while
 * queued blocks the lock no longer than its queue entry would have. Core extends it to the
 * TTL asked for if the lease is held long enough to need it.
 */
export interface HandOff {
  readonly token: bigint;
  readonly ttlMs: number;
}

/** MarkRequest asks `advanceMark` to move a mark up to `to` (with `note`), or with `renote` to rewrite the note of a mark at `to`. */
export interface MarkRequest {
  /** The new mark: an integer from 0 to 2^53 - 1 (ms since the epoch for a job), or -1 to read only. */
  readonly to: number;
  /** Free text kept with the mark, at most 2 000 characters (a job's record of its last run, as JSON). */
  readonly note?: string;
  readonly renote?: boolean;
}

/** MarkState: a mark as the store keeps it. */
export interface MarkState {
  /** The mark; -1 when there is none. */
  readonly at: number;
  readonly note?: string;
}

/**
 * LockStore is the contract every store implements. All methods are atomic on the store.
 * Method names follow baton's verbs; `grant` is the single try that `acquire` loops over.
 */
export interface LockStore {
  /** Short store name for messages and metrics, such as `sqlite` or `memory`. */
  readonly name: string;
  readonly guarantees: StoreGuarantees;
  /**
   * The longest a call may take when its caller sets no tighter bound (an `extend`, a
   * `release`, an `inspect`), in ms: core's default operation timeout for this store.
   */
  readonly defaultTimeoutMs: number;

  /**
   * grant tries to make `owner` a holder of `key`. A queued `owner` keeps its place; a
   * holder asking again is an error of the caller and is answered with its current token.
   * A newcomer whose `limit` differs from that of the live entries is answered `limitInUse`.
   */
  grant(request: GrantRequest, call: StoreCall): Promise<GrantResult>;

  /**
   * extend resets the TTL of a holding entry to `ttlMs`; `{ held: false }` when `owner` does
   * not hold `key` (expired or removed). A store that enforces less than `ttlMs` says so in
   * `enforcedTtlMs` (see `GrantResult`).
   */
  extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall): Promise<ExtendResult>;

  /** release removes `owner`'s entry, holding or queued, and wakes the entries that may now hold. False if there was none. */
  release(key: ResourceKey, owner: string, call: StoreCall): Promise<boolean>;

  /** inspect reports one resource; a resource never used reports fence 0n and no entries. */
  inspect(key: ResourceKey, call: StoreCall): Promise<ResourceState>;

  /** list reports every resource with a fence, holders or waiters, optionally of one kind. */
  list(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<ResourceState[]>;

  /** forceRelease removes every holder of `key` (an admin action) and returns how many; the fence is kept. */
  forceRelease(key: ResourceKey, call: StoreCall): Promise<number>;

  /**
   * prune removes what the store keeps for resources that nobody holds or waits for (names
   * used once and idle since), optionally of one kind, and answers how many it removed; a
   * store that keeps nothing for an idle resource answers 0. A name used again after it was
   * pruned issues tokens above every token issued before: the store keeps a store-wide floor
   * that a new resource's fence starts above, or starts fences on a clock that has passed
   * every token it issued (and keeps any resource whose fence is ahead of that clock).
   */
  prune(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<number>;

  /**
   * wait resolves when a queued `owner` may be able to hold `key`, or at `call.deadline`,
   * whichever is first (a wait that runs out resolves: it is a poll period, not a failure);
   * rejects with `signal.reason` when `call.signal` aborts. A wake-up that arrives before
   * `wait` is called is kept, so none is lost between `grant` and `wait`. It resolves with a
   * `HandOff` when the store granted `key` to `owner` while it waited. Stores that cannot
   * notify leave it out, and core falls back to backoff with jitter.
   */
  wait?(key: ResourceKey, owner: string, call: StoreCall): Promise<HandOff | void>;

  /**
   * watchLost lets a store report holders it dropped on its own (a forced release, an etcd
   * session lease or ZooKeeper session that expired), so that their signals abort at once
   * instead of at the next renewal. `reason` is `expired` when a session ran out, `revoked`
   * (the default) when the entry was removed. Returns a function that stops the reports.
   * Optional: a store without it reports losses through `extend` returning false.
   */
  watchLost?(listener: (key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void): () => void;

  /**
   * sessionDeadline: for a session-scoped store (`outlivesClient` false), the instant on the
   * host's monotonic clock until which its session surely lasts on the server (the last
   * renewal's send time plus the session TTL, less a drift margin). Core treats every lease
   * of the store as lost from then on, also in a process that was paused and has run no timer.
   */
  sessionDeadline?(): number;

  /**
   * unreachable says why the store cannot reach its server now, when it knows: one sentence
   * with the server's address (never its credentials) and the driver's last connection
   * error, such as `Cannot reach Redis at redis://10.0.0.5:6379: connect ECONNREFUSED
   * 10.0.0.5:6379`; undefined while connected. Core puts it in the message of a call that
   * got no answer by its deadline (a driver that queues commands while it reconnects never
   * fails them itself). Optional.
   */
  unreachable?(): string | undefined;

  /**
   * serverTime reads the clock that enforces TTLs (`guarantees.clock` 'server' or 'host'),
   * in ms since the epoch, so that an operator can see how far a host's clock is from the
   * store's. Bounded like every call. Optional: stores without such a clock leave it out.
   */
  serverTime?(call: StoreCall): Promise<number>;

  /**
   * downgrade turns `owner`'s holding entry of `key` into a shared one where it stands: same
   * place, token and TTL, no moment without it. The shared entries queued behind it that may
   * now hold are woken (or granted), as a release would. True when `owner` holds `key` (a
   * shared entry is left as it is); false when it does not. Optional, for stores with
   * `guarantees.mixedModes`: without it, a read-write lock's write lease cannot be downgraded
   * (core rejects with `UnsupportedError`).
   */
  downgrade?(key: ResourceKey, owner: string, call: StoreCall): Promise<boolean>;

  /**
   * advanceMark: one atomic compare on the durable mark of `key`, a number that only grows
   * (a scheduled job's last claimed slot, in ms since the epoch) with a note (the job's last
   * run). When the mark stands below `request.to`, or there is none, it becomes `to` with
   * `request.note`, and the answer says `advanced: true`: of callers racing for one `to`,
   * exactly one advances it. When it stands at `to` and `request.renote` is set, only the
   * note is replaced (`advanced` false). Otherwise nothing changes; `to` -1 reads. Answers the
   * mark as it stands after the call (`at` -1 when there is none). Marks live apart from the
   * entries: `release`, `forceRelease` and `prune` leave them, and they survive what the
   * store's fence survives. Optional: without it, the store cannot run scheduled jobs.
   */
  advanceMark?(key: ResourceKey, request: MarkRequest, call: StoreCall): Promise<MarkState & { readonly advanced: boolean }>;

  /** listMarks: every mark the store keeps (optionally of one kind), in the order of their keys. Optional, with `advanceMark`. */
  listMarks?(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<(MarkState & { readonly key: ResourceKey })[]>;

  /** proclaim rewrites the value of a holding entry (a leader's); false when `owner` does not hold `key`. Optional: without it, an election's value is fixed at `campaign`. */
  proclaim?(key: ResourceKey, owner: string, value: string, call: StoreCall): Promise<boolean>;

  /**
   * watch calls `listener` whenever the entries of `key` may have changed (one came, went or
   * changed its value), until the returned function is called. Optional: without it, core
   * polls (`observe` of an election).
   */
  watch?(key: ResourceKey, listener: () => void): () => void;

  /**
   * close frees the store's resources; a store given a caller's client leaves that client
   * open. Bounded like every call: when `call.signal` aborts (or without a `call`, after
   * `CLOSE_TIMEOUT_MS`), it drops its own connections at once rather than wait for a server.
   */
  close(call?: StoreCall): Promise<void>;
}

/** storageKey is the one string form of a key: `${prefix}:${kind}:${name}`. */
export function storageKey(prefix: string, key: ResourceKey): string {
  return `${prefix}:${key.kind}:${key.name}`;
}

/** CLOSE_TIMEOUT_MS: the longest `close()` takes, a baton instance's or a store's, stalled server or not. */
export const CLOSE_TIMEOUT_MS = 1000;
