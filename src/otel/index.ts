/**
 * baton-lock/otel: OpenTelemetry metrics of a baton instance. OpenTelemetry is typed here by
 * what baton calls on it (`@opentelemetry/api` 1.x), so baton has no dependency on it: pass
 * your `MeterProvider`, or baton uses the one registered globally with `@opentelemetry/api`
 * (`metrics.setGlobalMeterProvider`), and records nothing when there is none. baton never
 * registers an SDK or a provider.
 *
 * Instruments (see docs/observability.md): `baton.lock.acquire.duration`,
 * `baton.lock.hold.duration`, `baton.lock.held`, `baton.lock.waiters`,
 * `baton.lock.contentions`, `baton.lease.lost`, `baton.lease.renewal.failures`, and with
 * `storeOperations`, `baton.store.operation.duration`.
 */
import type { EventEmitter } from 'node:events';
import { InvalidArgumentError } from '../errors.js';
import type { BatonEvents } from '../core/options.js';
import { checkOptions } from '../core/validate.js';
import type { LockStore } from '../store.js';
import { Tracker, type GaugeEntry, type LockLabels, type MetricsSink, type TrackOptions } from '../metrics/track.js';

/** Attributes as OpenTelemetry takes them. */
export type Attributes = Record<string, string | number | boolean>;

/** The parts of `@opentelemetry/api`'s `Meter` that baton uses. */
export interface Meter {
  createHistogram(name: string, options?: InstrumentOptions): { record(value: number, attributes?: Attributes): void };
  createCounter(name: string, options?: InstrumentOptions): { add(value: number, attributes?: Attributes): void };
  createObservableUpDownCounter(name: string, options?: InstrumentOptions): Observable;
}

/** An asynchronous instrument: its callbacks report values when the SDK collects. */
export interface Observable {
  addCallback(callback: (result: { observe(value: number, attributes?: Attributes): void }) => void): void;
  removeCallback(callback: (result: { observe(value: number, attributes?: Attributes): void }) => void): void;
}

export interface InstrumentOptions {
  description?: string;
  unit?: string;
  advice?: { explicitBucketBoundaries?: number[] };
}

/** The part of `@opentelemetry/api`'s `MeterProvider` that baton uses. */
export interface MeterProvider {
  getMeter(name: string, version?: string): Meter;
}

/** OtelOptions for `instrument`. */
export interface OtelOptions extends TrackOptions {
  /** Where the instruments are made. Default: the provider registered globally with `@opentelemetry/api`. */
  readonly meterProvider?: MeterProvider;
}

/** Instrumentation: stops recording when stopped (or disposed). */
export interface Instrumentation extends Disposable {
  stop(): void;
}

/** Bucket boundaries advised for each histogram, in seconds. */
export const BUCKETS = Object.freeze({
  /** From an uncontended local grant (sub-millisecond) to a minute's wait. */
  acquire: Object.freeze([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]),
  /** From a short critical section to an hour-long job. */
  hold: Object.freeze([0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]),
  /** One store round trip: from an in-process call to a store timeout. */
  operation: Object.freeze([0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5]),
});

const OPTIONS = ['meterProvider', 'lockName', 'storeOperations'] as const;

/** The meter's instrumentation scope. */
export const METER_NAME = 'baton-lock';

/**
 * instrument records the metrics of `baton` until the returned instrumentation is stopped.
 * At most three recordings per acquire/release cycle (acquire duration, hold duration, and a
 * contention when the lock was busy); the held and waiting counts are read when the SDK
 * collects. With `storeOperations`, each store call adds one.
 */
export function instrument(baton: EventEmitter<BatonEvents> & { readonly store: Pick<LockStore, 'name'> }, options?: OtelOptions): Instrumentation {
  const o = checkOptions<OtelOptions>(options, 'options', OPTIONS);
  if (o.lockName !== undefined && typeof o.lockName !== 'function') {
    throw new InvalidArgumentError('lockName', `Expected \`lockName\` to be a function, got ${typeof o.lockName}`);
  }
  const provider = o.meterProvider ?? globalMeterProvider();
  if (provider !== undefined && typeof provider?.getMeter !== 'function') {
    throw new InvalidArgumentError('meterProvider', 'Expected `meterProvider` to be an OpenTelemetry MeterProvider (with getMeter)');
  }
  if (!provider) return { stop() {}, [Symbol.dispose]() {} };
  const meter = provider.getMeter(METER_NAME);
  const acquire = meter.createHistogram('baton.lock.acquire.duration', {
    unit: 's',
    description: 'Time from asking for a lock to getting it or giving up, by outcome.',
    advice: { explicitBucketBoundaries: [...BUCKETS.acquire] },
  });
  const hold = meter.createHistogram('baton.lock.hold.duration', {
    unit: 's',
    description: 'Time a lease was held, until released or lost.',
    advice: { explicitBucketBoundaries: [...BUCKETS.hold] },
  });
  const contentions = meter.createCounter('baton.lock.contentions', { unit: '{contention}', description: 'Acquires that found the lock busy.' });
  const lost = meter.createCounter('baton.lease.lost', { unit: '{lease}', description: 'Leases lost before release, by reason (expired, revoked).' });
  const renewalFailures = meter.createCounter('baton.lease.renewal.failures', { unit: '{failure}', description: 'Automatic renewals that failed (retried until the lease deadline).' });
  const held = meter.createObservableUpDownCounter('baton.lock.held', { unit: '{lease}', description: 'Leases held now.' });
  const waiters = meter.createObservableUpDownCounter('baton.lock.waiters', { unit: '{waiter}', description: 'Acquires waiting for a busy lock now.' });
  const operation = o.storeOperations
    ? meter.createHistogram('baton.store.operation.duration', {
        unit: 's',
        description: 'Time of one store call, by verb (grant, extend, release, inspect, ...).',
        advice: { explicitBucketBoundaries: [...BUCKETS.operation] },
      })
    : null;
  // Attribute objects are made once per labels and outcome, not per recording.
  const attrs = attributeCache();
  const sink: MetricsSink = {
    acquire: (seconds, labels, outcome, errorType) =>
      acquire.record(seconds, attrs(labels, errorType === undefined ? outcome : `${outcome}\u0000${errorType}`, (base) =>
        errorType === undefined ? { ...base, 'baton.acquire.outcome': outcome } : { ...base, 'baton.acquire.outcome': outcome, 'error.type': errorType })),
    hold: (seconds, labels, outcome, reason) =>
      hold.record(seconds, attrs(labels, `hold\u0000${outcome}\u0000${reason ?? ''}`, (base) =>
        reason === undefined ? { ...base, 'baton.hold.outcome': outcome } : { ...base, 'baton.hold.outcome': outcome, 'baton.lost.reason': reason })),
    contention: (labels) => contentions.add(1, attrs(labels, '', (base) => base)),
    lost: (labels, reason) => lost.add(1, attrs(labels, `lost\u0000${reason}`, (base) => ({ ...base, 'baton.lost.reason': reason }))),
    renewalFailure: (labels) => renewalFailures.add(1, attrs(labels, '', (base) => base)),
    ...(operation
      ? {
          operation: (seconds: number, store: string, verb: string, errorType: string | undefined) =>
            operation.record(seconds, errorType === undefined ? { 'baton.store': store, 'baton.store.operation': verb } : { 'baton.store': store, 'baton.store.operation': verb, 'error.type': errorType }),
        }
      : {}),
  };
  const tracker = new Tracker(baton, sink, o);
  type Result = Parameters<Parameters<Observable['addCallback']>[0]>[0];
  const gauge = (entries: () => Iterable<GaugeEntry>) => (result: Result): void => {
    for (const entry of entries()) result.observe(entry.count, attrs(entry.labels, '', (base) => base));
  };
  const observeHeld = gauge(() => tracker.held());
  const observeWaiting = gauge(() => tracker.waiting());
  held.addCallback(observeHeld);
  waiters.addCallback(observeWaiting);
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    tracker.stop();
    held.removeCallback(observeHeld);
    waiters.removeCallback(observeWaiting);
  };
  return { stop, [Symbol.dispose]: stop };
}

/** attributeCache: the attributes of a lock's labels with more of them (an outcome) under `key`, made on first use. */
function attributeCache(): (labels: LockLabels, key: string, make: (base: Attributes) => Attributes) => Attributes {
  const cache = new WeakMap<LockLabels, Map<string, Attributes>>();
  return (labels, key, make) => {
    let byKey = cache.get(labels);
    if (!byKey) cache.set(labels, (byKey = new Map()));
    let attributes = byKey.get(key);
    if (!attributes) {
      const base: Attributes = labels.name === undefined
        ? { 'baton.lock.kind': labels.kind, 'baton.store': labels.store }
        : { 'baton.lock.kind': labels.kind, 'baton.store': labels.store, 'baton.lock.name': labels.name };
      attributes = Object.freeze(make(base));
      byKey.set(key, attributes);
    }
    return attributes;
  };
}

/**
 * The meter provider registered with `@opentelemetry/api` 1.x (`metrics.setGlobalMeterProvider`),
 * read where that API keeps it (a global symbol shared by every copy of the API), so that baton
 * need not import it. Undefined when none is registered.
 */
function globalMeterProvider(): MeterProvider | undefined {
  const api = (globalThis as Record<symbol, { metrics?: MeterProvider } | undefined>)[Symbol.for('opentelemetry.js.api.1')];
  return api?.metrics;
}
