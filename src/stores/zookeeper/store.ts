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
  LOCK_KINDS,
  type LockKind,
  type LockStore,
  type ResourceKey,
  type ResourceState,
  type StoreCall,
  type WaiterInfo,
} from '../../store.js';
import { bounded, Code, codeOf, czxidOf, isContainer, Mode, State, type ZooKeeperClient, type ZooKeeperEvent, type ZooKeeperStat } from './client.js';
import { entryData, entryInfo, nodePrefix, PARENT_MARK, resourcePath, sortedChildren, unescapeName, type Child } from './paths.js';
import { SessionTracker, validUntil, type Session } from './session.js';

/** ZooKeeperStoreOptions configures `createZooKeeperStore`. */
export interface ZooKeeperStoreOptions {
  /** The znode under which every resource lives, absolute, without a trailing `/`. Default `/baton`: a mutex `NAME` is `/baton/mutex/NAME`. */
  root?: string;
  /** The ACL of every znode the store creates, as your driver takes it (`ZooKeeper.ACL.CREATOR_ALL_ACL` with digest auth). Default: the driver's (open). */
  acls?: readonly unknown[];
  /** Close the client on `close()`; for a client the store was given to own (`openStore` does). Default false. */
  closeClient?: boolean;
}

/** One local entry: a znode this store created for an owner, holding or queued. */
interface Entry {
  readonly key: ResourceKey;
  readonly parent: string;
  readonly name: string;
  readonly session: Session;
  readonly czxid: bigint;
  readonly limit: number;
  held: boolean;
  /** Deletes the znode when the entry's own TTL (lease TTL or queue TTL) runs out unrenewed. */
  expiry: NodeJS.Timeout | null;
  /** The predecessor a queued entry watches, while its watch is set. */
  watching: string | null;
  /** A holding entry watches its own znode. */
  heldWatch: boolean;
}

const DEFAULT_ROOT = '/baton';

/** What a store call reports when the client's session is gone for good. */
const EXPIRED_MESSAGE = 'The ZooKeeper session of this store\'s client expired: the client cannot be used again (make a new client and store, or open the store by URL, which does so itself)';

/**
 * ZooKeeperStore keeps locks in ZooKeeper with Apache Curator's recipes (`paths.ts`): an
 * entry is an ephemeral sequential znode under the resource's znode, tied to the client's
 * session, which every lock of the store shares (`session.ts`); entries are ordered by their
 * sequence suffix (FIFO); a mutex is held by the first, a semaphore of N permits by the first N
 * (Curator's `InterProcessSemaphore`; its V2 layout is refused), an election by the first
 * (`LeaderLatch`). The token is the znode's czxid, which only grows (the sequence suffix starts
 * again when a parent is removed). A waiter watches only the entry N places ahead of it, with
 * `getData` as Curator does, so a release wakes one waiter; a holder watches its own znode, so
 * a deletion by someone else (`baton release --force`, an admin) reports its lease revoked at
 * once. See docs/guarantees.md.
 */
export class ZooKeeperStore implements LockStore {
  readonly name = 'zookeeper';
  /**
   * Session-scoped (`outlivesClient` false): every znode lives as long as the client's
   * session. One mode at a time on a resource (`mixedModes` false).
   */
  readonly guarantees = Object.freeze({ clock: 'quorum', scope: 'network', fencing: true, fifo: true, notify: true, outlivesClient: false, mixedModes: false } as const);
  readonly defaultTimeoutMs = 5000;
  readonly #client: ZooKeeperClient;
  readonly #root: string;
  readonly #acls: unknown[] | undefined;
  readonly #closeClient: boolean;
  readonly #latches = new WakeLatches(systemClock);
  readonly #entries = new Map<string, Entry>();
  /** Znodes of lost entries whose session may still live on the server: deleted at the next answer of that session. */
  readonly #orphans = new Map<string, string>();
  readonly #listeners = new Set<(key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void>();
  readonly #session: SessionTracker;
  #closed = false;

  constructor(client: ZooKeeperClient, options?: ZooKeeperStoreOptions) {
    if (!client || typeof client.create !== 'function' || typeof client.getChildren !== 'function' || typeof client.getSessionTimeout !== 'function') {
      throw new InvalidArgumentError('client', 'Expected `client` to be a node-zookeeper-client client (createClient(hosts) then connect())');
    }
    const o = checkOptions<ZooKeeperStoreOptions>(options, 'options', ['root', 'acls', 'closeClient']);
    if (o.root !== undefined && (typeof o.root !== 'string' || !/^(\/[^/]+)+$/.test(o.root))) {
      throw new InvalidArgumentError('root', `Expected \`root\` to be an absolute znode path without a trailing "/", such as "/baton", got ${String(o.root)}`);
    }
    if (o.acls !== undefined && (!Array.isArray(o.acls) || o.acls.length === 0)) {
      throw new InvalidArgumentError('acls', 'Expected `acls` to be a non-empty array of your driver\'s ACL objects');
    }
    this.#client = client;
    this.#root = o.root ?? DEFAULT_ROOT;
    this.#acls = o.acls ? [...o.acls] : undefined;
    this.#closeClient = o.closeClient ?? false;
    this.#session = new SessionTracker(client, {
      started: (session) => this.#deleteOrphans(session),
      lost: (session) => this.#sessionLost(session),
      busy: () => this.#entries.size > 0 || this.#orphans.size > 0,
    });
  }

  /** resourcePath: the znode of one resource; a Curator `InterProcessMutex` (or `LeaderLatch` for an election) on it excludes with baton's. */
  resourcePath(key: ResourceKey): string {
    return resourcePath(this.#root, key);
  }

  /** nodeOf: the znode of the entry `owner` holds or queues in this store, if any (for tools and tests). */
  nodeOf(owner: string): string | undefined {
    const entry = this.#entries.get(owner);
    return entry ? `${entry.parent}/${entry.name}` : undefined;
  }

  async grant(request: GrantRequest, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<GrantResult> {
    if (request.key.kind === 'rwlock' || (request.mode === 'shared' && request.key.kind !== 'semaphore')) {
      throw new InvalidArgumentError('kind', `The zookeeper store does not keep ${request.key.kind === 'rwlock' ? 'read-write locks' : 'shared entries'} yet`);
    }
    return this.#latches.during(request.owner, request.enqueue, () => this.#call(() => this.#grant(request, call)));
  }

  async #grant(request: GrantRequest, call: StoreCall): Promise<GrantResult> {
    const { key, owner } = request;
    const permits = request.mode === 'exclusive' ? 1 : request.limit;
    let entry = this.#entries.get(owner);
    if (entry && (entry.session.lost || entry.key.kind !== key.kind || entry.key.name !== key.name)) {
      this.#drop(owner, entry);
      entry = undefined;
    }
    if (entry) {
      // A queued owner asking again; the holder watch may already have made it a holder.
      if (entry.held) return this.#granted(owner, entry, request.ttlMs);
      const placed = await this.#place(owner, entry, request, permits, call, false);
      if (placed) return placed;
      // Its znode is gone (its queue TTL ran out, someone deleted it): it queues again at the back.
    }
    const parent = this.resourcePath(key);
    if (!request.enqueue) {
      // A try that cannot succeed writes nothing: as many entries as permits already.
      const names = await this.#children(parent, call);
      this.#refuseV2(key, names);
      const children = sortedChildren(key, names);
      if (children.length >= permits) {
        // Busy; unless the entries state another limit, which refuses the newcomer.
        const [limit] = key.kind === 'election' ? [] : await this.#limits(parent, children.slice(-1), call);
        if (limit !== undefined && limit !== request.limit) return { granted: false, limitInUse: limit };
        return { granted: false, position: children.length };
      }
    }
    const { name, czxid } = await this.#create(key, owner, entryData(key, request.mode, request.limit, owner, request.value), call);
    const session = this.#session.current();
    if (!session) throw new StoreUnavailableError('zookeeper', 'The ZooKeeper session was lost while the lock\'s znode was created');
    const created: Entry = { key, parent, name, session, czxid, limit: request.limit, held: false, expiry: null, watching: null, heldWatch: false };
    this.#track(owner, created, request.queueTtlMs);
    try {
      const placed = await this.#place(owner, created, request, permits, call, true);
      if (placed) return placed;
    } catch (error) {
      // Leave nothing behind for a grant that failed.
      this.#drop(owner, created);
      this.#removeNode(created, true).catch(() => undefined);
      throw error;
    }
    return { granted: false };
  }

  /**
   * Where an entry stands among the resource's children: holding (fewer than `permits`
   * entries ahead, all of its limit), queued (watching the entry `permits` places ahead), or
   * gone (null). A newcomer stating another limit than the entry just ahead of it is refused.
   */
  async #place(owner: string, entry: Entry, request: GrantRequest, permits: number, call: StoreCall, fresh: boolean): Promise<GrantResult | null> {
    const names = await this.#children(entry.parent, call);
    if (this.#entries.get(owner) !== entry) return null;
    if (entry.held) return this.#granted(owner, entry, request.ttlMs);
    this.#refuseV2(entry.key, names);
    const children = sortedChildren(entry.key, names);
    const index = children.findIndex((child) => child.name === entry.name);
    if (index < 0) {
      this.#drop(owner, entry);
      return null;
    }
    const key = entry.key;
    if (fresh && index > 0 && key.kind !== 'election') {
      // The live entries agree on one limit; each was checked so against the one ahead of it when it came.
      const ahead = await this.#limits(entry.parent, children.slice(index - 1, index), call);
      const other = ahead.find((limit) => limit !== undefined && limit !== request.limit);
      if (other !== undefined) {
        this.#drop(owner, entry);
        await this.#removeNode(entry, false);
        return { granted: false, limitInUse: other };
      }
    }
    if (index < permits) {
      // An entry that a refused newcomer let in behind it may state another limit than those ahead: it waits for them.
      const ahead = index > 0 && key.kind !== 'election' ? await this.#limits(entry.parent, children.slice(0, index), call) : [];
      if (ahead.every((limit) => limit === undefined || limit === entry.limit)) {
        if (this.#entries.get(owner) !== entry) return null;
        entry.held = true;
        entry.watching = null;
        return this.#granted(owner, entry, request.ttlMs);
      }
    }
    if (!request.enqueue) {
      this.#drop(owner, entry);
      await this.#removeNode(entry, true);
      return { granted: false, position: index };
    }
    this.#track(owner, entry, request.queueTtlMs);
    this.#watchAhead(owner, entry, children[Math.max(0, index - permits)]!, call);
    return { granted: false, position: index };
  }

  /** The limits the given children state in their data (undefined for a node that is not baton's, or gone). */
  async #limits(parent: string, children: readonly Child[], call: StoreCall): Promise<(number | undefined)[]> {
    return Promise.all(children.map(async (child) => {
      try {
        const [data] = await this.#request<[Buffer | undefined, ZooKeeperStat]>((cb) => this.#client.getData(`${parent}/${child.name}`, undefined, (e, d, s) => cb(e, [d, s])), call, 'a read');
        return entryInfo({ kind: 'mutex', name: '' }, data).statedLimit;
      } catch (error) {
        if (codeOf(error) === Code.NO_NODE) return undefined;
        throw error;
      }
    }));
  }

  /** Curator's `InterProcessSemaphoreV2` keeps `locks` and `leases` children: baton's semaphore (V1's layout) would not exclude with it. */
  #refuseV2(key: ResourceKey, names: readonly string[]): void {
    if (key.kind === 'semaphore' && (names.includes('leases') || names.includes('locks'))) {
      throw new InvalidArgumentError('kind', `The znode ${this.resourcePath(key)} holds a Curator InterProcessSemaphoreV2 (its locks and leases children), which the zookeeper store does not keep yet`);
    }
  }

  /**
   * Creates an owner's entry, with Curator's protected create: when the connection is lost
   * during the create, the znode may exist without the store knowing its name; it is found
   * among the parent's children by the owner's uuid and adopted. A missing parent is made
   * (persistent, marked as baton's), also when it was removed in between (a Curator container
   * that ZooKeeper removed once empty, or one baton cleaned).
   */
  async #create(key: ResourceKey, owner: string, data: Buffer, call: StoreCall): Promise<{ name: string; czxid: bigint }> {
    const parent = this.resourcePath(key);
    const prefix = nodePrefix(key, owner);
    for (let attempt = 0; ; attempt++) {
      let path: string | undefined;
      try {
        path = await this.#request<string>((cb) => this.#client.create(`${parent}/${prefix}`, data, this.#acls, Mode.EPHEMERAL_SEQUENTIAL, (e, p) => cb(e, p)), call, 'a create', (late) => {
          // Created after the call gave up: for nobody.
          this.#client.remove(late, -1, () => undefined);
        });
      } catch (error) {
        const code = codeOf(error);
        if (code === Code.NO_NODE && attempt < 5) {
          await this.#makeParents(parent, call);
          continue;
        }
        if (code === Code.CONNECTION_LOSS && attempt < 5) {
          const found = (await this.#children(parent, call)).find((name) => name.startsWith(prefix));
          if (found) path = `${parent}/${found}`;
          else continue;
        } else {
          if (error instanceof StoreUnavailableError) this.#adoptLater(parent, prefix);
          throw error;
        }
      }
      const stat = await this.#request<ZooKeeperStat | null>((cb) => this.#client.exists(path!, undefined, (e, s) => cb(e, s)), call, 'a read');
      if (!stat) throw new StoreUnavailableError('zookeeper', `The znode ${path} was deleted as soon as it was created`);
      return { name: path.slice(parent.length + 1), czxid: czxidOf(stat) };
    }
  }

  /** A create that got no answer in time may still be applied: its znode is looked for (by the owner's uuid) and deleted once the session answers again. */
  #adoptLater(parent: string, prefix: string): void {
    const call = storeCall(this.defaultTimeoutMs * 2);
    setTimeout(() => {
      if (this.#closed) return;
      this.#children(parent, call).then((names) => {
        for (const name of names) if (name.startsWith(prefix)) this.#client.remove(`${parent}/${name}`, -1, () => undefined);
      }, () => undefined);
    }, this.defaultTimeoutMs).unref();
  }

  async #makeParents(parent: string, call: StoreCall): Promise<void> {
    const parts = parent.split('/').slice(1);
    for (let i = 1; i <= parts.length; i++) {
      const path = `/${parts.slice(0, i).join('/')}`;
      try {
        await this.#request<string>((cb) => this.#client.create(path, i === parts.length ? PARENT_MARK : undefined, this.#acls, Mode.PERSISTENT, (e, p) => cb(e, p)), call, 'a create');
      } catch (error) {
        if (codeOf(error) !== Code.NODE_EXISTS) throw error;
      }
    }
  }

  /** The children of a znode; none when it does not exist. */
  async #children(path: string, call: StoreCall): Promise<string[]> {
    try {
      return await this.#request<string[]>((cb) => this.#client.getChildren(path, undefined, (e, c) => cb(e, c)), call, 'a read');
    } catch (error) {
      if (codeOf(error) === Code.NO_NODE) return [];
      throw error;
    }
  }

  #request<T>(send: (callback: (error: Error | null, result?: T) => void) => void, call: StoreCall, what: string, late?: (result: T) => void): Promise<T> {
    return bounded(send, call, this.#session.answered, what, late);
  }

  /** Records a holding entry; its znode lives as long as the session, and its own watch reports a deletion by someone else. */
  #granted(owner: string, entry: Entry, ttlMs: number): GrantResult {
    this.#track(owner, entry, ttlMs);
    this.#watchHeld(owner, entry);
    return { granted: true, token: entry.czxid };
  }

  /** Watches the entry a queued one waits behind (`getData`, as Curator does): its deletion wakes the waiter. */
  #watchAhead(owner: string, entry: Entry, ahead: Child, call: StoreCall): void {
    if (entry.watching === ahead.name) return;
    entry.watching = ahead.name;
    const watcher = (): void => {
      if (this.#entries.get(owner) !== entry || entry.held || entry.watching !== ahead.name) return;
      entry.watching = null;
      this.#latches.fire(owner);
    };
    this.#request((cb) => this.#client.getData(`${entry.parent}/${ahead.name}`, watcher, (e) => cb(e)), call, 'a watch').catch(() => {
      // Gone already (or no answer): the waiter asks again.
      watcher();
    });
  }

  /** Watches a held znode: deleted by someone else (a forced release), the lease is lost at once. */
  #watchHeld(owner: string, entry: Entry): void {
    if (entry.heldWatch || this.#closed) return;
    entry.heldWatch = true;
    const path = `${entry.parent}/${entry.name}`;
    const watcher = (event?: ZooKeeperEvent): void => {
      if (this.#entries.get(owner) !== entry || !entry.held) return;
      if (event && event.getType() !== 2) {
        // Its data changed (a proclamation): watch on.
        entry.heldWatch = false;
        this.#watchHeld(owner, entry);
        return;
      }
      this.#drop(owner, entry);
      for (const listener of this.#listeners) listener(entry.key, owner, 'revoked');
    };
    this.#client.exists(path, watcher, (error, stat) => {
      if (!error && stat === null) watcher();
    });
  }

  /** Records an entry and (re)arms the deletion of its znode when its own TTL runs out without renewal. */
  #track(owner: string, entry: Entry, ttlMs: number): void {
    this.#entries.set(owner, entry);
    this.#session.schedule();
    if (entry.expiry) clearTimeout(entry.expiry);
    entry.expiry = setTimeout(() => {
      if (this.#entries.get(owner) !== entry) return;
      this.#drop(owner, entry);
      this.#removeNode(entry, true).catch(() => undefined);
    }, ttlMs);
    entry.expiry.unref();
  }

  /** Forgets a local entry (its znode is deleted by the caller, or died with its session). */
  #drop(owner: string, entry: Entry): void {
    if (entry.expiry) clearTimeout(entry.expiry);
    entry.expiry = null;
    entry.watching = null;
    if (this.#entries.get(owner) === entry) this.#entries.delete(owner);
  }

  /**
   * Deletes an entry's znode, then (in the background, with `clean`) its resource's znode if
   * baton made it and it is now empty. A delete that gets no answer is tried again once the
   * session answers (its session would keep the znode, holding the lock for nobody).
   */
  async #removeNode(entry: Entry, clean: boolean, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const path = `${entry.parent}/${entry.name}`;
    let removed: boolean;
    try {
      await this.#request<void>((cb) => this.#client.remove(path, -1, (e) => cb(e)), call, 'a delete');
      removed = true;
    } catch (error) {
      if (codeOf(error) !== Code.NO_NODE) {
        if (!entry.session.lost && !this.#closed) this.#orphans.set(path, entry.session.id);
        throw error;
      }
      removed = false;
    }
    if (clean) this.#cleanParent(entry.parent);
    return removed;
  }

  /** Removes a resource's znode that baton made, once empty: never a Curator container (ZooKeeper removes those), nor a znode of yours. */
  #cleanParent(parent: string): void {
    const call = storeCall(this.defaultTimeoutMs);
    this.#request<[Buffer | undefined, ZooKeeperStat]>((cb) => this.#client.getData(parent, undefined, (e, d, s) => cb(e, [d, s])), call, 'a read').then(([data, stat]) => {
      if (stat.numChildren > 0 || isContainer(stat) || !data || !data.equals(PARENT_MARK)) return;
      this.#client.remove(parent, stat.version, () => undefined);
    }, () => undefined);
  }

  /**
   * extend sets a holding entry's own TTL, after which the store deletes its znode unless it is
   * extended again. It asks ZooKeeper nothing: the znode lives as long as the session, which
   * the store keeps alive once for all its entries, and a deletion by someone else reaches the
   * store through its watch.
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
   * sessionDeadline: until when the client's session surely lasts on ZooKeeper: the send time
   * of the last request it answered plus the negotiated timeout, less 1% for drift. Every
   * lease of the store ends then, without waiting for the driver to report the expiry.
   */
  sessionDeadline(): number {
    return this.#session.deadline();
  }

  async release(key: ResourceKey, owner: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    this.#latches.forget(owner);
    const entry = this.#entries.get(owner);
    if (!entry || entry.key.kind !== key.kind || entry.key.name !== key.name) return false;
    this.#drop(owner, entry);
    if (entry.session.lost) return false;
    return this.#call(() => this.#removeNode(entry, true, call));
  }

  /** The session ran out (the process stalled, ZooKeeper was out of reach, or the driver reported it expired): every entry made in it is lost. */
  #sessionLost(session: Session): void {
    for (const [owner, entry] of [...this.#entries]) {
      if (entry.session !== session) continue;
      this.#drop(owner, entry);
      // If the server still keeps the session, the znode outlives the entry: deleted when the session answers again.
      this.#orphans.set(`${entry.parent}/${entry.name}`, session.id);
      if (entry.held) for (const listener of this.#listeners) listener(entry.key, owner, 'expired');
      else this.#latches.fire(owner); // a queued owner asks again, in a new epoch, at the back of the queue
    }
  }

  /** A new epoch began: the znodes of lost entries still live if it is the same ZooKeeper session; they are deleted. */
  #deleteOrphans(session: Session): void {
    for (const [path, id] of [...this.#orphans]) {
      this.#orphans.delete(path);
      if (id !== session.id) continue;
      this.#request<void>((cb) => this.#client.remove(path, -1, (e) => cb(e)), storeCall(session.ttlMs), 'a delete').catch((error: unknown) => {
        if (codeOf(error) !== Code.NO_NODE && !this.#closed) this.#orphans.set(path, id);
      });
    }
  }

  async forceRelease(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    return this.#call(async () => {
      const state = await this.#read(key, await this.#children(this.resourcePath(key), call), call);
      let removed = 0;
      for (const holder of state.nodes) {
        if (!holder.holds) continue;
        try {
          // Only the same znode: a path is never used twice (its sequence suffix), so a plain delete is exact.
          await this.#request<void>((cb) => this.#client.remove(holder.path, -1, (e) => cb(e)), call, 'a delete');
          removed++;
        } catch (error) {
          if (codeOf(error) !== Code.NO_NODE) throw error;
        }
      }
      return removed;
    });
  }

  async inspect(key: ResourceKey, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState> {
    return this.#call(async () => (await this.#read(key, await this.#children(this.resourcePath(key), call), call)).state);
  }

  /** Reads a resource's entries (data and stat of each, in one pipelined round trip) and tells holders from waiters. */
  async #read(key: ResourceKey, names: readonly string[], call: StoreCall): Promise<{ state: ResourceState; nodes: { path: string; holds: boolean }[] }> {
    const parent = this.resourcePath(key);
    const children = sortedChildren(key, names);
    const reads = await Promise.all(children.map(async (child) => {
      try {
        return await this.#request<[Buffer | undefined, ZooKeeperStat]>((cb) => this.#client.getData(`${parent}/${child.name}`, undefined, (e, d, s) => cb(e, [d, s])), call, 'a read');
      } catch (error) {
        if (codeOf(error) === Code.NO_NODE) return null;
        throw error;
      }
    }));
    const live = children.flatMap((child, i) => (reads[i] ? [{ child, data: reads[i]![0], stat: reads[i]![1] }] : []));
    const infos = live.map(({ data }) => entryInfo(key, data));
    const own = this.#session.current();
    const holders: HolderInfo[] = [];
    const waiters: WaiterInfo[] = [];
    const nodes: { path: string; holds: boolean }[] = [];
    for (const [index, { child, stat }] of live.entries()) {
      const info = infos[index]!;
      // ZooKeeper tells no client another session's deadline: a znode of this store's session
      // says what is left of it; any other, the most it can have (a session's timeout).
      const ttlMs = own?.ttlMs ?? this.#client.getSessionTimeout();
      const mine = own !== null && stat.ephemeralOwner.toString('hex') === own.id;
      const expiresInMs = mine ? Math.max(0, Math.round(validUntil(own) - monotonicNow())) : ttlMs;
      const holds = canHold(info.mode, info.limit, infos.slice(0, index));
      nodes.push({ path: `${parent}/${child.name}`, holds });
      if (holds) {
        holders.push({ owner: child.owner, mode: info.mode, token: czxidOf(stat), ttlMs, expiresInMs, ...(info.value ? { value: info.value } : {}), ...(info.foreign ? { foreign: true } : {}) });
      } else {
        waiters.push({ owner: child.owner, mode: info.mode, position: waiters.length, expiresInMs });
      }
    }
    // ZooKeeper keeps no counter: the last token is the newest holder's czxid (0n with no holder).
    const fence = holders.reduce((max, h) => (h.token > max ? h.token : max), 0n);
    return { state: { key: { kind: key.kind, name: key.name }, fence, holders, waiters }, nodes };
  }

  async list(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<ResourceState[]> {
    return this.#call(async () => {
      const states: ResourceState[] = [];
      for (const kind of filter?.kind ? [filter.kind] : LOCK_KINDS) {
        const names = (await this.#children(`${this.#root}/${kind}`, call)).sort();
        const read = await Promise.all(names.map(async (segment) => {
          const key = { kind, name: unescapeName(segment) };
          return this.#read(key, await this.#children(this.resourcePath(key), call), call);
        }));
        states.push(...read.map((r) => r.state));
      }
      return states;
    });
  }

  /**
   * prune removes the resource znodes that have no entry: those baton made (marked so) and
   * whose holders ended without cleaning them (a crash, a lost session). A Curator container
   * or a znode of yours is left to its owner. Tokens are zxids, which only grow: a name used
   * again issues higher tokens.
   */
  async prune(filter?: { kind?: LockKind }, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<number> {
    return this.#call(async () => {
      let removed = 0;
      for (const kind of filter?.kind ? [filter.kind] : LOCK_KINDS) {
        for (const segment of await this.#children(`${this.#root}/${kind}`, call)) {
          const path = `${this.#root}/${kind}/${segment}`;
          try {
            const [data, stat] = await this.#request<[Buffer | undefined, ZooKeeperStat]>((cb) => this.#client.getData(path, undefined, (e, d, s) => cb(e, [d, s])), call, 'a read');
            if (stat.numChildren > 0 || isContainer(stat) || !data?.equals(PARENT_MARK)) continue;
            await this.#request<void>((cb) => this.#client.remove(path, stat.version, (e) => cb(e)), call, 'a delete');
            removed++;
          } catch (error) {
            const code = codeOf(error);
            if (code !== Code.NO_NODE && code !== Code.NOT_EMPTY && code !== Code.BAD_VERSION) throw error;
          }
        }
      }
      return removed;
    });
  }

  async wait(_key: ResourceKey, owner: string, call: StoreCall): Promise<void> {
    // ZooKeeper never hands a lock over with the wake-up: the waiter asks again.
    await this.#latches.wait(owner, Math.max(0, call.deadline - monotonicNow()), call.signal);
  }

  async proclaim(key: ResourceKey, owner: string, value: string, call: StoreCall = storeCall(this.defaultTimeoutMs)): Promise<boolean> {
    const entry = this.#entries.get(owner);
    if (!entry || !entry.held || entry.key.kind !== key.kind || entry.key.name !== key.name || entry.session.lost) return false;
    return this.#call(async () => {
      try {
        await this.#request<ZooKeeperStat>((cb) => this.#client.setData(`${entry.parent}/${entry.name}`, entryData(key, 'exclusive', 1, owner, value), -1, (e, s) => cb(e, s)), call, 'a write');
        return true;
      } catch (error) {
        if (codeOf(error) === Code.NO_NODE) return false;
        throw error;
      }
    });
  }

  /** watch: a child watch on the resource's znode, set again after each event, until stopped. */
  watch(key: ResourceKey, listener: () => void): () => void {
    let stopped = false;
    const path = this.resourcePath(key);
    const arm = (): void => {
      if (stopped || this.#closed) return;
      const watcher = (): void => {
        if (stopped) return;
        listener();
        arm();
      };
      // A child watch needs the znode: until it exists, watch for its creation.
      this.#client.getChildren(path, watcher, (error) => {
        if (error && codeOf(error) === Code.NO_NODE && !stopped) this.#client.exists(path, watcher, () => undefined);
      });
    };
    arm();
    return () => void (stopped = true);
  }

  watchLost(listener: (key: ResourceKey, owner: string, reason?: 'expired' | 'revoked') => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  /**
   * close deletes the znodes of this store's entries and stops its keep-alive and watches,
   * within `call` (by default `CLOSE_TIMEOUT_MS`); with `closeClient`, it closes the client,
   * which ends the session and so deletes every ephemeral znode at once. The client you passed
   * stays open unless `closeClient` was set.
   */
  async close(call: StoreCall = storeCall(CLOSE_TIMEOUT_MS)): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#latches.fireAll();
    const entries = [...this.#entries];
    for (const [owner, entry] of entries) this.#drop(owner, entry);
    this.#session.close();
    if (!this.#closeClient) {
      await Promise.allSettled(entries.filter(([, e]) => !e.session.lost).map(([, e]) => bounded<void>((cb) => this.#client.remove(`${e.parent}/${e.name}`, -1, (err) => cb(err)), call, () => undefined, 'a delete')));
    } else {
      // Closing the session deletes every ephemeral znode at once; the deletes are sent first
      // so that the next waiter is woken even when the close is not acknowledged.
      for (const [, e] of entries) this.#client.remove(`${e.parent}/${e.name}`, -1, () => undefined);
      await this.#connected(call);
      this.#client.close();
    }
  }

  /**
   * Waits, within `call`, for a client still connecting to connect: node-zookeeper-client
   * closed while it connects reads the server's connect answer as a reply, and throws from
   * its socket handler.
   */
  async #connected(call: StoreCall): Promise<void> {
    if (this.#client.getState().code === State.SYNC_CONNECTED) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#client.removeListener('state', onState);
        call.signal.removeEventListener('abort', done);
        resolve();
      };
      const onState = (state: { readonly code: number }): void => {
        if (state.code === State.SYNC_CONNECTED) done();
      };
      const timer = setTimeout(done, Math.max(0, call.deadline - monotonicNow()));
      this.#client.on('state', onState);
      call.signal.addEventListener('abort', done, { once: true });
    });
  }

  async #call<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new ClosedError('This zookeeper store');
    try {
      return await operation();
    } catch (error) {
      if (error instanceof ClosedError || error instanceof StoreUnavailableError || error instanceof InvalidArgumentError) throw error;
      if (error instanceof Error && error.name === 'AbortError') throw error;
      throw this.#failure(error);
    }
  }

  /** The error of a failed call, in baton's terms. */
  #failure(error: unknown): unknown {
    const code = codeOf(error);
    if (code === undefined) return error;
    if (code === Code.SESSION_EXPIRED) return new StoreUnavailableError('zookeeper', EXPIRED_MESSAGE, { cause: error });
    if (code === Code.CONNECTION_LOSS) return new StoreUnavailableError('zookeeper', 'Lost the connection to ZooKeeper', { cause: error });
    if (code === Code.NO_AUTH || code === Code.AUTH_FAILED) return new StoreUnavailableError('zookeeper', `ZooKeeper refused access: ${(error as Error).message} (check the digest auth and the ACLs)`, { cause: error });
    return new StoreUnavailableError('zookeeper', `ZooKeeper failed: ${(error as Error).message}`, { cause: error });
  }
}

/** createZooKeeperStore makes a store on your node-zookeeper-client client: `createZooKeeperStore(client)` after `client.connect()`. */
export function createZooKeeperStore(client: ZooKeeperClient, options?: ZooKeeperStoreOptions): ZooKeeperStore {
  return new ZooKeeperStore(client, options);
}
