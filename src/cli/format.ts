/**
 * Output of the admin commands: aligned text tables for people, JSON for scripts. JSON has
 * no bigint, so every token is written as a decimal string. A store that issues no fencing
 * token (a Redlock quorum) has none to show: `-` in tables, `null` in JSON.
 */
import type { HolderDescription, JobRecord, LockInfo } from '../index.js';

type AnyLockInfo = LockInfo<bigint | null>;
type AnyHolder = AnyLockInfo['holders'][number];

/** clip shortens text for a table cell, marking the cut. */
function clip(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ');
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * heldBy says who holds, for people: `web-1:4242 "nightly" node report.js` (host:pid, label,
 * command, those it has); `foreign: go-service` for a holder that is not baton's (a key set by
 * another program, whose value is shown); `-` when nothing says.
 */
export function heldBy(h: Pick<AnyHolder, 'owner' | 'holder' | 'foreign'>): string {
  if (h.foreign) return `foreign: ${h.owner}`;
  const d = h.holder;
  if (!d) return '-';
  const where = d.host !== undefined && d.pid !== undefined ? `${d.host}:${d.pid}` : d.host ?? (d.pid !== undefined ? `pid ${d.pid}` : undefined);
  return [where, d.label === undefined ? undefined : JSON.stringify(d.label), d.command].filter((part) => part !== undefined).join(' ') || '-';
}

/** tokenText writes a token for a table: its decimal digits, or `-` where the store issues none. */
function tokenText(token: bigint | null): string {
  return token === null ? '-' : String(token);
}

/** tokenJson writes a token for JSON: a decimal string, or null where the store issues none. */
function tokenJson(token: bigint | null): string | null {
  return token === null ? null : String(token);
}

/** quote writes a lock name for a message, escaped so that odd characters stay visible. */
export function quote(name: string): string {
  return JSON.stringify(name);
}

/** seconds writes a time left as `12.3s`. */
export function seconds(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/** table aligns rows into columns two spaces apart; the last column is not padded. */
export function table(rows: readonly (readonly string[])[], indent = ''): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows
    .map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/** LockJson: the one JSON shape of a lock, printed by `inspect --json` and, in a list, by `ls --json`. */
export interface LockJson {
  kind: string;
  name: string;
  /** The last fencing token issued, as a decimal string; null where the store issues none. */
  fence: string | null;
  holders: { owner: string; token: string | null; mode: string; ttlMs: number; expiresInMs: number; value?: string; holder?: HolderDescription; foreign?: true }[];
  waiters: { owner: string; mode: string; position: number }[];
}

export function lockJson(info: AnyLockInfo): LockJson {
  return {
    kind: info.kind,
    name: info.name,
    fence: tokenJson(info.fence),
    holders: info.holders.map((h) => ({
      owner: h.owner,
      token: tokenJson(h.token),
      mode: h.mode,
      ttlMs: h.ttlMs,
      expiresInMs: Math.max(0, Math.round(h.expiresInMs)),
      ...(h.value === undefined ? {} : { value: h.value }),
      ...(h.holder === undefined ? {} : { holder: h.holder }),
      ...(h.foreign ? { foreign: true as const } : {}),
    })),
    waiters: info.waiters.map((w) => ({ owner: w.owner, mode: w.mode, position: w.position })),
  };
}

/** lockListTable: one line per lock for `ls`. */
export function lockListTable(locks: readonly AnyLockInfo[]): string {
  const rows = locks.map((l) => [l.kind, l.name, String(l.holders.length), String(l.waiters.length), tokenText(l.fence), l.holders.length === 0 ? '-' : clip(l.holders.map(heldBy).join(', '), 60)]);
  return table([['KIND', 'NAME', 'HOLDERS', 'WAITERS', 'LAST TOKEN', 'HELD BY'], ...rows]);
}

/** modeText: how an entry holds, as people say it: a read-write lock's `read` or `write`, else `shared` or `exclusive`. */
function modeText(kind: string, mode: string): string {
  if (kind !== 'rwlock') return mode;
  return mode === 'shared' ? 'read' : 'write';
}

/** lockDetails: the text report of `inspect`. */
export function lockDetails(info: AnyLockInfo): string {
  const lines = [`${info.kind} ${quote(info.name)}: ${info.fence === null ? 'no fencing tokens (the store issues none)' : `last token ${info.fence}`}`];
  if (info.holders.length === 0) lines.push('Holders: none');
  else {
    lines.push(`Holders (${info.holders.length}):`);
    const rows = info.holders.map((h) => [h.owner, tokenText(h.token), seconds(h.expiresInMs), modeText(info.kind, h.mode), clip(heldBy(h), 120)]);
    lines.push(table([['OWNER', 'TOKEN', 'TIME LEFT', 'MODE', 'HELD BY'], ...rows], '  '));
  }
  if (info.waiters.length === 0) lines.push('Waiters: none');
  else {
    lines.push(`Waiters (${info.waiters.length}):`);
    const rows = info.waiters.map((w) => [w.owner, String(w.position), modeText(info.kind, w.mode)]);
    lines.push(table([['OWNER', 'POSITION', 'MODE'], ...rows], '  '));
  }
  return lines.join('\n');
}

/** jobTable: one line per scheduled job for `ls`: its last slot, who ran it, when it started, how long it took, how it ended. */
export function jobTable(jobs: readonly { name: string; record: JobRecord }[]): string {
  const rows = jobs.map(({ name, record: r }) => [
    name,
    new Date(r.slot).toISOString(),
    r.outcome,
    new Date(r.startedAt).toISOString(),
    r.durationMs === undefined ? '-' : seconds(r.durationMs),
    clip(`${heldByText(r.by)}${r.error ? ` (${r.error})` : ''}`, 80),
  ]);
  return table([['JOB', 'LAST SLOT', 'OUTCOME', 'STARTED', 'TOOK', 'BY'], ...rows]);
}

/** heldByText: a stored holder description (JSON) as `heldBy` shows it, or the text as it is. */
function heldByText(by: string): string {
  try {
    const parsed = JSON.parse(by) as HolderDescription;
    return heldBy({ owner: '', holder: parsed });
  } catch {
    return by || '-';
  }
}
