import { randomBytes } from 'node:crypto';
import { DeleteItemCommand, GetItemCommand, ScanCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { timedOut } from '../../core/call.js';
import { monotonicNow } from '../../core/clock.js';
import { applyMark } from '../../core/mark.js';
import { decide, type QueueEntry } from '../../core/queue.js';
import { checkBoolean, checkDuration, checkOptions, checkPositiveInteger } from '../../core/validate.js';
import { ClosedError, InvalidArgumentError, QueueFullError, StoreUnavailableError } from '../../errors.js';
import { CLOSE_TIMEOUT_MS, LOCK_KINDS, type ExtendResult, type GrantRequest, type GrantResult, type LockKind, type LockStore, type MarkRequest, type MarkState, type ResourceKey, type ResourceState, type StoreCall } from '../../store.js';
import { errorName, isNetworkError, THROTTLED, type Attr, type AttrMap, type DynamoDbClient } from './client.js';
import { entryAttr, parseItem, type StoredEntry, type StoredItem } from './item.js';
import { observationsOf, type Observations } from './observations.js';

/** DynamoDbStoreOptions configures `createDynamoDbStore`. */
export interface DynamoDbStoreOptions {
  /** The table's name (see `ensureTable` and docs/dynamodb.md for its definition). Required. */
  table: string;
  /** Prefix of every item's key, so that several applications can share a table. Default `baton`; no `:` or `#`. */
  prefix?: string;
  /** The name of the table's partition key attribute (a string, the only key). Default `pk`. */
  partitionKey?: string;
  /**
   * The most entries (holders and queued waiters) one lock keeps, from 1 to 1 000. Every
   * entry lives in the lock's one item, which each change rewrites (a write costs one write
   * unit per KB): a newcomer beyond it is refused with `QueueFullError`. Default 100.
   */
  maxEntries?: number;
  /**
   * `'observed'` (the default): an entry of another process is removed only once this process
   * has seen its record version unchanged for a whole lease, on its own monotonic clock; no
   * clock is trusted. `'wall'`: also once the wall clock passes the expiry its owner wrote
   * (`Date.now()` + TTL) by more than `clockSkewMs`, so a lock whose holder died long ago is
   * free at once to a process that had not seen it; safe only while every host's wall clock
   * is within `clockSkewMs` of every other's (a clock that jumps ahead, or an unsynchronised
   * host, lets a live holder's entry be removed).
   */
  expiry?: 'observed' | 'wall';
  /** With `expiry: 'wall'`: the most that any two hosts' wall clocks may differ, in ms. Default 1 000. */
  clockSkewMs?: number;
  /** Destroy the client on `close()`; for a client the store was given to own (`openStore` does). Default false. */
  closeClient?: boolean;
}

/** A live entry as the grant rule sees it: `expiresAt` on this host's monotonic clock. */
interface LiveEntry extends QueueEntry {
  readonly stored: StoredEntry;
  /** When this process first saw the entry's record version. */
  readonly seenAt: number;
}

/** What one read-decide-write step plans: the answer, and the item to write for it (none: answered as read). */
interface Plan<T> {
  readonly result: T;
  readonly write?: { readonly entries: readonly StoredEntry[]; readonly nextSeq: number; readonly grant: boolean };
}

/** A read item with where it is kept: `undefined` item for one that is not there. */
interface Read {
  readonly item: StoredItem | undefined;
  /** The fence a new grant starts from: the item's, or the store-wide floor for an item not there. */
  readonly fence: bigint;
}

/** The answer of a conditional write whose condition failed: someone else changed the item first. */
const CONFLICT = Symbol('conflict');

/** ITEM_CACHE: items kept from this store's last read or write of them, to write without reading first. */
const ITEM_CACHE = 1000;

/** SCAN_PAGE: items per page of `list` and `prune`. */
const SCAN_PAGE = 200;

const MIN_BACKOFF_MS = 20;
const MAX_BACKOFF_MS = 1000;

const HELD: ExtendResult = Object.freeze({ held: true });
const NOT_HELD: ExtendResult = Object.freeze({ held: false });

/**
 * DynamoDbStore keeps locks in a DynamoDB table, one item per lock, with no lock server and
 * no trusted clock:
 * - Every change is one conditional write on the item's version (`v`), so a lock's
 *   transitions are atomic without transactions; a write that loses a race reads the item
 *   again and decides again, within the call's deadline.
 * - The fence is raised with `ADD` in the granting write and never lowered; `prune`
 *   removes an idle item only after raising a store-wide floor item to its fence, and a new
 *   item's fence starts at that floor.
 * - Expiry follows Amazon's lock client (see observations.ts): a crashed holder's lock is
 *   free about one lease after another process first saw its last renewal, plus that
 *   process's next poll. `expiry: 'wall'` opts into wall clocks, with their skew risk.
 * - DynamoDB cannot notify: waiters poll with core's backoff, each poll one consistent read,
 *   told by `retryAfterMs` when the entry ahead can expire; FIFO by arrival in the item.
 *
 * Requests per operation (what DynamoDB bills): an uncontended acquire of a lock this store
 * wrote last is one write (one read more when another process changed it since; two more
 * for a lock with no item yet: the item and the floor); a release or an extension one
 * write; a queued waiter's poll one strongly consistent read, plus a write every third of
 * its queue TTL to keep its place.
 */
export class DynamoDbStore implements LockStore {
  readonly name = 'dynamodb';
  readonly guarantees: { readonly clock: 'observer' | 'wall'; readonly scope: 'network'; readonly fencing: true; readonly fifo: true; readonly notify: false; readonly outlivesClient: true; readonly mixedModes: true };
  readonly defaultTimeoutMs = 5000;
  readonly #client: DynamoDbClient;
  readonly #table: string;
  readonly #prefix: string;
  readonly #pk: string;
  readonly #maxEntries: number;
  readonly #wallSkewMs: number | null;
  readonly #closeClient: boolean;
  readonly #seen: Observations;
  readonly #items = new Map<string, StoredItem>();
  /** The changes in flight, which `close()` lets finish within its bound. */
  readonly #changing = new Set<Promise<unknown>>();
  /** Aborts every request in flight when the store closes. */
  readonly #drop = new AbortController();
  #closed = false;
  /** The last error that kept a request from reaching DynamoDB; cleared by the next answer. */
  #unreachable: unknown = undefined;
  #endpoint = 'its endpoint';

  constructor(client: DynamoDbClient, options: DynamoDbStoreOptions) {
    if (client === null || typeof client !== 'object' || typeof (client as { send?: unknown }).send !== 'function') {
      throw new InvalidArgumentError('client', 'Expected `client` to be a DynamoDBClient of @aws-sdk/client-dynamodb v3 (an object with `send`)');
    }
    if (options === undefined) throw new InvalidArgumentError('options', 'Expected `options` with the `table` name');
    const o = checkOptions<DynamoDbStoreOptions>(options, 'options', ['table', 'prefix', 'partitionKey', 'maxEntries', 'expiry', 'clockSkewMs', 'closeClient']);
    if (typeof o.table !== 'string' || !/^[A-Za-z0-9_.-]{3,255}$/.test(o.table)) {
      throw new InvalidArgumentError('table', `Expected \`table\` to be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -), got ${o.table === undefined ? 'nothing' : JSON.stringify(o.table)}`);
    }
    if (o.prefix !== undefined && (typeof o.prefix !== 'string' || o.prefix.length === 0 || o.prefix.length > 64 || /[:#]/.test(o.prefix))) {
      throw new InvalidArgumentError('prefix', `Expected \`prefix\` to be a non-empty string of at most 64 characters without ":" or "#", got ${JSON.stringify(o.prefix)}`);
    }
    if (o.partitionKey !== undefined && (typeof o.partitionKey !== 'string' || o.partitionKey.length === 0 || o.partitionKey.length > 255)) {
      throw new InvalidArgumentError('partitionKey', `Expected \`partitionKey\` to be an attribute name of 1 to 255 characters, got ${JSON.stringify(o.partitionKey)}`);
    }
    if (o.partitionKey !== undefined && ['kind', 'name', 'v', 'fence', 'seq', 'entries'].includes(o.partitionKey)) {
      throw new InvalidArgumentError('partitionKey', `Expected \`partitionKey\` to be none of the item's own attributes (kind, name, v, fence, seq, entries), got "${o.partitionKey}"`);
    }
    const maxEntries = o.maxEntries === undefined ? 100 : checkPositiveInteger(o.maxEntries, 'maxEntries');
    if (maxEntries > 1000) throw new InvalidArgumentError('maxEntries', `Expected \`maxEntries\` to be at most 1000 (an item holds at most 400 KB), got ${maxEntries}`);
    if (o.expiry !== undefined && o.expiry !== 'observed' && o.expiry !== 'wall') {
      throw new InvalidArgumentError('expiry', `Expected \`expiry\` to be 'observed' or 'wall', got ${JSON.stringify(o.expiry)}`);
    }
    if (o.clockSkewMs !== undefined && o.expiry !== 'wall') throw new InvalidArgumentError('clockSkewMs', '`clockSkewMs` only applies with `expiry: \'wall\'`');
    const skew = o.expiry === 'wall' ? checkDuration(o.clockSkewMs ?? 1000, 'clockSkewMs', 0) : null;
    this.#client = client;
    this.#table = o.table;
    this.#prefix = o.prefix ?? 'baton';
    this.#pk = o.partitionKey ?? 'pk';
    this.#maxEntries = maxEntries;
    this.#wallSkewMs = skew;
    this.#closeClient = checkBoolean(o.closeClient, 'closeClient') ?? false;
    this.#seen = observationsOf(client);
    this.guarantees = Object.freeze({ clock: skew === null ? 'observer' : 'wall', scope: 'network', fencing: true, fifo: true, notify: false, outlivesClient: true, mixedModes: true } as const);
    void this.#describeEndpoint();
  }

  /** The table this store keeps its locks in. */
  get table(): string {
    return this.#table;
  }

  async grant(request: GrantRequest, call: StoreCall): Promise<GrantResult> {
    const { key, owner } = request;
    return this.#change(key, call, 'grant', true, ({ item, fence }, now): Plan<GrantResult> => {
      const live = this.#live(key, item, now);
      const mine = live.find((entry) => entry.owner === owner);
      if (mine?.held) return { result: { granted: true, token: mine.token! } };
      const decision = decide(live, request, mine, now);
      if (decision.limitInUse !== undefined) return { result: { granted: false, limitInUse: decision.limitInUse } };
      const nextSeq = item?.nextSeq ?? 0;
      if (!mine && (decision.grant || request.enqueue) && live.length >= this.#maxEntries) throw new QueueFullError(key.name, key.kind, this.#maxEntries);
      const base = { owner, mode: request.mode, limit: request.limit, seq: mine?.seq ?? nextSeq, rv: newRecordVersion(), ...(request.value === undefined ? {} : { value: request.value }) };
      const others = live.filter((entry) => entry.owner !== owner).map((entry) => entry.stored);
      if (decision.grant) {
        const token = fence + 1n;
        const entry: StoredEntry = { ...base, held: true, ttlMs: request.ttlMs, token, ...this.#wallExpiry(request.ttlMs) };
        return { result: { granted: true, token }, write: { entries: sortBySeq([...others, entry]), nextSeq: mine ? nextSeq : nextSeq + 1, grant: true } };
      }
      // Asking again sooner than a third of the queue TTL would not keep the place any longer.
      const retryAfterMs = Math.min(decision.retryAfterMs ?? Infinity, Math.floor(request.queueTtlMs / 3));
      const result: GrantResult = { granted: false, position: decision.position, ...(Number.isFinite(retryAfterMs) ? { retryAfterMs } : {}) };
      if (!request.enqueue) return { result };
      // A queued place is rewritten (a new record version) only as often as it must be to stay alive, or to drop dead entries.
      const fresh = mine && mine.ttlMs === request.queueTtlMs && now - mine.seenAt < mine.ttlMs / 3 && live.length === (item?.entries.length ?? 0);
      if (fresh) return { result };
      const entry: StoredEntry = { ...base, held: false, ttlMs: request.queueTtlMs, token: null, ...this.#wallExpiry(request.queueTtlMs) };
      return { result, write: { entries: sortBySeq([...others, entry]), nextSeq: mine ? nextSeq : nextSeq + 1, grant: false } };
    });
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, call: StoreCall): Promise<ExtendResult> {
    return this.#change(key, call, 'extend', false, ({ item }, now): Plan<ExtendResult> => {
      const live = this.#live(key, item, now);
      const mine = live.find((entry) => entry.owner === owner && entry.held);
      if (!mine) return { result: NOT_HELD };
      const entry: StoredEntry = { ...mine.stored, ttlMs, rv: newRecordVersion(), ...this.#wallExpiry(ttlMs) };
      return { result: HELD, write: { entries: live.map((e) => (e === mine ? entry : e.stored)), nextSeq: item!.nextSeq, grant: false } };
    });
  }

  async release(key: ResourceKey, owner: string, call: StoreCall): Promise<boolean> {
    return this.#change(key, call, 'release', false, ({ item }, now): Plan<boolean> => {
      const live = this.#live(key, item, now);
      if (!live.some((entry) => entry.owner === owner)) return { result: false };
      return { result: true, write: { entries: live.filter((e) => e.owner !== owner).map((e) => e.stored), nextSeq: item!.nextSeq, grant: false } };
    });
  }

  async downgrade(key: ResourceKey, owner: string, call: StoreCall): Promise<boolean> {
    return this.#change(key, call, 'downgrade', false, ({ item }, now): Plan<boolean> => {
      const live = this.#live(key, item, now);
      const mine = live.find((entry) => entry.owner === owner && entry.held);
      if (!mine) return { result: false };
      if (mine.mode === 'shared') return { result: true };
      // Same place, token, TTL and record version: only the mode changes; the readers behind it see it at their next poll.
      const entry: StoredEntry = { ...mine.stored, mode: 'shared' };
      return { result: true, write: { entries: live.map((e) => (e === mine ? entry : e.stored)), nextSeq: item!.nextSeq, grant: false } };
    });
  }

  /**
   * advanceMark: see `LockStore.advanceMark`. A mark is an item of its own
   * (`${prefix}#mark:${kind}:${name}`: `at` N, `note` S), out of reach of `prune`; it moves by
   * a write conditional on the mark read, so of callers racing for one `to`, one advances it.
   */
  async advanceMark(key: ResourceKey, request: MarkRequest, call: StoreCall): Promise<MarkState & { readonly advanced: boolean }> {
    this.#assertOpen();
    const Key = { [this.#pk]: { S: this.#markId(key) } };
    for (;;) {
      const answer = (await this.#send(new GetItemCommand({ TableName: this.#table, Key, ConsistentRead: true }), call, 'advanceMark')) as { Item?: AttrMap };
      const current = answer.Item ? markOf(answer.Item) : undefined;
      const { state, advanced, write } = applyMark(current, request);
      if (!write) return { ...state, advanced };
      const written = await this.#send(new UpdateItemCommand({
        TableName: this.#table,
        Key,
        UpdateExpression: `SET #at = :to, #k = :k, #n = :n${state.note === undefined ? ' REMOVE #note' : ', #note = :note'}`,
        ConditionExpression: current ? '#at = :at' : 'attribute_not_exists(#pk)',
        ExpressionAttributeNames: { '#at': 'at', '#k': 'kind', '#n': 'name', '#note': 'note', ...(current ? {} : { '#pk': this.#pk }) },
        ExpressionAttributeValues: {
          ':to': { N: String(state.at) },
          ':k': { S: key.kind },
          ':n': { S: key.name },
          ...(state.note === undefined ? {} : { ':note': { S: state.note } }),
          ...(current ? { ':at': { N: String(current.at) } } : {}),
        } as Record<string, Attr>,
      } as never), call, 'advanceMark', true);
      if (written !== CONFLICT) return { ...state, advanced };
    }
  }

  async listMarks(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<(MarkState & { readonly key: ResourceKey })[]> {
    this.#assertOpen();
    const marks: (MarkState & { key: ResourceKey })[] = [];
    const prefix = filter?.kind ? `${this.#prefix}#mark:${filter.kind}:` : `${this.#prefix}#mark:`;
    await this.#scanPrefix(prefix, call, 'listMarks', (raw) => {
      const kind = raw.kind?.S as LockKind | undefined;
      const name = raw.name?.S;
      if (!kind || name === undefined || !LOCK_KINDS.includes(kind)) return;
      marks.push({ key: { kind, name }, ...markOf(raw) });
    });
    return marks.sort((a, b) => (this.#markId(a.key) < this.#markId(b.key) ? -1 : 1));
  }

  async forceRelease(key: ResourceKey, call: StoreCall): Promise<number> {
    return this.#change(key, call, 'forceRelease', false, ({ item }, now): Plan<number> => {
      const live = this.#live(key, item, now);
      const removed = live.filter((entry) => entry.held).length;
      if (removed === 0) return { result: 0 };
      return { result: removed, write: { entries: live.filter((e) => !e.held).map((e) => e.stored), nextSeq: item!.nextSeq, grant: false } };
    });
  }

  async proclaim(key: ResourceKey, owner: string, value: string, call: StoreCall): Promise<boolean> {
    return this.#change(key, call, 'proclaim', false, ({ item }, now): Plan<boolean> => {
      const live = this.#live(key, item, now);
      const mine = live.find((entry) => entry.owner === owner && entry.held);
      if (!mine) return { result: false };
      if (mine.value === value) return { result: true };
      // The record version stays: a new value is not a renewal, and the lease ends when it would have.
      const entry: StoredEntry = { ...mine.stored, value };
      return { result: true, write: { entries: live.map((e) => (e === mine ? entry : e.stored)), nextSeq: item!.nextSeq, grant: false } };
    });
  }

  async inspect(key: ResourceKey, call: StoreCall): Promise<ResourceState> {
    this.#assertOpen();
    const item = await this.#get(this.#id(key), call, 'inspect');
    return this.#state(key, item, monotonicNow());
  }

  async list(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<ResourceState[]> {
    const states: ResourceState[] = [];
    await this.#scan(filter, call, 'list', (key, item) => {
      states.push(this.#state(key, item, monotonicNow()));
    });
    return states.sort((a, b) => (a.key.kind + ':' + a.key.name < b.key.kind + ':' + b.key.name ? -1 : 1));
  }

  /**
   * prune: see `LockStore.prune`. An item whose entries are all dead (as this process has
   * seen them) goes: first the floor item is raised to its fence, then the item is deleted on
   * the condition that its version is the one read, so a grant that came between keeps it.
   */
  async prune(filter: { kind?: LockKind } | undefined, call: StoreCall): Promise<number> {
    const idle: { key: ResourceKey; item: StoredItem }[] = [];
    await this.#scan(filter, call, 'prune', (key, item) => {
      if (this.#live(key, item, monotonicNow()).length === 0) idle.push({ key, item });
    });
    let removed = 0;
    for (const { key, item } of idle) {
      await this.#raiseFloor(item.fence, call);
      const id = this.#id(key);
      const deleted = await this.#send(new DeleteItemCommand({
        TableName: this.#table,
        Key: { [this.#pk]: { S: id } },
        ConditionExpression: '#v = :v',
        ExpressionAttributeNames: { '#v': 'v' },
        ExpressionAttributeValues: { ':v': { N: String(item.version) } },
      }), call, 'prune', true);
      this.#items.delete(id);
      if (deleted !== CONFLICT) removed++;
    }
    return removed;
  }

  unreachable(): string | undefined {
    if (this.#unreachable === undefined) return undefined;
    const why = this.#unreachable instanceof Error ? this.#unreachable.message : String(this.#unreachable);
    return `Cannot reach DynamoDB at ${this.#endpoint}: ${why}`;
  }

  /**
   * close refuses new reads, lets the changes in flight finish (a release, or the give-back
   * of a grant that answered after its caller gave up) until `call` aborts or its deadline
   * (`CLOSE_TIMEOUT_MS` without one), then aborts whatever is still in flight.
   */
  async close(call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const deadline = call?.deadline ?? monotonicNow() + CLOSE_TIMEOUT_MS;
    // Changes that start meanwhile (a give-back) are waited for too.
    while (this.#changing.size > 0 && monotonicNow() < deadline && !call?.signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.max(0, deadline - monotonicNow()));
        timer.unref?.();
        call?.signal.addEventListener('abort', done);
        void Promise.allSettled([...this.#changing]).then(done);
        function done(): void {
          clearTimeout(timer);
          call?.signal.removeEventListener('abort', done);
          resolve();
        }
      });
    }
    this.#drop.abort(new ClosedError('This DynamoDB store'));
    this.#items.clear();
    if (this.#closeClient) (this.#client as { destroy?: () => void }).destroy?.();
  }

  // ---- the read-decide-write step ----

  /**
   * #change runs one change of a lock's item: read it (from this store's last sight of it when
   * it has one), let `plan` decide, and write its new entries on the condition that the item
   * is still the version read. A write that loses (someone else changed the item) reads it
   * again and decides again; an answer given without a write is always decided on a fresh,
   * strongly consistent read. Bounded by the call's deadline and signal. `mayCreate`: the
   * change may make the item, whose fence then starts at the floor (one read more).
   */
  #change<T>(key: ResourceKey, call: StoreCall, verb: string, mayCreate: boolean, plan: (read: Read, now: number) => Plan<T>): Promise<T> {
    // A change still runs while the store closes (a late grant's give-back comes then), until it drops its requests.
    if (this.#drop.signal.aborted) return Promise.reject(new ClosedError('This DynamoDB store'));
    const change = this.#changeOnce(key, call, verb, mayCreate, plan);
    this.#changing.add(change);
    const forget = (): void => void this.#changing.delete(change);
    change.then(forget, forget);
    return change;
  }

  async #changeOnce<T>(key: ResourceKey, call: StoreCall, verb: string, mayCreate: boolean, plan: (read: Read, now: number) => Plan<T>): Promise<T> {
    const id = this.#id(key);
    let cached = this.#items.get(id);
    for (let conflicts = 0; ; ) {
      const item = cached ?? (await this.#get(id, call, verb));
      // Only a grant makes an item; the others find nothing to change in one that is not there.
      const fence = item ? item.fence : mayCreate ? await this.#floor(call, verb) : 0n;
      let step: Plan<T>;
      try {
        step = plan({ item, fence }, monotonicNow());
      } catch (error) {
        // A refusal (a full queue) is only ever decided on a fresh read, as an answer without a write is.
        if (cached === undefined) throw error;
        cached = undefined;
        continue;
      }
      if (!step.write) {
        if (cached === undefined) return step.result;
        cached = undefined;
        continue;
      }
      const written = await this.#write(key, item, fence, step.write, call, verb);
      if (written) return step.result;
      cached = undefined;
      // Many writers on one item: spread their next tries a little.
      if (++conflicts > 2) await this.#pause(Math.random() * Math.min(50, 2 ** conflicts), call, verb);
    }
  }

  /** #write makes `write` the item's new state if it is still `before` (or still absent); false when it was not. */
  async #write(key: ResourceKey, before: StoredItem | undefined, fence: bigint, write: NonNullable<Plan<unknown>['write']>, call: StoreCall, verb: string): Promise<boolean> {
    const id = this.#id(key);
    const version = (before?.version ?? 0) + 1;
    // A new item's fence starts at the floor; ADD then raises it by one for a grant.
    const add = before ? (write.grant ? 1n : 0n) : fence + (write.grant ? 1n : 0n);
    const answer = await this.#send(new UpdateItemCommand({
      TableName: this.#table,
      Key: { [this.#pk]: { S: id } },
      UpdateExpression: 'SET #v = :nv, #e = :e, #s = :s, #k = :k, #n = :n ADD #f :add',
      ConditionExpression: before ? '#v = :v' : 'attribute_not_exists(#pk)',
      ExpressionAttributeNames: { '#v': 'v', '#e': 'entries', '#s': 'seq', '#k': 'kind', '#n': 'name', '#f': 'fence', ...(before ? {} : { '#pk': this.#pk }) },
      ExpressionAttributeValues: {
        ':nv': { N: String(version) },
        ':e': { L: write.entries.map(entryAttr) },
        ':s': { N: String(write.nextSeq) },
        ':k': { S: key.kind },
        ':n': { S: key.name },
        ':add': { N: String(add) },
        ...(before ? { ':v': { N: String(before.version) } } : {}),
      } as Record<string, Attr>,
    } as never), call, verb, true);
    if (answer === CONFLICT) {
      this.#items.delete(id);
      return false;
    }
    const item: StoredItem = { kind: key.kind, name: key.name, version, fence: (before ? before.fence : 0n) + add, nextSeq: write.nextSeq, entries: write.entries };
    this.#keep(id, item);
    return true;
  }

  /** #get reads an item with a strongly consistent read, notes what it saw, and keeps it. */
  async #get(id: string, call: StoreCall, verb: string): Promise<StoredItem | undefined> {
    const answer = (await this.#send(new GetItemCommand({ TableName: this.#table, Key: { [this.#pk]: { S: id } }, ConsistentRead: true }), call, verb)) as { Item?: AttrMap };
    if (!answer.Item) {
      this.#items.delete(id);
      this.#seen.see(this.#seenKey(id), [], monotonicNow());
      return undefined;
    }
    const item = this.#parse(answer.Item, id);
    this.#keep(id, item);
    return item;
  }

  /** #keep remembers an item as read or written now, and what its entries' record versions are. */
  #keep(id: string, item: StoredItem): void {
    this.#seen.see(this.#seenKey(id), item.entries, monotonicNow());
    this.#items.delete(id);
    this.#items.set(id, item);
    if (this.#items.size > ITEM_CACHE) this.#items.delete(this.#items.keys().next().value!);
  }

  /** #floor: the store-wide floor, the highest fence of any pruned item: a new item's fence starts there. */
  async #floor(call: StoreCall, verb: string): Promise<bigint> {
    const answer = (await this.#send(new GetItemCommand({ TableName: this.#table, Key: { [this.#pk]: { S: this.#floorId() } }, ConsistentRead: true }), call, verb)) as { Item?: AttrMap };
    return BigInt(answer.Item?.fence?.N ?? '0');
  }

  /** #raiseFloor raises the floor to `fence` (never lowers it). */
  async #raiseFloor(fence: bigint, call: StoreCall): Promise<void> {
    await this.#send(new UpdateItemCommand({
      TableName: this.#table,
      Key: { [this.#pk]: { S: this.#floorId() } },
      UpdateExpression: 'SET #f = :f',
      ConditionExpression: 'attribute_not_exists(#f) OR #f < :f',
      ExpressionAttributeNames: { '#f': 'fence' },
      ExpressionAttributeValues: { ':f': { N: String(fence) } },
    }), call, 'prune', true);
  }

  /** #scan reads every lock item of this store's prefix (of one kind), page by page, strongly consistent. */
  async #scan(filter: { kind?: LockKind } | undefined, call: StoreCall, verb: string, each: (key: ResourceKey, item: StoredItem) => void): Promise<void> {
    this.#assertOpen();
    const prefix = filter?.kind ? `${this.#prefix}:${filter.kind}:` : `${this.#prefix}:`;
    await this.#scanPrefix(prefix, call, verb, (raw) => {
      const id = raw[this.#pk]?.S ?? '';
      const item = this.#parse(raw, id);
      if (!LOCK_KINDS.includes(item.kind) || id !== `${this.#prefix}:${item.kind}:${item.name}`) return;
      this.#keep(id, item);
      each({ kind: item.kind, name: item.name }, item);
    });
  }

  /** #scanPrefix reads every item whose key starts with `prefix`, page by page, strongly consistent. */
  async #scanPrefix(prefix: string, call: StoreCall, verb: string, each: (raw: AttrMap) => void): Promise<void> {
    let start: AttrMap | undefined;
    do {
      const page = (await this.#send(new ScanCommand({
        TableName: this.#table,
        ConsistentRead: true,
        Limit: SCAN_PAGE,
        FilterExpression: 'begins_with(#pk, :p)',
        ExpressionAttributeNames: { '#pk': this.#pk },
        ExpressionAttributeValues: { ':p': { S: prefix } },
        ...(start ? { ExclusiveStartKey: start } : {}),
      } as never), call, verb)) as { Items?: AttrMap[]; LastEvaluatedKey?: AttrMap };
      for (const raw of page.Items ?? []) each(raw);
      start = page.LastEvaluatedKey;
    } while (start);
  }

  // ---- what the entries mean ----

  /** #live: the entries of `item` that are alive as this process has seen them, in arrival order. */
  #live(key: ResourceKey, item: StoredItem | undefined, now: number): LiveEntry[] {
    if (!item) return [];
    const seenKey = this.#seenKey(this.#id(key));
    const live: LiveEntry[] = [];
    for (const stored of item.entries) {
      const seenAt = this.#seen.seenSince(seenKey, stored.owner, stored.rv, now);
      let expiresAt = seenAt + stored.ttlMs;
      if (this.#wallSkewMs !== null && stored.expiresAt !== undefined) {
        expiresAt = Math.min(expiresAt, now + (stored.expiresAt + this.#wallSkewMs - Date.now()));
      }
      if (expiresAt <= now) continue;
      live.push({ owner: stored.owner, seq: stored.seq, mode: stored.mode, limit: stored.limit, held: stored.held, ttlMs: stored.ttlMs, expiresAt, token: stored.token, ...(stored.value === undefined ? {} : { value: stored.value }), stored, seenAt });
    }
    return live.sort((a, b) => a.seq - b.seq);
  }

  #state(key: ResourceKey, item: StoredItem | undefined, now: number): ResourceState {
    const live = this.#live(key, item, now);
    return {
      key: { kind: key.kind, name: key.name },
      fence: item?.fence ?? 0n,
      holders: live.filter((e) => e.held).map((e) => ({ owner: e.owner, mode: e.mode, token: e.token!, ttlMs: e.ttlMs, expiresInMs: Math.round(e.expiresAt - now), ...(e.value === undefined ? {} : { value: e.value }) })),
      waiters: live.filter((e) => !e.held).map((e, position) => ({ owner: e.owner, mode: e.mode, position, expiresInMs: Math.round(e.expiresAt - now) })),
    };
  }

  /** In wall-clock mode, the wall-clock instant an entry written now expires, stored with it. */
  #wallExpiry(ttlMs: number): { expiresAt?: number } {
    return this.#wallSkewMs === null ? {} : { expiresAt: Date.now() + ttlMs };
  }

  // ---- requests ----

  /**
   * #send sends one request, bounded by the call: aborted at its deadline or when the store
   * drops its requests (`close`); a read also as soon as the call's signal aborts. A write
   * (`conditional`) is left to finish by the deadline: DynamoDB may have applied it already,
   * and its answer goes to the caller even after the signal aborted, so that core gives back
   * a grant nobody waits for any more. Throttling (and DynamoDB's own transient errors) is
   * retried with backoff and jitter until the deadline, never past it. A failed condition
   * answers `CONFLICT`.
   */
  async #send(command: unknown, call: StoreCall, verb: string, conditional = false): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      if (this.#drop.signal.aborted) throw new ClosedError('This DynamoDB store');
      call.signal.throwIfAborted();
      const left = call.deadline - monotonicNow();
      if (left <= 0) throw timedOut(this, verb);
      const controller = new AbortController();
      const stop = (): void => controller.abort();
      const timer = setTimeout(stop, left);
      timer.unref?.();
      if (!conditional) call.signal.addEventListener('abort', stop);
      this.#drop.signal.addEventListener('abort', stop);
      try {
        const answer = await this.#client.send(command, { abortSignal: controller.signal });
        this.#unreachable = undefined;
        return answer;
      } catch (error) {
        if (this.#drop.signal.aborted) throw new ClosedError('This DynamoDB store');
        call.signal.throwIfAborted();
        if (controller.signal.aborted || call.deadline <= monotonicNow()) throw timedOut(this, verb);
        const name = errorName(error);
        if (conditional && name === 'ConditionalCheckFailedException') return CONFLICT;
        if (name === 'ResourceNotFoundException') {
          throw new StoreUnavailableError('dynamodb', `The DynamoDB table "${this.#table}" does not exist: create it with ensureTable() from baton-lock/dynamodb, or open the store with &create=true`, { cause: error });
        }
        if (isNetworkError(error)) this.#unreachable = error;
        else if (!THROTTLED.has(name)) throw new StoreUnavailableError('dynamodb', `DynamoDB ${verb} failed: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      } finally {
        clearTimeout(timer);
        call.signal.removeEventListener('abort', stop);
        this.#drop.signal.removeEventListener('abort', stop);
      }
      // Throttled, or the endpoint did not answer: back off (full jitter), within the deadline.
      await this.#pause(Math.random() * Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** attempt), call, verb);
    }
  }

  /** #pause waits `ms`, at most until the call's deadline (where it rejects), cut short (rejecting) by the call's signal or the store's close. */
  #pause(ms: number, call: StoreCall, verb: string): Promise<void> {
    const left = call.deadline - monotonicNow();
    if (left <= 0) return Promise.reject(timedOut(this, verb));
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        call.signal.removeEventListener('abort', abort);
        this.#drop.signal.removeEventListener('abort', abort);
      };
      const abort = (): void => {
        done();
        reject(this.#drop.signal.aborted ? new ClosedError('This DynamoDB store') : call.signal.reason);
      };
      const timer = setTimeout(() => {
        done();
        if (ms < left) resolve();
        else reject(timedOut(this, verb));
      }, Math.min(ms, left));
      timer.unref?.();
      call.signal.addEventListener('abort', abort);
      this.#drop.signal.addEventListener('abort', abort);
    });
  }

  #parse(raw: AttrMap, id: string): StoredItem {
    try {
      return parseItem(raw);
    } catch (error) {
      throw new StoreUnavailableError('dynamodb', `The item "${id}" of the DynamoDB table "${this.#table}" is not one of baton's: ${(error as Error).message}`, { cause: error });
    }
  }

  #id(key: ResourceKey): string {
    return `${this.#prefix}:${key.kind}:${key.name}`;
  }

  #markId(key: ResourceKey): string {
    return `${this.#prefix}#mark:${key.kind}:${key.name}`;
  }

  #floorId(): string {
    return `${this.#prefix}#floor`;
  }

  #seenKey(id: string): string {
    return `${this.#table}\n${this.#pk}\n${id}`;
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('This DynamoDB store');
  }

  /** Reads the client's endpoint once, for `unreachable()`'s message; the SDK resolves it asynchronously. */
  async #describeEndpoint(): Promise<void> {
    try {
      const config = (this.#client as { config?: { endpoint?: unknown; region?: unknown } }).config;
      const endpoint = typeof config?.endpoint === 'function' ? await (config.endpoint as () => Promise<unknown>)() : undefined;
      const e = endpoint as { protocol?: string; hostname?: string; port?: number; path?: string } | undefined;
      if (e?.hostname) this.#endpoint = `${e.protocol ?? 'https:'}//${e.hostname}${e.port ? `:${e.port}` : ''}${e.path && e.path !== '/' ? e.path : ''}`;
      else if (typeof config?.region === 'function') this.#endpoint = `the default endpoint of region ${String(await (config.region as () => Promise<unknown>)())}`;
    } catch {
      // the message names no endpoint
    }
  }
}

/** markOf reads a mark item. */
function markOf(raw: AttrMap): MarkState {
  const at = Number(raw.at?.N ?? '-1');
  return raw.note?.S === undefined ? { at } : { at, note: raw.note.S };
}

/** newRecordVersion: a fresh record version, 72 random bits. */
function newRecordVersion(): string {
  return randomBytes(9).toString('base64url');
}

function sortBySeq(entries: StoredEntry[]): StoredEntry[] {
  return entries.sort((a, b) => a.seq - b.seq);
}

/**
 * createDynamoDbStore makes a store on your `DynamoDBClient` (from `@aws-sdk/client-dynamodb`
 * v3) and a table made with `ensureTable` or the definition in docs/dynamodb.md. The store
 * never closes your client unless asked (`closeClient`).
 */
export function createDynamoDbStore(client: DynamoDbClient, options: DynamoDbStoreOptions): DynamoDbStore {
  return new DynamoDbStore(client, options);
}
