/**
 * Checkers over the histories of one fault run. Each returns counts and examples; none
 * trusts a worker's own view of whether it held the lock. Times are the host's monotonic
 * clock, shared by every process.
 */

export interface WorkerEvent {
  at: number;
  worker: string;
  e: string;
  token?: string;
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
  fault: 'pause' | 'resume' | 'kill' | 'block-short' | 'block-long';
  worker: string;
}

export interface Report {
  grants: number;
  faults: number;
  lostUpdates: number;
  staleAccepted: number;
  tokenRegressions: number;
  overlaps: number;
  unfencedAnomalies: number;
  worstReacquireMs: number | null;
  livenessViolations: number;
  examples: string[];
}

/** A write of value v is a lost update unless v is one more than the value it replaced. */
function anomalies(writes: readonly RegisterWrite[]): RegisterWrite[] {
  return writes.filter((w) => w.accepted && w.value !== w.previous + 1);
}

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
  const grants = events.filter((e) => e.e === 'grant');
  const invokes = new Map<string, number>();
  const lastInvoke = new Map<string, number>();
  for (const e of events) {
    if (e.e === 'invoke') lastInvoke.set(e.worker, e.at);
    if (e.e === 'grant') invokes.set(e.token!, lastInvoke.get(e.worker)!);
  }
  const byToken = [...grants].sort((a, b) => (BigInt(a.token!) < BigInt(b.token!) ? -1 : 1));
  let tokenRegressions = 0;
  for (let i = 1; i < byToken.length; i++) {
    const [a, b] = [byToken[i - 1]!, byToken[i]!];
    if (a.token === b.token || b.at < invokes.get(a.token!)!) {
      tokenRegressions++;
      note(`token regression: ${b.token} granted at ${b.at.toFixed(1)}, before ${a.token} was asked for`);
    }
  }

  // Overlapping validity: from grant to the release call while held, or to the lease's deadline once lost, or to the holder's death.
  const windows: { worker: string; token: string; start: number; end: number }[] = [];
  const open = new Map<string, WorkerEvent>();
  const killedAt = new Map(nemesis.filter((n) => n.fault === 'kill').map((n) => [n.worker, n.at]));
  for (const e of events) {
    if (e.e === 'grant') open.set(e.worker, e);
    if (e.e === 'release-call' && open.has(e.worker)) {
      const g = open.get(e.worker)!;
      windows.push({ worker: e.worker, token: g.token!, start: g.at, end: e.held ? e.at : Math.min(e.at, e.deadline!) });
      open.delete(e.worker);
    }
  }
  for (const [worker, g] of open) {
    const end = killedAt.get(worker);
    if (end !== undefined) windows.push({ worker, token: g.token!, start: g.at, end });
  }
  windows.sort((a, b) => a.start - b.start);
  let overlaps = 0;
  let reach = -Infinity;
  let reachToken = '';
  for (const w of windows) {
    if (w.start < reach) {
      overlaps++;
      note(`overlap: token ${w.token} valid from ${w.start.toFixed(1)} while ${reachToken} was valid until ${reach.toFixed(1)}`);
    }
    if (w.end > reach) {
      reach = w.end;
      reachToken = w.token;
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

  return {
    grants: grants.length,
    faults: nemesis.filter((n) => n.fault !== 'resume').length,
    lostUpdates: lost.length,
    staleAccepted,
    tokenRegressions,
    overlaps,
    unfencedAnomalies: anomalies(writes.filter((w) => w.register === 'unfenced')).length,
    worstReacquireMs: worst,
    livenessViolations,
    examples,
  };
}
