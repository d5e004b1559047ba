/**
 * baton-lock/prometheus: the metrics of `baton-lock/otel`, with the same meaning, for
 * prom-client users. Pass the prom-client module you use (`import client from
 * 'prom-client'`): baton types what it calls on it and does not depend on it. Names follow
 * Prometheus's conventions (snake case, `_seconds`, counters ending in `_total`); labels
 * `kind`, `store`, and `outcome`, `reason`, `error_type`, `operation` where the OpenTelemetry
 * instruments have the matching attributes (see docs/observability.md).
 */
import type { EventEmitter } from 'node:events';
import { InvalidArgumentError } from '../errors.js';
import type { BatonEvents } from '../core/options.js';
import { checkOptions } from '../core/validate.js';
import type { LockStore } from '../store.js';
import { Tracker, type GaugeEntry, type LockLabels, type MetricsSink, type TrackOptions } from '../metrics/track.js';
import { BUCKETS } from '../otel/index.js';

type Labels = Record<string, string>;

interface MetricConfig {
  name: string;
  help: string;
  labelNames: readonly string[];
  /** The registry, typed `never` so that prom-client's own types accept this shape. */
  registers: never[];
  buckets?: number[];
  collect?: () => void;
}

/** The parts of the prom-client module that baton uses. */
export interface PromClient {
  Histogram: new (config: MetricConfig) => { observe(labels: Labels, value: number): void };
  Counter: new (config: MetricConfig) => { inc(labels: Labels, value?: number): void };
  Gauge: new (config: MetricConfig) => { set(labels: Labels, value: number): void; reset(): void };
  register: object;
}

/** PrometheusOptions for `instrumentPrometheus`. */
export interface PrometheusOptions extends TrackOptions {
  /** The prom-client module. */
  readonly client: PromClient;
  /** The registry the metrics go in. Default: `client.register`. */
  readonly registry?: object;
}

export interface Instrumentation extends Disposable {
  stop(): void;
}

const OPTIONS = ['client', 'registry', 'lockName', 'storeOperations'] as const;

interface Metrics {
  readonly sink: (labelsOf: (labels: LockLabels) => Labels) => MetricsSink;
  readonly trackers: Set<{ tracker: Tracker; labelsOf: (labels: LockLabels) => Labels }>;
  readonly withNames: boolean;
}

/** One set of metrics per registry: every baton instrumented into it shares them (prom-client refuses a name twice). */
const byRegistry = new WeakMap<object, Metrics>();

/**
 * instrumentPrometheus records the metrics of `baton` into a prom-client registry until the
 * returned instrumentation is stopped. Several instances may share a registry (their counts
 * add up); they must then agree on whether lock names are labelled (`lockName`).
 */
export function instrumentPrometheus(baton: EventEmitter<BatonEvents> & { readonly store: Pick<LockStore, 'name'> }, options: PrometheusOptions): Instrumentation {
  const o = checkOptions<PrometheusOptions>(options, 'options', OPTIONS);
  const client = o.client;
  if (!client || typeof client.Histogram !== 'function' || typeof client.Counter !== 'function' || typeof client.Gauge !== 'function') {
    throw new InvalidArgumentError('client', 'Expected `client` to be the prom-client module (with Histogram, Counter and Gauge)');
  }
  if (o.lockName !== undefined && typeof o.lockName !== 'function') {
    throw new InvalidArgumentError('lockName', `Expected \`lockName\` to be a function, got ${typeof o.lockName}`);
  }
  const registry = o.registry ?? client.register;
  const withNames = o.lockName !== undefined;
  let metrics = byRegistry.get(registry);
  if (!metrics) {
    metrics = create(client, registry, withNames);
    byRegistry.set(registry, metrics);
  } else if (metrics.withNames !== withNames) {
    throw new InvalidArgumentError('lockName', 'Every baton instance instrumented into one registry must agree on `lockName` (given or not): their metrics share their labels');
  }
  // Label objects made once per lock labels and outcome.
  const cache = new WeakMap<LockLabels, Labels>();
  const labelsOf = (labels: LockLabels): Labels => {
    let made = cache.get(labels);
    if (!made) {
      made = labels.name === undefined ? { kind: labels.kind, store: labels.store } : { kind: labels.kind, store: labels.store, name: labels.name };
      cache.set(labels, made);
    }
    return made;
  };
  const entry = { tracker: new Tracker(baton, metrics.sink(labelsOf), o), labelsOf };
  metrics.trackers.add(entry);
  const all = metrics.trackers;
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    entry.tracker.stop();
    all.delete(entry);
  };
  return { stop, [Symbol.dispose]: stop };
}

function create(client: PromClient, registry: object, withNames: boolean): Metrics {
  const lock = withNames ? ['kind', 'store', 'name'] : ['kind', 'store'];
  const registers = [registry] as never[];
  const acquire = new client.Histogram({
    name: 'baton_lock_acquire_duration_seconds',
    help: 'Time from asking for a lock to getting it or giving up, by outcome (acquired, busy, timeout, aborted, error).',
    labelNames: [...lock, 'outcome', 'error_type'],
    buckets: [...BUCKETS.acquire],
    registers,
  });
  const hold = new client.Histogram({
    name: 'baton_lock_hold_duration_seconds',
    help: 'Time a lease was held, until released or lost.',
    labelNames: [...lock, 'outcome', 'reason'],
    buckets: [...BUCKETS.hold],
    registers,
  });
  const contentions = new client.Counter({ name: 'baton_lock_contentions_total', help: 'Acquires that found the lock busy.', labelNames: lock, registers });
  const lost = new client.Counter({ name: 'baton_lease_lost_total', help: 'Leases lost before release, by reason (expired, revoked).', labelNames: [...lock, 'reason'], registers });
  const renewalFailures = new client.Counter({ name: 'baton_lease_renewal_failures_total', help: 'Automatic renewals that failed (retried until the lease deadline).', labelNames: lock, registers });
  const operation = new client.Histogram({
    name: 'baton_store_operation_duration_seconds',
    help: 'Time of one store call, by operation (grant, extend, release, inspect, ...); with storeOperations only.',
    labelNames: ['store', 'operation', 'error_type'],
    buckets: [...BUCKETS.operation],
    registers,
  });
  const trackers: Metrics['trackers'] = new Set();
  const gauge = (name: string, help: string, entries: (tracker: Tracker) => Iterable<GaugeEntry>): void => {
    new client.Gauge({
      name,
      help,
      labelNames: lock,
      registers,
      collect(this: { set(labels: Labels, value: number): void; reset(): void }) {
        this.reset();
        const sums = new Map<string, { labels: Labels; count: number }>();
        for (const { tracker, labelsOf } of trackers) {
          for (const e of entries(tracker)) {
            const labels = labelsOf(e.labels);
            const key = `${labels.kind}\u0000${labels.store}\u0000${labels.name ?? ''}`;
            const sum = sums.get(key);
            if (sum) sum.count += e.count;
            else sums.set(key, { labels, count: e.count });
          }
        }
        for (const { labels, count } of sums.values()) this.set(labels, count);
      },
    });
  };
  gauge('baton_lock_held', 'Leases held now.', (t) => t.held());
  gauge('baton_lock_waiters', 'Acquires waiting for a busy lock now.', (t) => t.waiting());
  const withOutcome = new WeakMap<Labels, Map<string, Labels>>();
  const more = (base: Labels, key: string, make: () => Labels): Labels => {
    let byKey = withOutcome.get(base);
    if (!byKey) withOutcome.set(base, (byKey = new Map()));
    let labels = byKey.get(key);
    if (!labels) byKey.set(key, (labels = make()));
    return labels;
  };
  return {
    withNames,
    trackers,
    sink: (labelsOf) => ({
      acquire: (seconds, l, outcome, errorType) => {
        const base = labelsOf(l);
        acquire.observe(more(base, `${outcome}\u0000${errorType ?? ''}`, () => (errorType === undefined ? { ...base, outcome } : { ...base, outcome, error_type: errorType })), seconds);
      },
      hold: (seconds, l, outcome, reason) => {
        const base = labelsOf(l);
        hold.observe(more(base, `hold\u0000${outcome}\u0000${reason ?? ''}`, () => (reason === undefined ? { ...base, outcome } : { ...base, outcome, reason })), seconds);
      },
      contention: (l) => contentions.inc(labelsOf(l)),
      lost: (l, reason) => {
        const base = labelsOf(l);
        lost.inc(more(base, `lost\u0000${reason}`, () => ({ ...base, reason })));
      },
      renewalFailure: (l) => renewalFailures.inc(labelsOf(l)),
      operation: (seconds, store, verb, errorType) =>
        operation.observe(errorType === undefined ? { store, operation: verb } : { store, operation: verb, error_type: errorType }, seconds),
    }),
  };
}
