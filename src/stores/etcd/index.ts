import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { storeCall } from '../../core/call.js';
import { monotonicNow, systemClock } from '../../core/clock.js';
import { canHold } from '../../core/queue.js';
import { checkOptions } from '../../core/validate.js';
import { WakeLatches } from '../../core/wake-latch.js';
import { ClosedError, InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import {
  CLOSE_TIMEOUT_MS,
  type ExtendResult,
  type GrantRequest,
  type GrantResult,
  type HolderInfo,
  type HoldMode,
  type LockKind,
  type LockStore,
  type ResourceKey,
  type ResourceState,
  type StoreCall,
  type WaiterInfo,
} from '../../store.js';

/**
 * EtcdClient: the part of an `etcd3` client (`new Etcd3({ hosts })`) the store uses, so you
 * can pass your own, configured with TLS (`credentials`), auth (`auth`) and every member's
 * address (`hosts`); the client fails over between members by itself.
 */
export type EtcdClient = Pick<Etcd3, 'kv' | 'leaseClient' | 'watch' | 'close'>;

/** EtcdStoreOptions configures `createEtcdStore`. */
export interface EtcdStoreOptions {
  /** Prefix of every key, ending with `/`. Default `baton/`: a mutex `NAME` lives under `baton/mutex/NAME/`. */
  prefix?: string;
  /**
   * TTL of the store's session lease, which every entry of this store shares, in ms; rounded
   * up to whole seconds, and raised by etcd to its minimum (about 2 s with default timings).
   * A lease whose TTL is longer is renewed by baton every third of it. Default 10 000.
   */
  sessionTtlMs?: number;
  /** Close the client on `close()`; for a client the store was given to own (`openStore` does). Default false. */
  closeClient?: boolean;
}

/** The session lease: one per store instance, shared by every entry it puts. */
interface Session {
  /** Lease ID, decimal (as etcd3 gives it) and hex (as etcd's concurrency package writes it in keys). */
  readonly id: string;
  readonly hex: string;
  /** The TTL etcd granted. */
  readonly ttlMs: number;
  /** Local instant the last successful keep-alive (or the grant) was sent: etcd's expiry is no earlier than this + ttlMs. */
  validFrom: number;
  /** The keep-alive in flight and when it was sent, so that extensions join it instead of sending their own. */
  inflight: Promise<void> | null;
  inflightAt: number;
  lost: boolean;
  timer: NodeJS.Timeout | null;
  /** Fires when the session's validity runs out without a keep-alive: every entry on it is lost. */
  expiry: NodeJS.Timeout | null;
  /** Key names this session has put and not yet seen deleted: a name is used again only once its key is surely gone. */
  readonly names: Set<string>;
}

/** One local entry: a key this store put for an owner, holding or queued. */
interface Entry {
  readonly key: ResourceKey;
  readonly etcdKey: string;
  readonly session: Session;
  revision: bigint;
  held: boolean;
  /** Deletes the key when the entry's own TTL (lease TTL or queue TTL) runs out unrenewed. */
  expiry: NodeJS.Timeout | null;
  /** A queued entry's watch window: one delete watcher per key, for the `permits` keys just ahead of it (none for a holder). */
  watchers: Map<string, Watcher> | null;
  /** The window holds every key ahead (exactly `permits` of them), so the deletion of any one lets this entry hold. */
  lastInLine: boolean;
  /** Revision of the last read of the queue: the window's deletions come after it. */
  readAt: bigint;
  /** The newest revision this entry knows of (its key's creation, a deletion in its window): a read older than that is stale. */
  seen: bigint;
}

const DEFAULT_PREFIX = 'baton/';
const DEFAULT_SESSION_TTL_MS = 10_000;


/** A keep-alive reply that does not arrive in this share of the session TTL is treated as failed. */
const KEEPALIVE_TIMEOUT_SHARE = 0.5;

/** escapeName keeps a name one path segment: `%` and `/` are percent-escaped, so that no name prefixes another. */
export function escapeName(name: string): string {
  return name.replaceAll('%', '%25').replaceAll('/', '%2F');
}

function unescapeName(segment: string): string {
  return segment.replaceAll('%2F', '/').replaceAll('%25', '%');
}

/** The end of the key range that starts with `prefix`. */
function rangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * EtcdStore keeps locks in etcd v3 with etcd's own lock recipe (`concurrency.Mutex`): an
 * entry is a key `<prefix><kind>/<name>/<session lease hex>` (`_1`, `_2`, ... for more entries
 * of the store on one lock at once; see #reserve) attached to the store's
 * session lease; entries are ordered by create revision (FIFO); a mutex is held by the
 * oldest key, a semaphore of N permits by the N oldest; the token is the key's create
 * revision. A waiter watches only the key just ahead of it (a semaphore waiter of N permits,
 * the N keys just ahead of it), so a release wakes at most N waiters. `etcdctl lock
 * <prefix>mutex/NAME` and a baton mutex on NAME exclude each other. See docs/guarantees.md for what etcd guarantees and what it does not.
 */
export class EtcdStore implements LockStore {
  readonly name = 'etcd';
  /**
   * Session-scoped (`outlivesClient` false): every key lives as long as the store's session
   * lease, renewed once for all of them. Entries of one resource hold one mode at a time for
   * now (`mixedModes` false): the queue reads only the keys ahead, not their modes.
   */
  readonly guarantees = Object.freeze({ clock: 'quorum', scope: 'network', fencing: true, fifo: true, notify: true, outlivesClient: false, mixedModes: false } as const);
  readonly defaultTimeoutMs = 5000;
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #sessionSeconds: number;
  readonly #closeClient: boolean;
  readonly #clock = systemClock;
  readonly #latches = new WakeLatches(systemClock);
  /** Keep-alive streams waiting for their reply: `close()` cancels them, since a stalled member would never end them. */
  readonly #keepAliveStreams = new Set<{ cancel(): void }>();
  readonly #entries = new Map<string, Entry>();
  /** Keys whose delete failed (etcd out of reach), with their session, which keeps them alive: deleted again after each keep-alive. */
  readonly #undeleted = new Map<string, Session>();
  readonly #listeners = new Set<(key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void>();
  #session: Promise<Session> | null = null;
  /** The session granted last, read without waiting (for `sessionDeadline`). */
  #current: Session | null = null;
  #closed = false;

  constructor(client: EtcdClient, options?: EtcdStoreOptions) {
    if (!client || typeof client.watch !== 'function' || typeof client.kv?.txn !== 'function' || typeof client.leaseClient?.leaseGrant !== 'function') {
      throw new InvalidArgumentError('client', 'Expected `client` to be an etcd3 client (new Etcd3({ hosts }))');
    }
    const o = checkOptions<EtcdStoreOptions>(options, 'options', ['prefix', 'sessionTtlMs', 'closeClient']);
    if (o.prefix !== undefined && (typeof o.prefix !== 'string' || o.prefix.length === 0 || !o.prefix.endsWith('/'))) {
      throw new InvalidArgumentError('prefix', `Expected \`prefix\` to be a non-empty string ending with "/", got ${String(o.prefix)}`);
    }
    const ttl = o.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 1000 || ttl > 2 ** 31 - 1) {
      throw new InvalidArgumentError('sessionTtlMs', `Expected \`sessionTtlMs\` to be an integer from 1000 to 2^31 - 1, got ${String(ttl)}`);
    }
    this.#client = client;
    this.#prefix = o.prefix ?? DEFAULT_PREFIX;
    this.#sessionSeconds = Math.ceil(ttl / 1000);
    this.#closeClient = o.closeClient ?? false;
  }

  /** resourcePrefix is the key prefix of one resource: `etcdctl lock` on it (without the final `/`) excludes with a baton mutex. */
  resourcePrefix(key: ResourceKey): string {
    return `${this.#prefix}${key.kind}/${escapeName(key.name)}/`;
  }

  /** sessionLeaseId: the session lease's ID in hex, as etcd's tools print it, once a session exists. */
  async sessionLeaseId(): Promise<string> {
    return (await this.#call(() => this.#ensureSession())).hex;
  }

  async grant(request: GrantRequest, _call?: StoreCall): Promise<GrantResult> {
    return this.#latches.during(request.owner, request.enqueue, () => this.#call(async () => {
      try {
        return await this.#grant(request);
      } catch (error) {
        // The session ran out between two keep-alives: etcd refuses keys on it. Start a new one, once.
        if (!isLeaseNotFound(error)) throw error;
        await this.#loseSession(await this.#ensureSession());
        return this.#grant(request);
      }
    }));
  }

  async #grant(request: GrantRequest): Promise<GrantResult> {
    const { key, owner } = request;
    const session = await this.#ensureSession();
    let entry = this.#entries.get(owner);
    if (entry && entry.session !== session) {
      this.#drop(owner, entry);
      entry = undefined;
    }
    const startedAt = this.#clock.now();
    // How many entries may hold at once: the entry holds when fewer than this many keys are ahead of it.
    const permits = request.mode === 'exclusive' ? 1 : request.limit;
    if (entry) {
      // A queued owner asking again. The watch may already have seen it become a holder: no round trip.
      if (entry.held) return this.#granted(owner, entry, request.ttlMs, startedAt);
      // Else one read-only transaction (etcd serves it without a log write): is the key still
      // ours, and which keys are just ahead of it? Only `permits` + 1 of them are sent.
      // Serializable first: the member answers from its own state, without waiting for the
      // leader (nor for a disk write in progress). A stale answer is safe: keys never join
      // the queue ahead of an entry, so "fewer than `permits` ahead" stays true once true (while
      // the entry's own key lives, which no read can promise beyond its own revision anyway).
      // But an answer older than the entry's key or than a deletion it saw, or one without the
      // key, is asked again of the leader (linearizable) before anything is concluded from it.
      const reask = (serializable: boolean) => this.#client.kv.txn({
        compare: [{ key: Buffer.from(entry!.etcdKey), target: 'Create', result: 'Equal', create_revision: String(entry!.revision) }],
        success: [{ request_range: { ...this.#ahead(key, entry!.revision - 1n, permits + 1), serializable } }],
        failure: [],
      });
      let reply = await reask(true);
      if (!reply.succeeded || BigInt(reply.header.revision) < entry.seen) reply = await reask(false);
      // Dropped while the read was on its way (its queue TTL ran out, its session was lost): its key is gone or going.
      const dropped = this.#entries.get(owner) !== entry;
      if (reply.succeeded && !dropped) {
        // The watch may have seen the entry become a holder while this read was on its way: it saw the later state.
        if (entry.held) return this.#granted(owner, entry, request.ttlMs, startedAt);
        const ahead = reply.responses[0]?.response_range?.kvs ?? [];
        if (ahead.length < permits) {
          entry.held = true;
          this.#unwatch(entry);
          return this.#granted(owner, entry, request.ttlMs, startedAt);
        }
        if (!request.enqueue) {
          // The last try of a waiter: leave nothing behind.
          this.#drop(owner, entry);
          await this.#deleteKey(entry.etcdKey, entry.session);
          return { granted: false };
        }
        this.#track(owner, entry, request.queueTtlMs);
        this.#watch(owner, entry, ahead.slice(0, permits), ahead.length === permits, BigInt(reply.header.revision));
        return ahead.length === permits ? { granted: false, position: permits } : { granted: false };
      }
      // The key is gone (deleted by hand, or its queue TTL ran out; with a lost session, the put
      // below fails and `grant` starts a new session): the owner queues again at the back.
      this.#drop(owner, entry);
      if (!reply.succeeded) entry.session.names.delete(entry.etcdKey);
      entry = undefined;
    }

    const pfx = this.resourcePrefix(key);
    const etcdKey = this.#reserve(key, pfx, session, owner);
    // Each entry keeps its mode and limit in its value (an election's value is the leader's proclamation, as etcd's Election has it: one exclusive leader).
    const value = key.kind === 'election' ? (request.value ?? '') : `${request.mode} ${request.limit} ${owner}`;
    const put = { request_put: { key: Buffer.from(etcdKey), value: Buffer.from(value), lease: session.id } };
    // A newcomer, in one round trip. The uncontended case is a single put, guarded by "nothing
    // is under the prefix" (a compare over the key range). Otherwise: a waiter takes its place
    // and reads the count and the keys just ahead of it (its own key is the newest); a mutex
    // tryAcquire only counts the entries, leaving nothing behind.
    const counts = !request.enqueue && request.mode === 'exclusive';
    let reply: Awaited<ReturnType<EtcdClient['kv']['txn']>>;
    try {
      reply = await this.#client.kv.txn({
        compare: [{ key: Buffer.from(pfx), range_end: rangeEnd(pfx), target: 'Version', result: 'Equal', version: 0 }],
        success: [put],
        failure: counts
          ? [{ request_range: { key: Buffer.from(pfx), range_end: rangeEnd(pfx), count_only: true } }]
          : [put, { request_range: this.#ahead(key, 0n, permits + 1) }],
      });
    } catch (error) {
      // The put may have been applied with its reply lost: take the key away (it would hold
      // or queue for nobody until the session ends), which also frees its name.
      this.#deleteKey(etcdKey, session).catch(() => undefined);
      throw error;
    }
    const revision = BigInt(reply.header.revision);
    if (reply.succeeded) {
      const created: Entry = this.#newEntry(key, etcdKey, session, revision);
      created.held = true;
      return this.#granted(owner, created, request.ttlMs, startedAt);
    }
    if (counts) {
      session.names.delete(etcdKey); // nothing was put
      return { granted: false, position: Number(reply.responses[0]?.response_range?.count ?? 1) };
    }
    const range = reply.responses[1]?.response_range;
    const mine = range?.kvs[0];
    if (!range || !mine || mine.key.toString() !== etcdKey) throw new Error(`the key ${etcdKey} is not the newest in the range read in the transaction that put it`);
    const position = Number(range.count) - 1;
    const created = this.#newEntry(key, etcdKey, session, BigInt(mine.create_revision));
    if (position < permits) {
      created.held = true;
      return this.#granted(owner, created, request.ttlMs, startedAt);
    }
    if (!request.enqueue) {
      // Leave nothing behind.
      await this.#deleteKey(etcdKey, session);
      return { granted: false, position };
    }
    this.#track(owner, created, request.queueTtlMs);
    this.#watch(owner, created, range.kvs.slice(1, 1 + permits), position === permits, revision);
    return { granted: false, position };
  }

  #newEntry(key: ResourceKey, etcdKey: string, session: Session, revision: bigint): Entry {
    return { key, etcdKey, session, revision, held: false, expiry: null, watchers: null, lastInLine: false, readAt: 0n, seen: revision };
  }

  /** Records a holding entry; its key lives as long as the session, which the store renews. */
  #granted(owner: string, entry: Entry, ttlMs: number, _startedAt: number): GrantResult {
    this.#track(owner, entry, ttlMs);
    this.#watchHeld(owner, entry);
    return { granted: true, token: entry.revision };
  }

  /**
   * The range of the keys of `key` created before `maxRevision` (all of them for 0n), newest
   * first, at most `limit`, keys only: the keys just ahead of an entry. etcd's `count` is
   * that of the whole prefix (it ignores the revision bound).
   */
  #ahead(key: ResourceKey, maxRevision: bigint, limit: number) {
    const pfx = this.resourcePrefix(key);
    return {
      key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Descend', sort_target: 'Create', keys_only: true, limit,
      ...(maxRevision > 0n ? { max_create_revision: String(maxRevision) } : {}),
    } as const;
  }

  /** The rule of `canHold` for the entry at `index`, with the modes of the entries ahead of it. */
  #holds(entries: readonly EntryInfo[], index: number): boolean {
    const entry = entries[index]!;
    return canHold(entry.mode, entry.limit, entries.slice(0, index));
  }

  /**
   * Watches the deletions that may let a queued entry hold: an entry with `permits` permits
   * holds once fewer than `permits` keys are ahead of it, which cannot happen while the
   * `permits` keys just ahead of it all live (keys only leave the queue ahead; newer ones
   * join behind). So it watches those keys only, each from the revision after the read that
   * found them, so that no deletion in between is missed: a mutex waiter watches its
   * predecessor, and a release wakes at most `permits` waiters however long the queue.
   * Watchers of keys still in the window are kept. When the window holds every key ahead
   * (`lastInLine`), the first deletion in it makes the entry a holder without another read.
   */
  #watch(owner: string, entry: Entry, window: IKeyValue[], lastInLine: boolean, readAt: bigint): void {
    entry.lastInLine = lastInLine;
    entry.readAt = readAt;
    const keys = new Map(window.map((kv) => [kv.key.toString(), kv]));
    const watchers = (entry.watchers ??= new Map());
    for (const [watched, watcher] of watchers) {
      if (keys.has(watched)) continue;
      watchers.delete(watched);
      cancel(watcher);
    }
    for (const [target, kv] of keys) {
      if (watchers.has(target)) continue;
      // From now on, not from `readAt + 1`: etcd keeps a watch that starts at its current
      // revision in step with every write, while one that starts in the past waits for etcd's
      // catch-up loop (every 100 ms) before it gets any event. What happened between the read
      // and the watch's creation is looked up once the watch exists.
      const watcher = this.#client.watch().key(target).only('delete').watcher();
      watcher.on('delete', (deleted: IKeyValue) => this.#deleted(owner, entry, BigInt(deleted.mod_revision)));
      watcher.once('connected', (res: { header: { revision: string } }) => {
        if (BigInt(res.header.revision) > readAt) void this.#recheck(owner, entry, watcher, kv, BigInt(res.header.revision));
      });
      // etcd3 reconnects watchers itself, from the revision after the last it saw. Meanwhile the
      // waiter asks again: a unary call, which also steers etcd3 away from a member that died (see #steer).
      watcher.on('disconnected', () => this.#latches.fire(owner));
      watcher.on('error', () => this.#latches.fire(owner));
      watchers.set(target, watcher);
    }
  }

  /**
   * A window key's watch was created at revision `createdAt`, after the read that found the
   * key: was the key deleted in between? One read at `createdAt` or later tells (served by the
   * member, or by the leader if the member lags behind `createdAt`); the watch has the rest.
   */
  async #recheck(owner: string, entry: Entry, watcher: Watcher, kv: IKeyValue, createdAt: bigint): Promise<void> {
    try {
      let reply = await this.#client.kv.range({ key: kv.key, keys_only: true, serializable: true });
      if (BigInt(reply.header.revision) < createdAt) reply = await this.#client.kv.range({ key: kv.key, keys_only: true });
      if (entry.watchers?.get(kv.key.toString()) !== watcher) return;
      const found = reply.kvs[0];
      // Gone since the read (a key never comes back with the same create revision).
      if (!found || found.create_revision !== kv.create_revision) this.#deleted(owner, entry, BigInt(reply.header.revision));
    } catch {
      this.#latches.fire(owner);
    }
  }

  /** A key in a queued entry's window was deleted, at or before `revision`: the entry holds if the window was everything ahead, else it reads the queue again. */
  #deleted(owner: string, entry: Entry, revision: bigint): void {
    if (this.#entries.get(owner) !== entry || entry.held) return;
    if (revision > entry.seen) entry.seen = revision;
    if (entry.lastInLine && revision > entry.readAt) {
      entry.held = true;
      this.#unwatch(entry);
    }
    this.#latches.fire(owner);
  }

  #unwatch(entry: Entry): void {
    if (!entry.watchers) return;
    for (const watcher of entry.watchers.values()) cancel(watcher);
    entry.watchers = null;
  }

  /** Records an entry and (re)arms the deletion of its key when its own TTL runs out without renewal. */
  #track(owner: string, entry: Entry, ttlMs: number): void {
    this.#entries.set(owner, entry);
    if (entry.expiry) clearTimeout(entry.expiry);
    entry.expiry = setTimeout(() => {
      if (this.#entries.get(owner) !== entry) return;
      this.#drop(owner, entry);
      this.#deleteKey(entry.etcdKey, entry.session).catch(() => undefined);
    }, ttlMs);
    entry.expiry.unref();
  }

  /** Forgets a local entry (its key is deleted by the caller, or died with its session). */
  #drop(owner: string, entry: Entry): void {
    if (entry.expiry) clearTimeout(entry.expiry);
    entry.expiry = null;
    this.#unwatch(entry);
    if (this.#entries.get(owner) === entry) this.#entries.delete(owner);
  }

  /**
   * extend sets a holding entry's own TTL, after which the store deletes its key unless it is
   * extended again. It asks etcd nothing: the key lives as long as the session, which the
   * store renews once for all its entries, and a deletion by someone else (a forced release)
   * reaches the store through its watch.
   */
  async extend(key: ResourceKey, owner: string, ttlMs: number, _call?: StoreCall): Promise<ExtendResult> {
    const entry = this.#entries.get(owner);
    if (!entry || !entry.held || entry.key.kind !== key.kind || entry.key.name !== key.name) return { held: false };
    if (entry.session.lost || monotonicNow() >= this.#validUntil(entry.session)) {
      this.#drop(owner, entry);
      return { held: false };
    }
    this.#track(owner, entry, ttlMs);
    return { held: true };
  }

  /**
   * sessionDeadline: until when the session surely lasts on etcd: the last keep-alive's send
   * time plus its TTL, less 1% for drift. Every lease of the store ends then.
   */
  sessionDeadline(): number {
    const session = this.#current;
    return session ? this.#validUntil(session) : Infinity;
  }

  #validUntil(session: Session): number {
    return session.validFrom + session.ttlMs - Math.max(1, Math.floor(session.ttlMs * 0.01));
  }

  async release(key: ResourceKey, owner: string, _call?: StoreCall): Promise<boolean> {
    this.#latches.forget(owner);
    const entry = this.#entries.get(owner);
    if (!entry || entry.key.kind !== key.kind || entry.key.name !== key.name) return false;
    this.#drop(owner, entry);
    if (entry.session.lost) return false;
    const reply = await this.#call(() => this.#deleteKey(entry.etcdKey, entry.session));
    return Number(reply.deleted) > 0;
  }

  /**
   * Names a new key of this session on `pfx`. Keys of mutexes and semaphores reuse a few names
   * a session (`<lease hex>`, then `<lease hex>_1`, `_2`, ... for entries held at once), and
   * carry the owner in their value: etcd keeps every deleted key in its index until the
   * cluster is compacted (never, by default), and a lock that wrote a new name for each
   * acquisition would make every range over its prefix slower as it is used. An election's
   * key is named by its owner (`<lease hex>_<owner>`), its value being the proclamation.
   */
  #reserve(key: ResourceKey, pfx: string, session: Session, owner: string): string {
    let name = key.kind === 'election' ? `${pfx}${session.hex}_${owner}` : `${pfx}${session.hex}`;
    for (let n = 1; session.names.has(name); n++) name = `${pfx}${session.hex}_${n}`;
    session.names.add(name);
    return name;
  }

  /** keyOf: the etcd key of the entry `owner` holds or queues in this store, if any (for tools and tests). */
  keyOf(owner: string): string | undefined {
    return this.#entries.get(owner)?.etcdKey;
  }

  /**
   * Deletes a key this store put; its name may be used again once etcd confirms. If etcd
   * cannot be reached, the key is remembered and deleted again after each keep-alive: its
   * session keeps it alive, so a key forgotten here would hold the lock until the store closes.
   */
  async #deleteKey(etcdKey: string, session: Session): Promise<{ deleted: string }> {
    try {
      const reply = await this.#client.kv.deleteRange({ key: Buffer.from(etcdKey) });
      session.names.delete(etcdKey);
      return reply;
    } catch (error) {
      if (!session.lost && !this.#closed) this.#undeleted.set(etcdKey, session);
      throw error;
    }
  }

  /** Tries again the deletes that failed on a session just renewed; those of a lost session went with it. */
  #retryDeletes(session: Session): void {
    for (const [etcdKey, owner] of [...this.#undeleted]) {
      if (owner !== session && !owner.lost) continue;
      this.#undeleted.delete(etcdKey);
      if (owner === session) this.#deleteKey(etcdKey, session).catch(() => undefined);
    }
  }

  async forceRelease(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    const pfx = this.resourcePrefix(key);
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Ascend', sort_target: 'Create' }, grpcDeadline(call)));
    const entries = reply.kvs.map((kv) => entryInfo(key, kv, pfx));
    let removed = 0;
    for (const [index, kv] of reply.kvs.entries()) {
      if (!this.#holds(entries, index)) continue;
      // Delete the holder's key only if it is still the same key (same create revision).
      const deleted = await this.#call(() => this.#client.kv.txn({
        compare: [{ key: kv.key, target: 'Create', result: 'Equal', create_revision: kv.create_revision }],
        success: [{ request_delete_range: { key: kv.key } }],
        failure: [],
      }, grpcDeadline(call)));
      if (deleted.succeeded) removed++;
    }
    return removed;
  }

  async inspect(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState> {
    const pfx = this.resourcePrefix(key);
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Ascend', sort_target: 'Create' }, grpcDeadline(call)));
    return this.#state(key, reply.kvs, call);
  }

  async #state(key: ResourceKey, kvs: IKeyValue[], call: StoreCall): Promise<ResourceState> {
    const pfx = this.resourcePrefix(key);
    // A key's TTL is its lease's: granted and left, in whole seconds as etcd reports them (left is rounded down).
    const ttls = new Map<string, Promise<{ ttlMs: number; leftMs: number }>>();
    const ttlOf = (lease: string): Promise<{ ttlMs: number; leftMs: number }> => {
      if (!ttls.has(lease)) {
        ttls.set(lease, lease === '0'
          ? Promise.resolve({ ttlMs: Infinity, leftMs: Infinity })
          : this.#call(() => this.#client.leaseClient.leaseTimeToLive({ ID: lease }, grpcDeadline(call))).then(
              (r) => ({ ttlMs: Math.max(0, Number(r.grantedTTL)) * 1000, leftMs: Math.max(0, Number(r.TTL)) * 1000 }),
              () => ({ ttlMs: 0, leftMs: 0 }),
            ));
      }
      return ttls.get(lease)!;
    };
    const holders: HolderInfo[] = [];
    const waiters: WaiterInfo[] = [];
    const entries = kvs.map((kv) => entryInfo(key, kv, pfx));
    for (const [index, kv] of kvs.entries()) {
      const { owner, mode } = entries[index]!;
      const { ttlMs, leftMs: expiresInMs } = await ttlOf(kv.lease);
      if (this.#holds(entries, index)) {
        const value = key.kind === 'election' ? kv.value.toString() : '';
        holders.push({ owner, mode, token: BigInt(kv.create_revision), ttlMs, expiresInMs, ...(value ? { value } : {}) });
      } else {
        waiters.push({ owner, mode, position: waiters.length, expiresInMs });
      }
    }
    // etcd keeps no counter: the last token is the newest holder's create revision (0n with no holder).
    const fence = holders.reduce((max, h) => (h.token > max ? h.token : max), 0n);
    return { key: { kind: key.kind, name: key.name }, fence, holders, waiters };
  }

  async list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    const base = filter?.kind ? `${this.#prefix}${filter.kind}/` : this.#prefix;
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(base), range_end: rangeEnd(base), sort_order: 'Ascend', sort_target: 'Create' }, grpcDeadline(call)));
    const groups = new Map<string, IKeyValue[]>();
    for (const kv of reply.kvs) {
      const rest = kv.key.toString().slice(this.#prefix.length);
      const first = rest.indexOf('/');
      const last = rest.lastIndexOf('/');
      if (first < 0 || last === first) continue;
      const id = rest.slice(0, last);
      if (!groups.has(id)) groups.set(id, []);
      groups.get(id)!.push(kv);
    }
    const states: ResourceState[] = [];
    for (const id of [...groups.keys()].sort()) {
      const slash = id.indexOf('/');
      const kind = id.slice(0, slash) as LockKind;
      if (!['mutex', 'semaphore', 'rwlock', 'election'].includes(kind)) continue;
      states.push(await this.#state({ kind, name: unescapeName(id.slice(slash + 1)) }, groups.get(id)!, call));
    }
    return states;
  }

  async wait(_key: ResourceKey, owner: string, call: StoreCall): Promise<void> {
    // etcd never hands a lock over with the wake-up: the waiter asks again.
    await this.#latches.wait(owner, Math.max(0, call.deadline - monotonicNow()), call.signal);
  }

  async proclaim(key: ResourceKey, owner: string, value: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const entry = this.#entries.get(owner);
    if (!entry || !entry.held || entry.key.kind !== key.kind || entry.key.name !== key.name || entry.session.lost) return false;
    // etcd's Election.Proclaim: rewrite the leader key only while it is still the same key.
    const reply = await this.#call(() => this.#client.kv.txn({
      compare: [{ key: Buffer.from(entry.etcdKey), target: 'Create', result: 'Equal', create_revision: String(entry.revision) }],
      success: [{ request_put: { key: Buffer.from(entry.etcdKey), value: Buffer.from(value), lease: entry.session.id } }],
      failure: [],
    }, grpcDeadline(call)));
    return reply.succeeded;
  }

  watch(key: ResourceKey, listener: () => void): () => void {
    const watcher = this.#client.watch().prefix(this.resourcePrefix(key)).watcher();
    watcher.on('put', () => listener());
    watcher.on('delete', () => listener());
    watcher.on('error', () => listener());
    return () => cancel(watcher);
  }

  watchLost(listener: (key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * close revokes the session lease, which deletes every key this store put in one step,
   * and stops its keep-alive and watches, within `call` (by default `CLOSE_TIMEOUT_MS`): if
   * etcd does not answer by then, the keys go when the session expires. The client you
   * passed stays open unless `closeClient` was set.
   */
  async close(call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#latches.fireAll();
    for (const [owner, entry] of [...this.#entries]) this.#drop(owner, entry);
    for (const stream of this.#keepAliveStreams) stream.cancel();
    // Bounded: with etcd out of reach (or the client still reconnecting after a restart), a
    // session grant in flight or the revoke could hang; the keys then go when the session
    // expires, since its keep-alive stops here. A grant that completes later revokes itself.
    const bound = call ?? storeCall(CLOSE_TIMEOUT_MS);
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), Math.max(0, bound.deadline - monotonicNow()));
      timer.unref();
      bound.signal.addEventListener('abort', () => resolve(null), { once: true });
    });
    try {
      const session = await Promise.race([this.#session?.catch(() => null) ?? null, giveUp]);
      if (session) {
        this.#stopSession(session);
        await Promise.race([this.#client.leaseClient.leaseRevoke({ ID: session.id }, grpcDeadline(bound)).catch(() => undefined), giveUp]);
      }
    } finally {
      clearTimeout(timer);
    }
    if (this.#closeClient) this.#client.close();
  }

  /** Stops a session's keep-alive and local expiry; its keys go with its lease. */
  #stopSession(session: Session): void {
    session.lost = true;
    if (session.timer) clearTimeout(session.timer);
    if (session.expiry) clearTimeout(session.expiry);
    session.timer = null;
    session.expiry = null;
  }

  /** Arms the local end of a session's validity: if no keep-alive moves it, every entry on it is lost then. */
  #armExpiry(session: Session): void {
    if (session.lost) return;
    if (session.expiry) clearTimeout(session.expiry);
    session.expiry = setTimeout(() => {
      session.expiry = null;
      if (session.lost || this.#closed) return;
      // etcd may still keep the lease a little longer (our keep-alives did not reach it, or came
      // too late); its keys must go all the same, since their holders are told they are lost.
      void this.#loseSession(session);
      this.#client.leaseClient.leaseRevoke({ ID: session.id }, { deadline: new Date(Date.now() + this.defaultTimeoutMs) }).catch(() => undefined);
    }, Math.max(0, this.#validUntil(session) - monotonicNow()));
    session.expiry.unref();
  }

  /**
   * Watches a held key for its deletion by someone else (a forced release, etcdctl): its
   * lease is lost at once. The watch shares the client's one watch stream, and costs etcd
   * nothing while the key lives: nothing is asked of etcd per lease while leases are held.
   */
  #watchHeld(owner: string, entry: Entry): void {
    if (entry.watchers || this.#closed) return;
    const watcher = this.#client.watch().key(entry.etcdKey).only('delete').watcher();
    watcher.on('delete', (kv: IKeyValue) => {
      if (this.#entries.get(owner) !== entry || !entry.held || BigInt(kv.mod_revision) <= entry.revision) return;
      this.#drop(owner, entry);
      entry.session.names.delete(entry.etcdKey);
      for (const listener of this.#listeners) listener(entry.key, owner, 'revoked');
    });
    watcher.on('error', () => undefined);
    entry.watchers = new Map([[entry.etcdKey, watcher]]);
  }

  /** The live session, granted on first need (and again after one was lost). */
  #ensureSession(): Promise<Session> {
    if (this.#closed) return Promise.reject(new ClosedError('This etcd store'));
    const current = this.#session;
    if (current) return current;
    const granting = (async () => {
      const sentAt = this.#clock.now();
      const reply = await this.#client.leaseClient.leaseGrant({ TTL: this.#sessionSeconds });
      const session: Session = {
        id: String(reply.ID),
        hex: BigInt(reply.ID).toString(16),
        ttlMs: Number(reply.TTL) * 1000,
        validFrom: sentAt,
        inflight: null,
        inflightAt: 0,
        lost: false,
        timer: null,
        expiry: null,
        names: new Set(),
      };
      if (this.#closed) {
        await this.#client.leaseClient.leaseRevoke({ ID: session.id }).catch(() => undefined);
        throw new ClosedError('This etcd store');
      }
      this.#current = session;
      this.#armExpiry(session);
      this.#schedule(session, session.ttlMs / 3);
      return session;
    })();
    this.#session = granting;
    granting.catch(() => {
      if (this.#session === granting) this.#session = null;
    });
    return granting;
  }

  /** The background keep-alive: every third of the session TTL, as etcd's own clients do; sooner after a failure. */
  #schedule(session: Session, delayMs: number): void {
    if (session.lost || this.#closed) return;
    session.timer = setTimeout(() => {
      session.timer = null;
      this.#keepAlive(session).then(
        () => {
          this.#armExpiry(session);
          this.#retryDeletes(session);
          this.#schedule(session, session.ttlMs / 3);
        },
        () => this.#schedule(session, Math.min(250, session.ttlMs / 10)),
      );
    }, delayMs);
    session.timer.unref();
  }

  /**
   * Renews the session so that its TTL runs from about now. A keep-alive sent within the
   * drift margin (1% of the TTL) is as good as a new one, so concurrent extensions of every
   * lease share one: the deadline each computes from its own start stays on the safe side,
   * since `extend` reports the TTL counted from the keep-alive's send time anyway.
   */
  #keepAlive(session: Session): Promise<void> {
    const now = this.#clock.now();
    const margin = Math.max(1, Math.floor(session.ttlMs * 0.01));
    if (session.validFrom >= now - margin) return Promise.resolve();
    if (session.inflight && session.inflightAt >= now - margin) return session.inflight;
    const run = this.#keepAliveOnce(session, now);
    session.inflight = run;
    session.inflightAt = now;
    const clear = (): void => {
      if (session.inflight === run) session.inflight = null;
    };
    run.then(clear, clear);
    return run;
  }

  async #keepAliveOnce(session: Session, sentAt: number): Promise<void> {
    try {
      await this.#keepAliveStream(session, sentAt);
    } catch (error) {
      await this.#steer(session);
      throw error;
    }
  }

  /**
   * Steers etcd3 away from a member that stopped answering. etcd3 opens each stream (a
   * keep-alive, a watch) on a member it picks, and a stream that fails does not count against
   * that member, so after a member dies etcd3 may go on picking it (always, when it tries its
   * hosts in order). A unary call does count: its failures on the dead member open that
   * member's circuit breaker, and etcd3 sends the next calls and streams to the others. The
   * call asks for the session's TTL, so a session that etcd no longer knows is found lost.
   */
  async #steer(session: Session): Promise<void> {
    const timeoutMs = Math.round(session.ttlMs * KEEPALIVE_TIMEOUT_SHARE);
    try {
      const reply = await this.#client.leaseClient.leaseTimeToLive({ ID: session.id }, { deadline: Date.now() + timeoutMs });
      if (Number(reply.TTL) < 0) await this.#loseSession(session);
    } catch (error) {
      if (isLeaseNotFound(error)) await this.#loseSession(session);
    }
  }

  async #keepAliveStream(session: Session, sentAt: number): Promise<void> {
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    this.#keepAliveStreams.add(stream);
    try {
      if (this.#closed) throw new ClosedError('This etcd store');
      const reply = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        // A background wait: it keeps no process alive (the stream is cancelled by close()).
        timer = setTimeout(() => reject(new Error(`no keep-alive reply within ${Math.round(session.ttlMs * KEEPALIVE_TIMEOUT_SHARE)} ms`)), session.ttlMs * KEEPALIVE_TIMEOUT_SHARE);
        timer.unref();
        stream.write({ ID: session.id });
      });
      if (Number(reply.TTL) <= 0) {
        await this.#loseSession(session);
        return;
      }
      if (sentAt > session.validFrom) session.validFrom = sentAt;
    } finally {
      clearTimeout(timer);
      this.#keepAliveStreams.delete(stream);
      stream.on('error', () => undefined);
      stream.end();
    }
  }

  /** The session ran out on etcd (the process stalled, or etcd was out of reach longer than its TTL): every key on it is gone. */
  async #loseSession(session: Session): Promise<void> {
    if (session.lost) return;
    this.#stopSession(session);
    if (this.#session && (await this.#session.catch(() => null)) === session) this.#session = null;
    for (const [owner, entry] of [...this.#entries]) {
      if (entry.session !== session) continue;
      this.#drop(owner, entry);
      if (entry.held) for (const listener of this.#listeners) listener(entry.key, owner, 'expired');
      else this.#latches.fire(owner); // a queued owner asks again, on a new session, at the back of the queue
    }
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('This etcd store');
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ClosedError || error instanceof StoreUnavailableError) throw error;
      if (isLeaseNotFound(error)) throw error;
      throw new StoreUnavailableError('etcd', `etcd failed: ${(error as Error).message}`, { cause: error });
    }
  }
}

/** Stops a watcher; it reports nothing from now on. */
function cancel(watcher: Watcher): void {
  watcher.removeAllListeners();
  watcher.on('error', () => undefined);
  watcher.cancel().catch(() => undefined);
}

/** EntryInfo: who an entry is for, and how it holds, as its key and value say. */
interface EntryInfo {
  readonly owner: string;
  readonly mode: HoldMode;
  readonly limit: number;
}

/**
 * The entry of a key: baton's mutex, semaphore (and future) keys hold `mode limit owner` in
 * their value; an election key is one exclusive leader with its owner after the lease in its
 * name (its value is the proclamation); a key that is not baton's (`etcdctl lock`'s, empty)
 * is exclusive, named by what follows the prefix (its lease).
 */
function entryInfo(key: ResourceKey, kv: IKeyValue, pfx: string): EntryInfo {
  const suffix = kv.key.toString().slice(pfx.length);
  if (key.kind === 'election') return { owner: suffix.slice(suffix.indexOf('_') + 1), mode: 'exclusive', limit: 1 };
  const match = /^(exclusive|shared) (\d+) (.+)$/s.exec(kv.value.toString());
  if (!match) return { owner: suffix, mode: 'exclusive', limit: 1 };
  return { owner: match[3]!, mode: match[1] as HoldMode, limit: Number(match[2]) || 1 };
}

/** The gRPC options that end a call at `call`'s deadline. */
function grpcDeadline(call: StoreCall): { deadline: Date } {
  return { deadline: new Date(Date.now() + Math.max(0, call.deadline - monotonicNow())) };
}

function isLeaseNotFound(error: unknown): boolean {
  return error instanceof Error && (error.name === 'EtcdLeaseInvalidError' || /requested lease not found/.test(error.message));
}

/** createEtcdStore makes a store on your etcd3 client: `createEtcdStore(new Etcd3({ hosts: 'http://127.0.0.1:2379' }))`. */
export function createEtcdStore(client: EtcdClient, options?: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(client, options);
}

