import { timeLeft } from '../../core/call.js';
import { systemClock, type Clock } from '../../core/clock.js';
import { applyMark } from '../../core/mark.js';
import { decide, grantable, type QueueEntry } from '../../core/queue.js';
import { checkOptions } from '../../core/validate.js';
import { WakeLatch } from '../../core/wake-latch.js';
import { ClosedError } from '../../errors.js';
import type { ExtendResult, GrantRequest, HoldMode, MarkRequest, MarkState, GrantResult, HandOff, LockKind, LockStore, ResourceKey, ResourceState, StoreCall } from '../../store.js';


/** MemoryStoreOptions configures `createMemoryStore`. */
export interface MemoryStoreOptions {
  /** Time source for TTLs and wake-up timers; a `ManualClock` makes expiry exact in tests. Default: the host's monotonic clock. */
  clock?: Clock;
}

interface MemoryEntry extends QueueEntry {
  seq: number;
  mode: HoldMode;
  held: boolean;
  ttlMs: number;
  expiresAt: number;
  token: bigint | null;
  readonly latch: WakeLatch;
}

interface MemoryResource {
  readonly key: ResourceKey;
  fence: bigint;
  nextSeq: number;
  readonly entries: Map<string, MemoryEntry>;
}

/**
 * MemoryStore keeps locks in this process's memory: exact, FIFO, with a release waking
 * exactly the waiters that may now hold. Locks are shared by every baton instance on the
 * same store object and by nothing outside the process; they vanish when it exits.
 */
export class MemoryStore implements LockStore {
  readonly name = 'memory';
  readonly guarantees = Object.freeze({ clock: 'process', scope: 'process', fencing: true, fifo: true, notify: true, outlivesClient: true, mixedModes: true } as const);
  /** Every call answers at once; the bound only matters to a wrapper of this store. */
  readonly defaultTimeoutMs = 5000;
  readonly #clock: Clock;
  readonly #resources = new Map<string, MemoryResource>();
  /** The highest fence of a pruned resource: a new resource's fence starts here, so a pruned name's tokens never go back. */
  #floor = 0n;
  #closed = false;
  /** Marks (`advanceMark`), by resource: apart from the entries, never pruned. */
  readonly #marks = new Map<string, { key: ResourceKey; state: MarkState }>();
  readonly #lostListeners = new Set<(key: ResourceKey, owner: string) => void>();

  constructor(options?: MemoryStoreOptions) {
    const o = checkOptions<MemoryStoreOptions>(options, 'options', ['clock']);
    this.#clock = o.clock ?? systemClock;
  }

  async grant(request: GrantRequest, _call?: StoreCall): Promise<GrantResult> {
    const resource = this.#resource(request.key);
    const now = this.#clock.now();
    const live = this.#live(resource, now);
    const mine = resource.entries.get(request.owner);
    if (mine?.held) return { granted: true, token: mine.token! };
    const decision = decide(live, request, mine, now);
    if (decision.limitInUse !== undefined) return { granted: false, limitInUse: decision.limitInUse };
    if (decision.grant) {
      resource.fence += 1n;
      const entry = mine ?? this.#newEntry(resource, request);
      Object.assign(entry, { held: true, token: resource.fence, ttlMs: request.ttlMs, expiresAt: now + request.ttlMs, value: request.value });
      resource.entries.set(request.owner, entry);
      return { granted: true, token: resource.fence };
    }
    if (request.enqueue) {
      const entry = mine ?? this.#newEntry(resource, request);
      entry.ttlMs = request.queueTtlMs;
      entry.expiresAt = now + request.queueTtlMs;
      resource.entries.set(request.owner, entry);
    }
    return { granted: false, position: decision.position, retryAfterMs: decision.retryAfterMs };
  }

  async extend(key: ResourceKey, owner: string, ttlMs: number, _call?: StoreCall): Promise<ExtendResult> {
    const resource = this.#resource(key);
    const now = this.#clock.now();
    this.#live(resource, now);
    const entry = resource.entries.get(owner);
    if (!entry?.held) return { held: false };
    entry.ttlMs = ttlMs;
    entry.expiresAt = now + ttlMs;
    return { held: true };
  }

  async release(key: ResourceKey, owner: string, _call?: StoreCall): Promise<boolean> {
    const resource = this.#resource(key);
    this.#live(resource, this.#clock.now());
    const removed = resource.entries.delete(owner);
    if (removed) this.#wakeGrantable(resource);
    return removed;
  }

  async downgrade(key: ResourceKey, owner: string, _call?: StoreCall): Promise<boolean> {
    const resource = this.#resource(key);
    this.#live(resource, this.#clock.now());
    const entry = resource.entries.get(owner);
    if (!entry?.held) return false;
    if (entry.mode === 'shared') return true;
    entry.mode = 'shared';
    this.#wakeGrantable(resource);
    return true;
  }

  async forceRelease(key: ResourceKey, _call?: StoreCall): Promise<number> {
    const resource = this.#resource(key);
    this.#live(resource, this.#clock.now());
    let removed = 0;
    for (const [owner, entry] of resource.entries) {
      if (entry.held) {
        resource.entries.delete(owner);
        removed++;
        for (const listener of this.#lostListeners) listener(resource.key, owner);
      }
    }
    if (removed > 0) this.#wakeGrantable(resource);
    return removed;
  }

  async advanceMark(key: ResourceKey, request: MarkRequest, _call?: StoreCall): Promise<MarkState & { advanced: boolean }> {
    this.#assertOpen();
    const id = storeKey(key);
    const { state, advanced, write } = applyMark(this.#marks.get(id)?.state, request);
    if (write) this.#marks.set(id, { key: { kind: key.kind, name: key.name }, state });
    return { ...state, advanced };
  }

  async listMarks(filter?: { kind?: LockKind }, _call?: StoreCall): Promise<(MarkState & { key: ResourceKey })[]> {
    this.#assertOpen();
    return [...this.#marks.entries()]
      .filter(([, mark]) => !filter?.kind || mark.key.kind === filter.kind)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([, mark]) => ({ key: mark.key, ...mark.state }));
  }

  watchLost(listener: (key: ResourceKey, owner: string) => void): () => void {
    this.#lostListeners.add(listener);
    return () => void this.#lostListeners.delete(listener);
  }

  async inspect(key: ResourceKey, _call?: StoreCall): Promise<ResourceState> {
    return this.#state(this.#resource(key), this.#clock.now());
  }

  async list(filter?: { kind?: LockKind }, _call?: StoreCall): Promise<ResourceState[]> {
    this.#assertOpen();
    const now = this.#clock.now();
    return [...this.#resources.values()]
      .filter((resource) => !filter?.kind || resource.key.kind === filter.kind)
      .map((resource) => this.#state(resource, now))
      .sort((a, b) => (a.key.kind + a.key.name < b.key.kind + b.key.name ? -1 : 1));
  }

  async prune(filter?: { kind?: LockKind }, _call?: StoreCall): Promise<number> {
    this.#assertOpen();
    const now = this.#clock.now();
    let removed = 0;
    for (const [id, resource] of this.#resources) {
      if (filter?.kind && resource.key.kind !== filter.kind) continue;
      if (this.#live(resource, now).length > 0) continue;
      if (resource.fence > this.#floor) this.#floor = resource.fence;
      this.#resources.delete(id);
      removed++;
    }
    return removed;
  }

  wait(key: ResourceKey, owner: string, call: StoreCall): Promise<HandOff | void> {
    const entry = this.#resources.get(storeKey(key))?.entries.get(owner);
    if (!entry || this.#closed) return call.signal.aborted ? Promise.reject(call.signal.reason) : Promise.resolve();
    return entry.latch.wait(this.#clock, timeLeft(call), call.signal);
  }

  async close(_call?: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const resource of this.#resources.values()) for (const entry of resource.entries.values()) entry.latch.fire();
  }

  #assertOpen(): void {
    if (this.#closed) throw new ClosedError('This memory store');
  }

  #resource(key: ResourceKey): MemoryResource {
    this.#assertOpen();
    const id = storeKey(key);
    let resource = this.#resources.get(id);
    if (!resource) {
      resource = { key: { kind: key.kind, name: key.name }, fence: this.#floor, nextSeq: 0, entries: new Map() };
      this.#resources.set(id, resource);
    }
    return resource;
  }

  #newEntry(resource: MemoryResource, request: GrantRequest): MemoryEntry {
    return {
      owner: request.owner, seq: resource.nextSeq++, mode: request.mode, limit: request.limit, held: false,
      ttlMs: request.queueTtlMs, expiresAt: 0, token: null, latch: new WakeLatch(), value: request.value,
    };
  }

  /** Drops expired entries (waking whoever may now hold) and returns the live ones in arrival order. */
  #live(resource: MemoryResource, now: number): MemoryEntry[] {
    let expired = false;
    for (const [owner, entry] of resource.entries) {
      if (entry.expiresAt <= now) {
        resource.entries.delete(owner);
        expired = true;
      }
    }
    if (expired) this.#wakeGrantable(resource);
    return [...resource.entries.values()].sort((a, b) => a.seq - b.seq);
  }

  #wakeGrantable(resource: MemoryResource): void {
    const live = [...resource.entries.values()].sort((a, b) => a.seq - b.seq);
    for (const entry of grantable(live) as MemoryEntry[]) entry.latch.fire();
  }

  #state(resource: MemoryResource, now: number): ResourceState {
    const live = this.#live(resource, now);
    return {
      key: resource.key,
      fence: resource.fence,
      holders: live.filter((e) => e.held).map((e) => ({ owner: e.owner, mode: e.mode, token: e.token!, ttlMs: e.ttlMs, expiresInMs: e.expiresAt - now, ...(e.value === undefined ? {} : { value: e.value }) })),
      waiters: live.filter((e) => !e.held).map((e, position) => ({ owner: e.owner, mode: e.mode, position, expiresInMs: e.expiresAt - now })),
    };
  }
}

function storeKey(key: ResourceKey): string {
  return `${key.kind}:${key.name}`;
}

/** createMemoryStore makes an in-process store: for one process's own coordination, and for tests of code that takes locks. */
export function createMemoryStore(options?: MemoryStoreOptions): MemoryStore {
  return new MemoryStore(options);
}
