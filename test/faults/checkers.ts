/**
 * Checkers over the histories of one fault run. Each returns counts and examples; none
 * trusts a worker's own view of whether it held the lock. Times are the host's monotonic
 * clock, shared by every process.
 */

export interface WorkerEvent {
  at: number;
  worker: string;
  e: string;
  /** The lease's fencing token, decimal; null on a store without fencing (a quorum). */
  token?: string | null;
  owner?: string;
  held?: boolean;
  deadline?: number;
  closeMs?: number;
  [key: string]: unknown;
}

export interface RegisterWrite {
  at: number;
  register: 'fenced' | 'unfenced';
  worker: string;
  token: string;
  value: number;
  previous: number;
  accepted: boolean;
}

export interface NemesisEvent {
  at: number;
  /** `resume`, `heal`, `restarted`, `up`, `serving` and `unstall` end a fault and are not counted as faults. `down` is logged once the server is dead, `up` before it is started, `serving` once it answers; `stall` once the server is SIGSTOPped, `unstall` once it is SIGCONTed. */
  fault: 'pause' | 'resume' | 'kill' | 'block-short' | 'block-long' | 'latency' | 'blackhole' | 'half-open' | 'reset' | 'heal' | 'restart' | 'restarted' | 'down' | 'up' | 'serving' | 'stall' | 'unstall';
  /** The worker, or `server` (`serverN` of a quorum) for a restart, a server down or up, a stall. */
  worker: string;
  latencyMs?: number;
  jitterMs?: number;
}

const NOT_FAULTS = new Set(['resume', 'heal', 'restarted', 'up', 'serving', 'unstall']);

export interface Report {
  grants: number;
  faults: number;
  lostUpdates: number;
  staleAccepted: number;
  tokenRegressions: number;
  overlaps: number;
  /** Overlaps whose later grant came after a server restart that happened while the earlier lease was valid (a store without persistence forgets its leases). Counted in `overlaps` too. */
  restartOverlaps: number;
  /** Longest overlap, ms. */
  worstOverlapMs: number;
  unfencedAnomalies: number;
  worstReacquireMs: number | null;
  livenessViolations: number;
  /** Longest wait from a server being back after a restart to the next grant, ms (null without restarts or grants after them). */
  worstRestartReacquireMs: number | null;
  /** Restarts after which the lock was not granted within TTL + ε of the server being back. */
  restartLivenessViolations: number;
  examples: string[];
}

/** A write of value v is a lost update unless v is one more than the value it replaced. */
function anomalies(writes: readonly RegisterWrite[]): RegisterWrite[] {
  return writes.filter((w) => w.accepted && w.value !== w.previous + 1);
}

/**
 * check runs every checker. `ttlMs` is the TTL after which the store itself frees the lock of
 * a holder that died (the lease TTL, or on etcd the session's): liveness is checked against
 * `ttlMs + epsilonMs`.
 */
export function check(events: readonly WorkerEvent[], writes: readonly RegisterWrite[], nemesis: readonly NemesisEvent[], ttlMs: number, epsilonMs: number): Report {
  const examples: string[] = [];
  const note = (text: string): void => void (examples.length < 10 && examples.push(text));
  const fenced = writes.filter((w) => w.register === 'fenced');

  // Lost updates and stale tokens on the fenced register.
  const lost = anomalies(fenced);
  for (const w of lost) note(`lost update: ${w.worker} wrote ${w.value} over ${w.previous} with token ${w.token}`);
  let highest = 0n;
  let staleAccepted = 0;
  for (const w of fenced) {
    const token = BigInt(w.token);
    if (w.accepted && token < highest) {
      staleAccepted++;
      note(`stale token accepted: ${w.token} after ${highest}`);
    }
    if (w.accepted && token > highest) highest = token;
  }

  // Token regressions: tokens are unique, and a higher token is never granted before a lower one was even asked for.
  // A store without fencing grants null tokens: nothing to compare.
  const grants = events.filter((e) => e.e === 'grant');
  const tokened = grants.filter((e) => e.token !== null && e.token !== undefined);
  const invokes = new Map<string, number>();
  const lastInvoke = new Map<string, number>();
  for (const e of events) {
    if (e.e === 'invoke') lastInvoke.set(e.worker, e.at);
    if (e.e === 'grant' && e.token != null) invokes.set(e.token, lastInvoke.get(e.worker)!);
  }
  const byToken = [...tokened].sort((a, b) => (BigInt(a.token!) < BigInt(b.token!) ? -1 : 1));
  let tokenRegressions = 0;
  for (let i = 1; i < byToken.length; i++) {
    const [a, b] = [byToken[i - 1]!, byToken[i]!];
    if (a.token === b.token || b.at < invokes.get(a.token!)!) {
      tokenRegressions++;
      note(`token regression: ${b.token} granted at ${b.at.toFixed(1)}, before ${a.token} was asked for`);
    }
  }

  // Overlapping validity windows, each as its holder saw it: from the grant to the first of
  // the release call, the lease's local deadline (where reading `lease.signal` reports the
  // loss), the moment the holder was told of a loss (a renewal refused), and its death.
  // A window that ends before it starts (a grant whose reply came after its deadline) held nothing.
  const windows: { worker: string; token: string; start: number; end: number }[] = [];
  const label = (g: WorkerEvent): string => g.token ?? `owner ${g.owner}`;
  const open = new Map<string, WorkerEvent>();
  const killedAt = new Map(nemesis.filter((n) => n.fault === 'kill').map((n) => [n.worker, n.at]));
  const lostAt = new Map<string, number>();
  // Keyed by the grant's owner id, unique per grant (tokens are null on a store without fencing).
  for (const e of events) if (e.e === 'lost' && !lostAt.has(e.owner!)) lostAt.set(e.owner!, e.at);
  const toldAt = (g: WorkerEvent): number => lostAt.get(g.owner!) ?? Infinity;
  for (const e of events) {
    if (e.e === 'grant') open.set(e.worker, e);
    if (e.e === 'release-call' && open.has(e.worker)) {
      const g = open.get(e.worker)!;
      const end = Math.min(e.held ? e.at : Math.min(e.at, e.deadline!), toldAt(g));
      if (end > g.at) windows.push({ worker: e.worker, token: label(g), start: g.at, end });
      open.delete(e.worker);
    }
  }
  for (const [worker, g] of open) {
    const killed = killedAt.get(worker);
    if (killed === undefined) continue;
    const end = Math.min(killed, toldAt(g));
    if (end > g.at) windows.push({ worker, token: label(g), start: g.at, end });
  }
  windows.sort((a, b) => a.start - b.start);
  const restarts = nemesis.filter((n) => n.fault === 'restart').map((n) => n.at);
  let overlaps = 0;
  let restartOverlaps = 0;
  let worstOverlapMs = 0;
  let reach = -Infinity;
  let reachWindow: (typeof windows)[number] | null = null;
  for (const w of windows) {
    if (w.start < reach && reachWindow) {
      overlaps++;
      const ms = Math.min(reach, w.end) - w.start;
      worstOverlapMs = Math.max(worstOverlapMs, ms);
      const restart = restarts.some((at) => at >= reachWindow!.start && at <= w.start);
      if (restart) restartOverlaps++;
      note(`overlap${restart ? ' after a server restart' : ''}: token ${w.token} (${w.worker}) valid from ${w.start.toFixed(1)} while ${reachWindow.token} (${reachWindow.worker}) was valid until ${reach.toFixed(1)} (${ms.toFixed(1)} ms)`);
    }
    if (w.end > reach) {
      reach = w.end;
      reachWindow = w;
    }
  }

  // Liveness: after a holder is killed, someone holds the lock again within TTL + epsilon.
  let worst: number | null = null;
  let livenessViolations = 0;
  for (const kill of nemesis.filter((n) => n.fault === 'kill')) {
    const wasHolding = windows.some((w) => w.worker === kill.worker && w.start <= kill.at && w.end >= kill.at - 1);
    if (!wasHolding) continue;
    const next = grants.find((g) => g.at > kill.at && g.worker !== kill.worker);
    if (!next) continue;
    const delay = next.at - kill.at;
    worst = Math.max(worst ?? 0, delay);
    if (delay > ttlMs + epsilonMs) {
      livenessViolations++;
      note(`liveness: re-acquired ${delay.toFixed(0)} ms after ${kill.worker} was killed, over TTL + ${epsilonMs} ms`);
    }
  }

  // Liveness after a server restart: once the server serves again (`restarted`), someone holds
  // the lock within TTL + epsilon: a holder's lease that survived the restart runs out or is
  // released by then, and a holder that died meanwhile is expired by the store.
  let worstRestart: number | null = null;
  let restartLivenessViolations = 0;
  for (const back of nemesis.filter((n) => n.fault === 'restarted')) {
    const next = grants.find((g) => g.at > back.at);
    if (!next) continue;
    const delay = next.at - back.at;
    worstRestart = Math.max(worstRestart ?? 0, delay);
    if (delay > ttlMs + epsilonMs) {
      restartLivenessViolations++;
      note(`liveness: re-acquired ${delay.toFixed(0)} ms after the ${back.worker} was back from a restart, over TTL + ${epsilonMs} ms`);
    }
  }

  return {
    grants: grants.length,
    faults: nemesis.filter((n) => !NOT_FAULTS.has(n.fault)).length,
    lostUpdates: lost.length,
    staleAccepted,
    tokenRegressions,
    overlaps,
    restartOverlaps,
    worstOverlapMs,
    unfencedAnomalies: anomalies(writes.filter((w) => w.register === 'unfenced')).length,
    worstReacquireMs: worst,
    livenessViolations,
    worstRestartReacquireMs: worstRestart,
    restartLivenessViolations,
    examples,
  };
}
