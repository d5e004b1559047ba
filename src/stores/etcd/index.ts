import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import { systemClock } from '../../core/clock.js';
import { checkOptions } from '../../core/validate.js';
import { WakeLatches } from '../../core/wake-latch.js';
import { ClosedError, InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import type {
  ExtendResult,
  GrantRequest,
  GrantResult,
  HolderInfo,
  HoldMode,
  LockKind,
  LockStore,
  ResourceKey,
  ResourceState,
  WaiterInfo,
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
  watcher: Watcher | null;
  watching: string;
}

const DEFAULT_PREFIX = 'baton/';
const DEFAULT_SESSION_TTL_MS = 10_000;

/** close() waits this long at most for the session (a grant in flight) and its revoke. */
const CLOSE_TIMEOUT_MS = 500;

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
 * entry is a key `<prefix><kind>/<name>/<session lease hex>_<owner>` attached to the store's
 * session lease; entries are ordered by create revision (FIFO); a mutex is held by the
 * oldest key, a semaphore of N permits by the N oldest; the token is the key's create
 * revision. A waiter watches only the key just ahead of it (a semaphore waiter watches the
 * keys ahead of it). `etcdctl lock <prefix>mutex/NAME` and a baton mutex on NAME exclude
 * each other. See docs/guarantees.md for what etcd guarantees and what it does not.
 */
export class EtcdStore implements LockStore {
  readonly name = 'etcd';
  readonly guarantees = Object.freeze({ clock: 'quorum', scope: 'network', fencing: true, fifo: true, notify: true } as const);
  readonly #client: EtcdClient;
  readonly #prefix: string;
  readonly #sessionSeconds: number;
  readonly #closeClient: boolean;
  readonly #clock = systemClock;
  readonly #latches = new WakeLatches(systemClock);
  readonly #entries = new Map<string, Entry>();
  /** Keys whose delete failed (etcd out of reach), with their session, which keeps them alive: deleted again after each keep-alive. */
  readonly #undeleted = new Map<string, Session>();
  readonly #listeners = new Set<(key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void>();
  #session: Promise<Session> | null = null;
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

  async grant(request: GrantRequest): Promise<GrantResult> {
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
    const pfx = this.resourcePrefix(key);
    const etcdKey = entry?.etcdKey ?? `${pfx}${session.hex}_${owner}`;
    const startedAt = this.#clock.now();
    const value = key.kind === 'semaphore' ? String(request.limit) : (request.value ?? '');
    // Only a semaphore needs the values (its keys carry their permits); an election's are read by inspect.
    const range = { request_range: { key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Ascend', sort_target: 'Create', keys_only: key.kind !== 'semaphore' } } as const;

    const put = { request_put: { key: Buffer.from(etcdKey), value: Buffer.from(value), lease: session.id } };
    let reply;
    let kvs: IKeyValue[];
    if (!entry) {
      // A newcomer, in one round trip. The uncontended case is a single put, guarded by "nothing
      // is under the prefix" (a compare over the key range). Otherwise: a waiter takes its place
      // and reads the queue; a mutex tryAcquire only counts the entries, leaving nothing behind.
      const counts = !request.enqueue && request.mode === 'exclusive';
      reply = await this.#client.kv.txn({
        compare: [{ key: Buffer.from(pfx), range_end: rangeEnd(pfx), target: 'Version', result: 'Equal', version: 0 }],
        success: [put],
        failure: counts ? [{ request_range: { ...range.request_range, count_only: true } }] : [put, range],
      });
      if (reply.succeeded) {
        const revision = BigInt(reply.header.revision);
        this.#track(owner, { key, etcdKey, session, revision, held: true, expiry: null, watcher: null, watching: '' }, request.ttlMs);
        return { granted: true, token: revision, ttlMs: this.#enforced(session, startedAt) };
      }
      if (counts) return { granted: false, position: Number(reply.responses[0]?.response_range?.count ?? 1) };
      kvs = reply.responses[1]?.response_range?.kvs ?? [];
    } else {
      // A waiter asking again, in one round trip: put its key back if it vanished, and read the queue.
      reply = await this.#client.kv.txn({
        compare: [{ key: Buffer.from(etcdKey), target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [put, range],
        failure: [range],
      });
      kvs = (reply.succeeded ? reply.responses[1] : reply.responses[0])?.response_range?.kvs ?? [];
    }
    const index = kvs.findIndex((kv) => kv.key.toString() === etcdKey);
    if (index < 0) throw new Error(`the key ${etcdKey} is missing from the range read in the transaction that put it`);
    const revision = BigInt(kvs[index]!.create_revision);
    const held = this.#holds(kvs, index, request.mode, request.limit);
    const current: Entry = entry ?? { key, etcdKey, session, revision, held, expiry: null, watcher: null, watching: '' };
    current.held = held;
    current.revision = revision;
    if (held) {
      this.#unwatch(current);
      this.#track(owner, current, request.ttlMs);
      return { granted: true, token: revision, ttlMs: this.#enforced(session, startedAt) };
    }
    if (!request.enqueue) {
      // Leave nothing behind: neither the key just put nor the owner's earlier place in the queue.
      if (entry) this.#drop(owner, entry);
      await this.#deleteKey(etcdKey, session);
      return { granted: false, position: index };
    }
    this.#track(owner, current, request.queueTtlMs);
    this.#watch(owner, current, kvs, index, request.mode, BigInt(reply.header.revision) + 1n);
    return { granted: false, position: index };
  }

  /** The rule of `canHold` over the keys ahead: a semaphore key carries its permits, anything else (an etcdctl key too) is exclusive. */
  #holds(kvs: IKeyValue[], index: number, mode: HoldMode, limit: number): boolean {
    if (mode === 'exclusive') return index === 0;
    return index < limit;
  }

  /**
   * Watches for the change that may let a queued owner hold, from the revision after the
   * range it saw, so that nothing in between is missed: a mutex waiter watches the one key
   * just ahead of it; a semaphore waiter, any of the keys ahead (a release by any holder may free a permit).
   */
  #watch(owner: string, entry: Entry, kvs: IKeyValue[], index: number, mode: HoldMode, fromRevision: bigint): void {
    const target = mode === 'exclusive' ? kvs[index - 1]!.key.toString() : `prefix:${this.resourcePrefix(entry.key)}`;
    if (entry.watcher && entry.watching === target) return;
    this.#unwatch(entry);
    const builder = this.#client.watch().only('delete').startRevision(String(fromRevision));
    const watcher = (target.startsWith('prefix:') ? builder.prefix(target.slice(7)) : builder.key(target)).watcher();
    watcher.on('delete', () => this.#latches.fire(owner));
    // etcd3 reconnects watchers itself; a wait also ends at its poll period, so an error only costs latency.
    watcher.on('error', () => this.#latches.fire(owner));
    entry.watcher = watcher;
    entry.watching = target;
  }

  #unwatch(entry: Entry): void {
    if (!entry.watcher) return;
    entry.watcher.removeAllListeners();
    entry.watcher.on('error', () => undefined);
    entry.watcher.cancel().catch(() => undefined);
    entry.watcher = null;
    entry.watching = '';
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

  /** The TTL etcd surely enforces from `startedAt` on: the session's, counted from its last keep-alive. */
  #enforced(session: Session, startedAt: number): number {
    return Math.max(0, Math.floor(session.validFrom + session.ttlMs - startedAt));
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number): Promise<ExtendResult> {
    const entry = this.#entries.get(owner);
    if (!entry || !entry.held || entry.key.kind !== key.kind || entry.key.name !== key.name) return false;
    return this.#call(async () => {
      const startedAt = this.#clock.now();
      const session = entry.session;
      // The key must still be ours (not force-released), and the session must be renewed from about now.
      const [found] = await Promise.all([
        this.#client.kv.range({ key: Buffer.from(entry.etcdKey), keys_only: true }),
        this.#keepAlive(session),
      ]);
      const kv = found.kvs[0];
      if (session.lost || !kv || BigInt(kv.create_revision) !== entry.revision) {
        this.#drop(owner, entry);
        return false;
      }
      this.#track(owner, entry, ttlMs);
      return { ttlMs: this.#enforced(session, startedAt) };
    });
  }

  async release(key: ResourceKey, owner: string): Promise<boolean> {
    this.#latches.forget(owner);
    const entry = this.#entries.get(owner);
    if (!entry || entry.key.kind !== key.kind || entry.key.name !== key.name) return false;
    this.#drop(owner, entry);
    if (entry.session.lost) return false;
    const reply = await this.#call(() => this.#deleteKey(entry.etcdKey, entry.session));
    return Number(reply.deleted) > 0;
  }

  /**
   * Deletes a key this store put. If etcd cannot be reached, the key is remembered and deleted
   * again after each keep-alive: its session keeps it alive, so a key forgotten here would
   * hold the lock until the store closes.
   */
  async #deleteKey(etcdKey: string, session: Session): Promise<{ deleted: string }> {
    try {
      return await this.#client.kv.deleteRange({ key: Buffer.from(etcdKey) });
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

  async forceRelease(key: ResourceKey): Promise<number> {
    const pfx = this.resourcePrefix(key);
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Ascend', sort_target: 'Create' }));
    let removed = 0;
    for (const [index, kv] of reply.kvs.entries()) {
      if (!this.#holds(reply.kvs, index, modeOf(key), limitOf(key, kv))) continue;
      // Delete the holder's key only if it is still the same key (same create revision).
      const deleted = await this.#call(() => this.#client.kv.txn({
        compare: [{ key: kv.key, target: 'Create', result: 'Equal', create_revision: kv.create_revision }],
        success: [{ request_delete_range: { key: kv.key } }],
        failure: [],
      }));
      if (deleted.succeeded) removed++;
    }
    return removed;
  }

  async inspect(key: ResourceKey): Promise<ResourceState> {
    const pfx = this.resourcePrefix(key);
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Ascend', sort_target: 'Create' }));
    return this.#state(key, reply.kvs);
  }

  async #state(key: ResourceKey, kvs: IKeyValue[]): Promise<ResourceState> {
    const pfx = this.resourcePrefix(key);
    // A key's TTL is its lease's: granted and left, in whole seconds as etcd reports them (left is rounded down).
    const ttls = new Map<string, Promise<{ ttlMs: number; leftMs: number }>>();
    const ttlOf = (lease: string): Promise<{ ttlMs: number; leftMs: number }> => {
      if (!ttls.has(lease)) {
        ttls.set(lease, lease === '0'
          ? Promise.resolve({ ttlMs: Infinity, leftMs: Infinity })
          : this.#call(() => this.#client.leaseClient.leaseTimeToLive({ ID: lease })).then(
              (r) => ({ ttlMs: Math.max(0, Number(r.grantedTTL)) * 1000, leftMs: Math.max(0, Number(r.TTL)) * 1000 }),
              () => ({ ttlMs: 0, leftMs: 0 }),
            ));
      }
      return ttls.get(lease)!;
    };
    const holders: HolderInfo[] = [];
    const waiters: WaiterInfo[] = [];
    for (const [index, kv] of kvs.entries()) {
      // The owner is what follows the session's lease in baton's keys; a foreign key (etcdctl's) is named by its lease.
      const suffix = kv.key.toString().slice(pfx.length);
      const owner = suffix.slice(suffix.indexOf('_') + 1);
      const mode = modeOf(key);
      const { ttlMs, leftMs: expiresInMs } = await ttlOf(kv.lease);
      if (this.#holds(kvs, index, mode, limitOf(key, kv))) {
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

  async list(filter?: { kind?: LockKind }): Promise<ResourceState[]> {
    const base = filter?.kind ? `${this.#prefix}${filter.kind}/` : this.#prefix;
    const reply = await this.#call(() => this.#client.kv.range({ key: Buffer.from(base), range_end: rangeEnd(base), sort_order: 'Ascend', sort_target: 'Create' }));
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
      states.push(await this.#state({ kind, name: unescapeName(id.slice(slash + 1)) }, groups.get(id)!));
    }
    return states;
  }

  async wait(_key: ResourceKey, owner: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    // etcd never hands a lock over with the wake-up: the waiter asks again.
    await this.#latches.wait(owner, timeoutMs, signal);
  }

  async proclaim(key: ResourceKey, owner: string, value: string): Promise<boolean> {
    const entry = this.#entries.get(owner);
    if (!entry || !entry.held || entry.key.kind !== key.kind || entry.key.name !== key.name || entry.session.lost) return false;
    // etcd's Election.Proclaim: rewrite the leader key only while it is still the same key.
    const reply = await this.#call(() => this.#client.kv.txn({
      compare: [{ key: Buffer.from(entry.etcdKey), target: 'Create', result: 'Equal', create_revision: String(entry.revision) }],
      success: [{ request_put: { key: Buffer.from(entry.etcdKey), value: Buffer.from(value), lease: entry.session.id } }],
      failure: [],
    }));
    return reply.succeeded;
  }

  watch(key: ResourceKey, listener: () => void): () => void {
    const watcher = this.#client.watch().prefix(this.resourcePrefix(key)).watcher();
    watcher.on('put', () => listener());
    watcher.on('delete', () => listener());
    watcher.on('error', () => listener());
    return () => {
      watcher.removeAllListeners();
      watcher.on('error', () => undefined);
      watcher.cancel().catch(() => undefined);
    };
  }

  watchLost(listener: (key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * close revokes the session lease, which deletes every key this store put in one step,
   * and stops its keep-alive and watches, within half a second: if etcd does not answer by
   * then, the keys go when the session expires. The client you passed stays open unless
   * `closeClient` was set.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#latches.fireAll();
    for (const [owner, entry] of [...this.#entries]) this.#drop(owner, entry);
    // Bounded: with etcd out of reach (or the client still reconnecting after a restart), a
    // session grant in flight or the revoke could hang; the keys then go when the session
    // expires, since its keep-alive stops here. A grant that completes later revokes itself.
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), CLOSE_TIMEOUT_MS);
      timer.unref();
    });
    try {
      const session = await Promise.race([this.#session?.catch(() => null) ?? null, giveUp]);
      if (session) {
        session.lost = true;
        if (session.timer) clearTimeout(session.timer);
        await Promise.race([this.#client.leaseClient.leaseRevoke({ ID: session.id }).catch(() => undefined), giveUp]);
      }
    } finally {
      clearTimeout(timer);
    }
    if (this.#closeClient) this.#client.close();
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
      };
      if (this.#closed) {
        await this.#client.leaseClient.leaseRevoke({ ID: session.id }).catch(() => undefined);
        throw new ClosedError('This etcd store');
      }
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
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        timer = setTimeout(() => reject(new Error(`no keep-alive reply within ${Math.round(session.ttlMs * KEEPALIVE_TIMEOUT_SHARE)} ms`)), session.ttlMs * KEEPALIVE_TIMEOUT_SHARE);
        stream.write({ ID: session.id });
      });
      if (Number(reply.TTL) <= 0) {
        await this.#loseSession(session);
        return;
      }
      if (sentAt > session.validFrom) session.validFrom = sentAt;
    } finally {
      clearTimeout(timer);
      stream.on('error', () => undefined);
      stream.end();
    }
  }

  /** The session ran out on etcd (the process stalled, or etcd was out of reach longer than its TTL): every key on it is gone. */
  async #loseSession(session: Session): Promise<void> {
    if (session.lost) return;
    session.lost = true;
    if (session.timer) clearTimeout(session.timer);
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

/** Every entry of a semaphore is shared; of anything else (a mutex, an election, an etcdctl key), exclusive. */
function modeOf(key: ResourceKey): HoldMode {
  return key.kind === 'semaphore' ? 'shared' : 'exclusive';
}

/** A semaphore key's value is its permits. */
function limitOf(key: ResourceKey, kv: IKeyValue): number {
  return key.kind === 'semaphore' ? Number(kv.value.toString()) || 1 : 1;
}

function isLeaseNotFound(error: unknown): boolean {
  return error instanceof Error && (error.name === 'EtcdLeaseInvalidError' || /requested lease not found/.test(error.message));
}

/** createEtcdStore makes a store on your etcd3 client: `createEtcdStore(new Etcd3({ hosts: 'http://127.0.0.1:2379' }))`. */
export function createEtcdStore(client: EtcdClient, options?: EtcdStoreOptions): EtcdStore {
  return new EtcdStore(client, options);
}

