/**
 * The meaning of baton's metrics, written once for every metrics library: which events count
 * as what, with which labels. An adapter (OpenTelemetry, prom-client) only maps a
 * `MetricsSink` onto its instruments and reads `held` and `waiting` when it collects.
 */
import type { EventEmitter } from 'node:events';
import { BatonError } from '../errors.js';
import type { BatonEvents } from '../core/options.js';
import type { LockKind, LockStore } from '../store.js';

/** AcquireOutcome: how an acquire ended. `busy` is a tryAcquire that found the lock taken. */
export type AcquireOutcome = 'acquired' | 'busy' | 'timeout' | 'aborted' | 'error';

/** LockLabels: what every lock metric says of its lock; `name` only where the user's mapping gave one. */
export interface LockLabels {
  readonly kind: LockKind;
  readonly store: string;
  readonly name?: string;
}

/** MetricsSink: one method per recording; each call is one recording in the metrics library. */
export interface MetricsSink {
  acquire(seconds: number, labels: LockLabels, outcome: AcquireOutcome, errorType: string | undefined): void;
  hold(seconds: number, labels: LockLabels, outcome: 'released' | 'lost', reason: 'expired' | 'revoked' | undefined): void;
  contention(labels: LockLabels): void;
  lost(labels: LockLabels, reason: 'expired' | 'revoked'): void;
  renewalFailure(labels: LockLabels): void;
  /** Only with `storeOperations`. */
  operation?(seconds: number, store: string, verb: string, errorType: string | undefined): void;
}

/** TrackOptions: what is labelled and what is timed. */
export interface TrackOptions {
  /**
   * lockName maps a lock's name to the value of its name label, or undefined to leave it
   * out. Default: no name label, since lock names are unbounded (one per job, per user...)
   * and every distinct value is a time series; map names to a bounded set (a prefix) if
   * per-lock metrics are wanted.
   */
  readonly lockName?: (name: string, kind: LockKind) => string | undefined;
  /**
   * storeOperations times every store call per verb. Off by default: it adds two recordings
   * to every acquire/release cycle (grant, release), over the two (three when contended) of
   * the lock metrics.
   */
  readonly storeOperations?: boolean;
}

/** Gauge: labels with a current count. */
export interface GaugeEntry {
  readonly labels: LockLabels;
  count: number;
}

/**
 * Tracker follows one baton instance's events into a sink, and counts the leases it holds
 * and the acquires waiting, by label, for gauges read at collection time (no recording per
 * acquire or release for those). A lease or wait that began before tracking started is not
 * counted. `stop()` removes its listeners.
 */
export class Tracker {
  readonly #baton: EventEmitter<BatonEvents>;
  readonly #store: string;
  readonly #lockName: TrackOptions['lockName'];
  /** Held leases and waiting acquires by owner, each pointing at its gauge entry. */
  readonly #holding = new Map<string, GaugeEntry>();
  readonly #waitingBy = new Map<string, GaugeEntry>();
  readonly #held = new Map<LockLabels, GaugeEntry>();
  readonly #waiting = new Map<LockLabels, GaugeEntry>();
  /** One labels object per kind (and mapped name), so that adapters can cache what they derive from it. */
  readonly #labelsBy = new Map<string, LockLabels>();
  readonly #listeners: [keyof BatonEvents, (...args: never[]) => void][] = [];

  constructor(baton: EventEmitter<BatonEvents> & { readonly store: Pick<LockStore, 'name'> }, sink: MetricsSink, options: TrackOptions = {}) {
    this.#baton = baton;
    this.#store = baton.store.name;
    this.#lockName = options.lockName;
    this.#on('acquired', (e) => {
      const labels = this.#labels(e.name, e.kind);
      this.#unwait(e.owner);
      sink.acquire(e.waitMs / 1000, labels, 'acquired', undefined);
      this.#holding.set(e.owner, this.#add(this.#held, labels));
    });
    this.#on('busy', (e) => {
      this.#unwait(e.owner);
      sink.acquire(e.waitMs / 1000, this.#labels(e.name, e.kind), 'busy', undefined);
    });
    this.#on('failed', (e) => {
      this.#unwait(e.owner);
      const outcome: AcquireOutcome = codeOf(e.error) === 'LOCK_TIMEOUT' ? 'timeout' : e.aborted ? 'aborted' : 'error';
      sink.acquire(e.waitMs / 1000, this.#labels(e.name, e.kind), outcome, outcome === 'error' ? errorType(e.error) : undefined);
    });
    this.#on('contended', (e) => {
      const labels = this.#labels(e.name, e.kind);
      sink.contention(labels);
      this.#waitingBy.set(e.owner, this.#add(this.#waiting, labels));
    });
    this.#on('released', (e) => {
      this.#unhold(e.owner);
      sink.hold(e.holdMs / 1000, this.#labels(e.name, e.kind), 'released', undefined);
    });
    this.#on('lost', (e) => {
      this.#unhold(e.owner);
      const labels = this.#labels(e.name, e.kind);
      // A lease given back by close() ends like a release; only expired and revoked leases are lost.
      if (e.reason === 'closed') {
        sink.hold(e.holdMs / 1000, labels, 'released', undefined);
        return;
      }
      sink.hold(e.holdMs / 1000, labels, 'lost', e.reason);
      sink.lost(labels, e.reason);
    });
    this.#on('renewFailed', (e) => sink.renewalFailure(this.#labels(e.name, e.kind)));
    if (options.storeOperations && sink.operation) {
      const operation = sink.operation.bind(sink);
      this.#on('call', (e) => operation(e.durationMs / 1000, e.store, e.verb, e.error === undefined ? undefined : errorType(e.error)));
    }
  }

  /** held: leases held now, by label. */
  held(): Iterable<GaugeEntry> {
    return this.#held.values();
  }

  /** waiting: acquires waiting now, by label. */
  waiting(): Iterable<GaugeEntry> {
    return this.#waiting.values();
  }

  stop(): void {
    for (const [event, listener] of this.#listeners.splice(0)) this.#baton.off(event, listener as never);
  }

  #on<E extends keyof BatonEvents>(event: E, listener: (payload: BatonEvents[E][0]) => void): void {
    this.#baton.on(event, listener as never);
    this.#listeners.push([event, listener as never]);
  }

  /** The labels of a lock: one object per kind and mapped name, made once. */
  #labels(name: string, kind: LockKind): LockLabels {
    const mapped = this.#lockName?.(name, kind);
    const key = mapped === undefined ? kind : `${kind}\u0000${String(mapped)}`;
    let labels = this.#labelsBy.get(key);
    if (!labels) {
      labels = Object.freeze(mapped === undefined ? { kind, store: this.#store } : { kind, store: this.#store, name: String(mapped) });
      this.#labelsBy.set(key, labels);
    }
    return labels;
  }

  /** The gauge entry of `labels`, counted up by one. Entries stay at 0 once used, so that a gauge reports 0 rather than vanish. */
  #add(gauge: Map<LockLabels, GaugeEntry>, labels: LockLabels): GaugeEntry {
    let entry = gauge.get(labels);
    if (!entry) gauge.set(labels, (entry = { labels, count: 0 }));
    entry.count++;
    return entry;
  }

  #unhold(owner: string): void {
    const entry = this.#holding.get(owner);
    if (!entry) return;
    this.#holding.delete(owner);
    entry.count--;
  }

  #unwait(owner: string): void {
    const entry = this.#waitingBy.get(owner);
    if (!entry) return;
    this.#waitingBy.delete(owner);
    entry.count--;
  }
}

/** errorType: a bounded description of an error, for a label: baton's code, else the error's class name. */
export function errorType(error: unknown): string {
  const code = codeOf(error);
  if (code !== undefined) return code;
  if (error instanceof Error && /^[A-Za-z][\w.]{0,63}$/.test(error.name)) return error.name;
  return '_OTHER';
}

/** codeOf: an error's stable code (baton's, also from its other build, ESM or CommonJS; a system error's such as ECONNREFUSED). */
function codeOf(error: unknown): string | undefined {
  if (error instanceof BatonError) return error.code;
  const code = error instanceof Error ? (error as { code?: unknown }).code : undefined;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? code : undefined;
}
