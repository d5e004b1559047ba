/**
 * The admin commands: `ls`, `inspect`, `release --force` and `prune`. They read (or, for
 * `release` and `prune`, change) what the store holds, and never take a lock themselves.
 */
import { InvalidArgumentError, type Baton, type LockKind } from '../index.js';
import { systemClock } from '../core/clock.js';
import { sleep } from '../core/timing.js';
import { COMMON_FLAGS, booleanFlag, expectPositionals, formatDuration, parseDuration, parseKind, stringFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import { jobTable, lockDetails, lockJson, lockListTable, quote } from './format.js';
import type { Io } from './io.js';

type AnyBaton = Baton<bigint | null>;

export const LS_USAGE = 'baton ls [--kind KIND] [--json | --watch [--interval DURATION]]';
export const INSPECT_USAGE = 'baton inspect NAME [--kind KIND] [--json]';
export const RELEASE_USAGE = 'baton release NAME --force [--kind KIND]';
export const PRUNE_USAGE = 'baton prune [--kind KIND] [--dry-run]';

export const INSPECT_FLAGS: FlagSpecs = Object.freeze({ ...COMMON_FLAGS, kind: { type: 'string' }, json: { type: 'boolean' } });
export const LS_FLAGS: FlagSpecs = Object.freeze({ ...INSPECT_FLAGS, watch: { type: 'boolean' }, interval: { type: 'string' } });
export const RELEASE_FLAGS: FlagSpecs = Object.freeze({ ...COMMON_FLAGS, kind: { type: 'string' }, force: { type: 'boolean' } });
export const PRUNE_FLAGS: FlagSpecs = Object.freeze({ ...COMMON_FLAGS, kind: { type: 'string' }, 'dry-run': { type: 'boolean' } });

export interface InspectOptions {
  readonly name: string;
  readonly kind: LockKind | undefined;
  readonly json: boolean;
}

export interface LsOptions {
  readonly kind: LockKind | undefined;
  readonly json: boolean;
  /** Redraw every `intervalMs` until stopped (SIGINT, SIGTERM); undefined lists once. */
  readonly watchMs: number | undefined;
}

export interface ReleaseOptions {
  readonly name: string;
  readonly kind: LockKind | undefined;
}

export interface PruneOptions {
  readonly kind: LockKind | undefined;
  readonly dryRun: boolean;
}

export function parsePrune(args: ParsedArgs): PruneOptions {
  expectPositionals(args, [], PRUNE_USAGE);
  return { kind: parseKind(stringFlag(args, 'kind')), dryRun: booleanFlag(args, 'dry-run') };
}

export function parseLs(args: ParsedArgs): LsOptions {
  expectPositionals(args, [], LS_USAGE);
  const watch = booleanFlag(args, 'watch');
  const interval = stringFlag(args, 'interval');
  if (watch && booleanFlag(args, 'json')) throw new InvalidArgumentError('watch', '--watch and --json cannot be used together');
  if (interval !== undefined && !watch) throw new InvalidArgumentError('interval', '--interval goes with --watch');
  return { kind: parseKind(stringFlag(args, 'kind')), json: booleanFlag(args, 'json'), watchMs: watch ? (interval === undefined ? 1000 : parseDuration(interval, 'interval', 100)) : undefined };
}

export function parseInspect(args: ParsedArgs): InspectOptions {
  expectPositionals(args, ['NAME'], INSPECT_USAGE);
  return { name: args.positionals[0]!, kind: parseKind(stringFlag(args, 'kind')), json: booleanFlag(args, 'json') };
}

/** parseRelease refuses to go on without `--force`: freeing someone else's lock must be deliberate. */
export function parseRelease(args: ParsedArgs): ReleaseOptions {
  expectPositionals(args, ['NAME'], RELEASE_USAGE);
  if (!booleanFlag(args, 'force')) {
    throw new InvalidArgumentError('force', `release frees lock ${quote(args.positionals[0]!)} even though someone else holds it: their command keeps running unprotected until its next renewal notices. Add --force to do it anyway`);
  }
  return { name: args.positionals[0]!, kind: parseKind(stringFlag(args, 'kind')) };
}

/** ls prints every lock, as a table or as a JSON array; with `--watch`, again every interval until stopped. */
export async function ls(baton: AnyBaton, o: LsOptions, io: Io): Promise<number> {
  if (o.watchMs !== undefined) return watch(baton, o, o.watchMs, io);
  const locks = await baton.list(o.kind === undefined ? undefined : { kind: o.kind });
  if (o.json) io.out(JSON.stringify(locks.map(lockJson), null, 2));
  else if (locks.length === 0) io.out('No locks.');
  else io.out(lockListTable(locks));
  if (!o.json && (o.kind === undefined || o.kind === 'mutex')) {
    const jobs = await baton.jobs();
    if (jobs.length > 0) io.out(`\nScheduled jobs, last slot:\n${jobTable(jobs)}`);
  }
  return 0;
}

/** inspect prints one lock's holders and waiters. */
export async function inspect(baton: AnyBaton, o: InspectOptions, io: Io): Promise<number> {
  const info = await baton.inspect(o.name, o.kind ?? (await kindOf(baton, o.name, false)));
  io.out(o.json ? JSON.stringify(lockJson(info), null, 2) : lockDetails(info));
  return 0;
}

/** release removes every holder of a lock and says how many there were. */
export async function release(baton: AnyBaton, o: ReleaseOptions, io: Io): Promise<number> {
  const kind = o.kind ?? (await kindOf(baton, o.name, true));
  const removed = await baton.forceRelease(o.name, kind);
  const what = `${removed} holder${removed === 1 ? '' : 's'} of ${kind} ${quote(o.name)}`;
  io.out(removed === 0 ? `Removed ${what} (it was not held).` : `Removed ${what}.`);
  return 0;
}

/**
 * watch redraws the list every `intervalMs` (on a terminal, in place; elsewhere, one table
 * after another, each headed by the time) until SIGINT or SIGTERM, then exits 0. A list the
 * store does not give in time shows its error, and the watch goes on.
 */
async function watch(baton: AnyBaton, o: LsOptions, intervalMs: number, io: Io): Promise<number> {
  const stopped = new AbortController();
  const off = io.onStop?.(() => stopped.abort()) ?? (() => undefined);
  try {
    while (!stopped.signal.aborted) {
      const startedAt = Date.now();
      let body: string;
      try {
        const locks = await baton.list(o.kind === undefined ? undefined : { kind: o.kind }, { signal: stopped.signal, timeoutMs: Math.max(intervalMs, 1000) });
        body = locks.length === 0 ? 'No locks.' : lockListTable(locks);
      } catch (error) {
        if (stopped.signal.aborted) break;
        body = `baton: ${error instanceof Error ? error.message : String(error)}`;
      }
      const header = `${new Date().toISOString().slice(11, 19)}  every ${formatDuration(intervalMs)}${io.outIsTerminal ? ', Ctrl-C to stop' : ''}`;
      if (io.outIsTerminal && io.redraw) io.redraw(`${header}\n\n${body}`);
      else io.out(`${header}\n${body}\n`);
      // Cut short by a stop: the loop then ends.
      await sleep(systemClock, Math.max(0, intervalMs - (Date.now() - startedAt)), stopped.signal).catch(() => undefined);
    }
    return 0;
  } finally {
    off();
  }
}

/**
 * prune removes the locks nobody holds or waits for and says how many; with `--dry-run` it
 * lists them instead (as they are now: one may be taken before a real prune runs).
 */
export async function prune(baton: AnyBaton, o: PruneOptions, io: Io): Promise<number> {
  const filter = o.kind === undefined ? undefined : { kind: o.kind };
  if (o.dryRun) {
    const idle = (await baton.list(filter)).filter((lock) => lock.holders.length === 0 && lock.waiters.length === 0);
    for (const lock of idle) io.out(`${lock.kind} ${quote(lock.name)}`);
    io.out(`${idle.length} idle lock${idle.length === 1 ? '' : 's'} would be pruned.`);
    return 0;
  }
  const removed = await baton.prune(filter);
  io.out(`Pruned ${removed} idle lock${removed === 1 ? '' : 's'}.`);
  return 0;
}

/**
 * kindOf picks the kind of lock NAME when `--kind` is not given: the one kind the store has
 * for NAME, or mutex if it has none. Names of different kinds never collide, so when several
 * kinds share NAME the user must choose; `release` counts only kinds that have holders.
 */
async function kindOf(baton: AnyBaton, name: string, heldOnly: boolean): Promise<LockKind> {
  const found = (await baton.list()).filter((lock) => lock.name === name);
  const held = found.filter((lock) => lock.holders.length > 0);
  const candidates = heldOnly && held.length > 0 ? held : found;
  if (candidates.length === 0) return 'mutex';
  if (candidates.length === 1) return candidates[0]!.kind;
  const kinds = candidates.map((lock) => lock.kind).join(', ');
  throw new InvalidArgumentError('kind', `${quote(name)} names locks of several kinds (${kinds}): pass --kind to choose one`);
}
