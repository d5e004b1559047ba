import type { IKeyValue, Watcher } from 'etcd3';
import { storeCall } from '../../core/call.js';
import { monotonicNow, systemClock } from '../../core/clock.js';
import { applyMark } from '../../core/mark.js';
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
  LOCK_KINDS,
  type LockKind,
  type LockStore,
  type MarkRequest,
  type MarkState,
  type ResourceKey,
  type ResourceState,
  type StoreCall,
  type WaiterInfo,
} from '../../store.js';
import { cancel, grpcDeadline, isBrokenCircuit, isLeaseNotFound, unreachableCause, type EtcdClient } from './client.js';
import { aheadRange, entryInfo, entryValue, escapeName, rangeEnd, reserveName, resourcePrefix, statedLimit, unescapeName, type EntryInfo } from './keys.js';
import { SessionKeeper, validUntil, type KeepAliveEvent, type Session } from './session.js';
import { Window } from './window.js';

/** EtcdStoreOptions configures `createEtcdStore`. */
export interface EtcdStoreOptions {
  /** Prefix of every key, ending with `/`. Default `baton/`: a mutex `NAME` lives under `baton/mutex/NAME/`. */
  prefix?: string;
  /**
   * TTL of the store's session lease, which every entry of this store shares, in ms; rounded
   * up to whole seconds, and raised by etcd to its minimum (about 2 s with default timings).
   * The store keeps the session alive every third of it, once for all its entries. Default 10 000.
   */
  sessionTtlMs?: number;
  /** Close the client on `close()`; for a client the store was given to own (`openStore` does). Default false. */
  closeClient?: boolean;
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
  /** A queued entry's watch window over the keys just ahead of it. */
  window: Window | null;
  /** A holding entry's watch for the deletion of its key by someone else. */
  heldWatch: Watcher | null;
  /** The newest revision this entry knows of (its key's creation, a deletion in its window): a read older than that is stale. */
  seen: bigint;
}

const DEFAULT_PREFIX = 'baton/';
const DEFAULT_SESSION_TTL_MS = 10_000;

/**
 * EtcdStore keeps locks in etcd v3 with etcd's own lock recipe (`concurrency.Mutex`): an
 * entry is a key `<prefix><kind>/<name>/<session lease hex>` (`_1`, `_2`, ... for more entries
 * of the store on one lock at once; see `reserveName`) attached to the store's session lease
 * (`session.ts`); entries are ordered by create revision (FIFO); a mutex is held by the
 * oldest key, a semaphore of N permits by the N oldest; the token is the key's create
 * revision. A waiter watches only the key just ahead of it (a semaphore waiter of N permits,
 * the N keys just ahead of it; `window.ts`), so a release wakes at most N waiters. `etcdctl
 * lock <prefix>mutex/NAME` and a baton mutex on NAME exclude each other. See
 * docs/guarantees.md for what etcd guarantees and what it does not.
 */
export class EtcdStore implements LockStore {
  readonly name = 'etcd';
  /**
   * Session-scoped (`outlivesClient` false): every key lives as long as the store's session
   * lease, renewed once for all of them. Shared and exclusive entries mix (`mixedModes`): a
   * shared entry holds when no exclusive key is ahead of it, and while one is, it watches the
   * nearest one (a read-write lock's reader watches the writer just ahead, as in Curator).
   */
  readonly guarantees = Object.freeze({ clock: 'quorum', scope: 'network', fencing: true, fifo: true, notify: true, outlivesClient: false, mixedModes: true } as const);
  readonly defaultTimeoutMs = 5000;
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #closeClient: boolean;
  readonly #latches = new WakeLatches(systemClock);
  readonly #entries = new Map<string, Entry>();
  /** Keys whose delete failed (etcd out of reach), with their session, which keeps them alive: deleted again after each keep-alive. */
  readonly #undeleted = new Map<string, Session>();
  readonly #listeners = new Set<(key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void>();
  readonly #sessions: SessionKeeper;
  /** Why the last call that could not reach etcd failed, for a call that etcd3 then refuses to make. */
  #lastUnreachable: string | undefined;
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
    this.#closeClient = o.closeClient ?? false;
    this.#sessions = new SessionKeeper(client, Math.ceil(ttl / 1000), {
      renewed: (session) => this.#retryDeletes(session),
      lost: (session) => this.#sessionLost(session),
    }, this.defaultTimeoutMs);
  }

  /** resourcePrefix is the key prefix of one resource: `etcdctl lock` on it (without the final `/`) excludes with a baton mutex. */
  resourcePrefix(key: ResourceKey): string {
    return resourcePrefix(this.#prefix, key);
  }

  /** sessionLeaseId: the session lease's ID in hex, as etcd's tools print it, once a session exists. */
  async sessionLeaseId(): Promise<string> {
    return (await this.#call(() => this.#sessions.ensure())).hex;
  }

  async grant(request: GrantRequest, _call?: StoreCall): Promise<GrantResult> {
    return this.#latches.during(request.owner, request.enqueue, () => this.#call(async () => {
      try {
        return await this.#grant(request);
      } catch (error) {
        // The session ran out between two keep-alives: etcd refuses keys on it. Start a new one, once.
        if (!isLeaseNotFound(error)) throw error;
        this.#sessions.lose(await this.#sessions.ensure());
        return this.#grant(request);
      }
    }));
  }

  async #grant(request: GrantRequest): Promise<GrantResult> {
    const { key, owner } = request;
    const session = await this.#sessions.ensure();
    let entry = this.#entries.get(owner);
    if (entry && entry.session !== session) {
      this.#drop(owner, entry);
      entry = undefined;
    }
    // How many entries may hold at once: the entry holds when fewer than this many keys are ahead of it.
    const permits = request.mode === 'exclusive' ? 1 : request.limit;
    const pfx = this.resourcePrefix(key);
    // The keys' values state their limits (an election's do not: its value is the proclamation).
    const values = key.kind !== 'election';
    if (entry) {
      // A queued owner asking again. The watch may already have seen it become a holder: no round trip.
      if (entry.held) return this.#granted(owner, entry, request.ttlMs);
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
        success: [{ request_range: { ...aheadRange(pfx, entry!.revision - 1n, permits + 1, values), serializable } }],
        failure: [],
      });
      let reply = await reask(true);
      if (!reply.succeeded || BigInt(reply.header.revision) < entry.seen) reply = await reask(false);
      // Dropped while the read was on its way (its queue TTL ran out, its session was lost): its key is gone or going.
      const dropped = this.#entries.get(owner) !== entry;
      if (reply.succeeded && !dropped) {
        // The watch may have seen the entry become a holder while this read was on its way: it saw the later state.
        if (entry.held) return this.#granted(owner, entry, request.ttlMs);
        const ahead = reply.responses[0]?.response_range?.kvs ?? [];
        // Every key ahead is in the window once fewer than `permits` are. One that states another
        // limit keeps the entry queued until it goes: a newcomer refused for its limit puts its
        // key before it reads the queue, and until it deletes it, a newcomer of that limit may be
        // let in behind it (see below). It may hold only alongside entries of its own limit.
        const agrees = otherLimit(key, ahead, request.limit) === undefined;
        const writer = request.mode === 'shared' ? exclusiveAhead(key, ahead, pfx) : undefined;
        if (ahead.length < permits && agrees && !writer) {
          entry.held = true;
          this.#unwatch(entry);
          return this.#granted(owner, entry, request.ttlMs);
        }
        if (!request.enqueue) {
          // The last try of a waiter: leave nothing behind.
          this.#drop(owner, entry);
          await this.#deleteKey(entry.etcdKey, entry.session);
          return { granted: false };
        }
        this.#track(owner, entry, request.queueTtlMs);
        this.#watch(owner, entry, windowOf(ahead, permits, writer), ahead.length === permits && agrees && !writer, BigInt(reply.header.revision));
        return ahead.length === permits ? { granted: false, position: permits } : { granted: false };
      }
      // The key is gone (deleted by hand, or its queue TTL ran out; with a lost session, the put
      // below fails and `grant` starts a new session): the owner queues again at the back.
      this.#drop(owner, entry);
      if (!reply.succeeded) entry.session.names.delete(entry.etcdKey);
      entry = undefined;
    }

    const etcdKey = reserveName(key, pfx, session.hex, owner, session.names);
    const value = entryValue(key, request.mode, request.limit, owner, request.value);
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
          : [put, { request_range: aheadRange(pfx, 0n, permits + 1, values) }],
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
      return this.#granted(owner, created, request.ttlMs);
    }
    if (counts) {
      session.names.delete(etcdKey); // nothing was put
      return { granted: false, position: Number(reply.responses[0]?.response_range?.count ?? 1) };
    }
    const range = reply.responses[1]?.response_range;
    const mine = range?.kvs[0];
    if (!range || !mine || mine.key.toString() !== etcdKey) throw new Error(`the key ${etcdKey} is not the newest in the range read in the transaction that put it`);
    const position = Number(range.count) - 1;
    // The live entries agree on one limit: a newcomer asking with another one is refused, and
    // takes its key away. The keys just ahead suffice, since each of them was checked so when
    // it came.
    const limitInUse = otherLimit(key, range.kvs.slice(1), request.limit);
    if (limitInUse !== undefined) {
      await this.#deleteKey(etcdKey, session);
      return { granted: false, limitInUse };
    }
    const created = this.#newEntry(key, etcdKey, session, BigInt(mine.create_revision));
    const ahead = range.kvs.slice(1);
    const writer = request.mode === 'shared' ? exclusiveAhead(key, ahead, pfx) : undefined;
    if (position < permits && !writer) {
      created.held = true;
      return this.#granted(owner, created, request.ttlMs);
    }
    if (!request.enqueue) {
      // Leave nothing behind.
      await this.#deleteKey(etcdKey, session);
      return { granted: false, position };
    }
    this.#track(owner, created, request.queueTtlMs);
    this.#watch(owner, created, windowOf(ahead, permits, writer), position === permits && !writer, revision);
    return { granted: false, position };
  }

  #newEntry(key: ResourceKey, etcdKey: string, session: Session, revision: bigint): Entry {
    return { key, etcdKey, session, revision, held: false, expiry: null, window: null, heldWatch: null, seen: revision };
  }

  /** Records a holding entry; its key lives as long as the session, which the store renews. */
  #granted(owner: string, entry: Entry, ttlMs: number): GrantResult {
    this.#track(owner, entry, ttlMs);
    this.#watchHeld(owner, entry);
    return { granted: true, token: entry.revision };
  }

  /** The rule of `canHold` for the entry at `index`, with the modes of the entries ahead of it. */
  #holds(entries: readonly EntryInfo[], index: number): boolean {
    const entry = entries[index]!;
    return canHold(entry.mode, entry.limit, entries.slice(0, index));
  }

  /** Watches the keys just ahead of a queued entry (`window.ts`): a deletion there wakes it, or makes it a holder. */
  #watch(owner: string, entry: Entry, window: IKeyValue[], lastInLine: boolean, readAt: bigint): void {
    entry.window ??= new Window(this.#client, {
      deleted: (revision, frees) => {
        if (this.#entries.get(owner) !== entry || entry.held) return;
        if (revision > entry.seen) entry.seen = revision;
        if (frees) {
          entry.held = true;
          this.#unwatch(entry);
        }
        this.#latches.fire(owner);
      },
      unsure: () => this.#latches.fire(owner),
    });
    entry.window.set(window, lastInLine, readAt);
  }

  /**
   * Watches a held key for its deletion by someone else (a forced release, etcdctl): its
   * lease is lost at once. The watch shares the client's one watch stream, and costs etcd
   * nothing while the key lives: nothing is asked of etcd per lease while leases are held.
   */
  #watchHeld(owner: string, entry: Entry): void {
    if (entry.heldWatch || this.#closed) return;
    const watcher = this.#client.watch().key(entry.etcdKey).only('delete').watcher();
    watcher.on('delete', (kv: IKeyValue) => {
      if (this.#entries.get(owner) !== entry || !entry.held || BigInt(kv.mod_revision) <= entry.revision) return;
      this.#drop(owner, entry);
      entry.session.names.delete(entry.etcdKey);
      for (const listener of this.#listeners) listener(entry.key, owner, 'revoked');
    });
    watcher.on('error', () => undefined);
    entry.heldWatch = watcher;
  }

  #unwatch(entry: Entry): void {
    entry.window?.close();
    entry.window = null;
    if (entry.heldWatch) cancel(entry.heldWatch);
    entry.heldWatch = null;
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
    if (entry.session.lost || monotonicNow() >= validUntil(entry.session)) {
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
    return this.#sessions.deadline();
  }

  /**
   * downgrade rewrites the holder's key in place (same key, same create revision: same token
   * and place) with mode `shared`, guarded by the key's last modification. The readers queued
   * just behind it watch that key, and read the queue again when it changes.
   */
  async downgrade(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const entry = this.#entries.get(owner);
    if (!entry || !entry.held || entry.key.kind !== key.kind || entry.key.name !== key.name || entry.session.lost) return false;
    const current = (await this.#call(() => this.#client.kv.range({ key: Buffer.from(entry.etcdKey) }, grpcDeadline(call)))).kvs[0];
    if (!current || BigInt(current.create_revision) !== entry.revision) return false;
    const value = current.value.toString();
    if (!value.startsWith('exclusive ')) return value.startsWith('shared ');
    const reply = await this.#call(() => this.#client.kv.txn({
      compare: [{ key: current.key, target: 'Mod', result: 'Equal', mod_revision: current.mod_revision }],
      success: [{ request_put: { key: current.key, value: Buffer.from(`shared ${value.slice('exclusive '.length)}`), lease: entry.session.id } }],
      failure: [],
    }, grpcDeadline(call)));
    return reply.succeeded;
  }

  /**
   * advanceMark keeps the mark in its own key, `<prefix>mark/<kind>/<name>`, on no lease
   * (durable): `at`, then a line with the note. Read, then written back guarded by the key's
   * last modification (or its absence), again while another writer got in between.
   */
  async advanceMark(key: ResourceKey, request: MarkRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<MarkState & { advanced: boolean }> {
    const markKey = Buffer.from(`${this.#prefix}mark/${key.kind}/${escapeName(key.name)}`);
    for (;;) {
      const kv = (await this.#call(() => this.#client.kv.range({ key: markKey }, grpcDeadline(call)))).kvs[0];
      const { state, advanced, write } = applyMark(kv ? parseMark(kv.value.toString()) : undefined, request);
      if (!write) return { ...state, advanced };
      const reply = await this.#call(() => this.#client.kv.txn({
        compare: [kv ? { key: markKey, target: 'Mod', result: 'Equal', mod_revision: kv.mod_revision } : { key: markKey, target: 'Version', result: 'Equal', version: 0 }],
        success: [{ request_put: { key: markKey, value: Buffer.from(state.note === undefined ? String(state.at) : `${state.at}\n${state.note}`) } }],
        failure: [],
      }, grpcDeadline(call)));
      if (reply.succeeded) return { ...state, advanced };
      if (call.signal.aborted || monotonicNow() >= call.deadline) throw new StoreUnavailableError('etcd', 'The mark kept changing under this advanceMark until its deadline');
    }
  }

  async listMarks(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<(MarkState & { key: ResourceKey })[]> {
    const base = `${this.#prefix}mark/${filter?.kind ? `${filter.kind}/` : ''}`;
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(base), range_end: rangeEnd(base), sort_order: 'Ascend', sort_target: 'Key' }, grpcDeadline(call)));
    return reply.kvs.flatMap((kv) => {
      const [kind, name] = kv.key.toString().slice(`${this.#prefix}mark/`.length).split('/') as [LockKind, string | undefined];
      return name === undefined || !LOCK_KINDS.includes(kind) ? [] : [{ key: { kind, name: unescapeName(name) }, ...parseMark(kv.value.toString()) }];
    });
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

  /** Tries again the deletes that failed on a session just renewed. */
  #retryDeletes(session: Session): void {
    for (const [etcdKey, owner] of [...this.#undeleted]) {
      if (owner !== session) continue;
      this.#undeleted.delete(etcdKey);
      this.#deleteKey(etcdKey, session).catch(() => undefined);
    }
  }

  /** The session ran out on etcd (the process stalled, or etcd was out of reach longer than its TTL): every key on it is gone. */
  #sessionLost(session: Session): void {
    for (const [etcdKey, owner] of [...this.#undeleted]) if (owner === session) this.#undeleted.delete(etcdKey);
    for (const [owner, entry] of [...this.#entries]) {
      if (entry.session !== session) continue;
      this.#drop(owner, entry);
      if (entry.held) for (const listener of this.#listeners) listener(entry.key, owner, 'expired');
      else this.#latches.fire(owner); // a queued owner asks again, on a new session, at the back of the queue
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
      const { owner, mode, value, foreign } = entries[index]!;
      const { ttlMs, leftMs: expiresInMs } = await ttlOf(kv.lease);
      if (this.#holds(entries, index)) {
        holders.push({ owner, mode, token: BigInt(kv.create_revision), ttlMs, expiresInMs, ...(value ? { value } : {}), ...(foreign ? { foreign: true } : {}) });
      } else {
        waiters.push({ owner, mode, position: waiters.length, expiresInMs });
      }
    }
    // etcd keeps no counter: the last token is the newest holder's create revision (0n with no holder).
    const fence = holders.reduce((max, h) => (h.token > max ? h.token : max), 0n);
    return { key: { kind: key.kind, name: key.name }, fence, holders, waiters };
  }

  /**
   * prune: etcd keeps nothing for an idle resource (an entry's key goes with its release or
   * its session, and tokens are revisions of the whole cluster, which never go back), so
   * there is nothing to remove: 0. The history of deleted keys is etcd's to compact.
   */
  async prune(_filter?: { kind?: LockKind }, _call?: StoreCall): Promise<number> {
    if (this.#closed) throw new ClosedError('This etcd store');
    return 0;
  }

  async list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    const base = filter?.kind ? `${this.#prefix}${filter.kind}/` : this.#prefix;
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(base), range_end: rangeEnd(base), sort_order: 'Ascend', sort_target: 'Create' }, grpcDeadline(call)));
    const groups = new Map<string, IKeyValue[]>();
    for (const kv of reply.kvs) {
      const rest = kv.key.toString().slice(this.#prefix.length);
      // `<kind>/<escaped name>/<entry>`: a key with more segments is not one of this prefix's
      // entries (a store whose prefix nests under this one, `app/` and `app/mutex/`).
      const first = rest.indexOf('/');
      const last = rest.lastIndexOf('/');
      if (first < 0 || last === first || rest.indexOf('/', first + 1) !== last) continue;
      const id = rest.slice(0, last);
      if (!groups.has(id)) groups.set(id, []);
      groups.get(id)!.push(kv);
    }
    const states: ResourceState[] = [];
    for (const id of [...groups.keys()].sort()) {
      const slash = id.indexOf('/');
      const kind = id.slice(0, slash) as LockKind;
      if (!LOCK_KINDS.includes(kind)) continue;
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

  /**
   * onKeepAlive calls `listener` with every grant and keep-alive of the store's session lease
   * (`KeepAliveEvent`: sent, renewed or failed, with its send time), until the returned
   * function is called: what keeps every entry of the store alive, for logs and metrics.
   */
  onKeepAlive(listener: (event: KeepAliveEvent) => void): () => void {
    return this.#sessions.onKeepAlive(listener);
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
    // Bounded: with etcd out of reach (or the client still reconnecting after a restart), a
    // session grant in flight or the revoke could hang; the keys then go when the session
    // expires, since its keep-alive stops here.
    await this.#sessions.close(call ?? storeCall(CLOSE_TIMEOUT_MS));
    if (this.#closeClient) this.#client.close();
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('This etcd store');
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ClosedError || error instanceof StoreUnavailableError) throw error;
      if (isLeaseNotFound(error)) throw error;
      throw this.#failure(error);
    }
  }

  /**
   * The error of a failed call: where it could not reach etcd, rather than gRPC's text; or,
   * when etcd3 made no call at all because calls to the member failed just before (its
   * circuit breaker), that, with the cause of those failures.
   */
  #failure(error: unknown): StoreUnavailableError {
    const unreachable = unreachableCause(error);
    if (unreachable !== undefined) {
      this.#lastUnreachable = unreachable;
      return new StoreUnavailableError('etcd', `Cannot reach etcd: ${unreachable}`, { cause: error });
    }
    if (isBrokenCircuit(error)) {
      const held = 'etcd3 holds calls back for a while after calls to a member failed';
      return new StoreUnavailableError('etcd', `Cannot reach etcd: ${this.#lastUnreachable === undefined ? held : `${this.#lastUnreachable} (${held})`}`, { cause: error });
    }
    return new StoreUnavailableError('etcd', `etcd failed: ${(error as Error).message}`, { cause: error });
  }
}

/** createEtcdStore makes a store on your etcd3 client: `createEtcdStore(new Etcd3({ hosts: 'http://127.0.0.1:2379' }))`. */
export function createEtcdStore(client: EtcdClient, options?: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(client, options);
}

/** otherLimit: a limit other than `limit` that one of `kvs` states, if any (keys that are not baton's state none). */
function otherLimit(key: ResourceKey, kvs: readonly IKeyValue[], limit: number): number | undefined {
  for (const kv of kvs) {
    const stated = statedLimit(key, kv);
    if (stated !== undefined && stated !== limit) return stated;
  }
  return undefined;
}

/** exclusiveAhead: the nearest key ahead (`ahead` is newest first) whose entry is exclusive, which keeps a shared entry queued. */
function exclusiveAhead(key: ResourceKey, ahead: readonly IKeyValue[], pfx: string): IKeyValue | undefined {
  return ahead.find((kv) => entryInfo(key, kv, pfx).mode === 'exclusive');
}

/** windowOf: the keys a queued entry watches: the nearest exclusive one ahead of a shared entry that it alone keeps waiting, else the `permits` keys just ahead. */
function windowOf(ahead: readonly IKeyValue[], permits: number, writer: IKeyValue | undefined): IKeyValue[] {
  return writer && ahead.length < permits ? [writer] : ahead.slice(0, permits);
}

/** parseMark reads a mark's value: `at`, then a line with the note if it has one. */
function parseMark(text: string): MarkState {
  const newline = text.indexOf('\n');
  return newline < 0 ? { at: Number(text) } : { at: Number(text.slice(0, newline)), note: text.slice(newline + 1) };
}
