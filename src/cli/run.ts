/**
 * `baton run NAME [options] -- COMMAND [ARGS...]`: hold a lock while a command runs.
 *
 * The lease renews itself every TTL/3. If it is lost anyway, the command is no longer
 * protected: baton says so, stops the command (SIGTERM, then SIGKILL after the grace period)
 * and exits 76, so that a supervisor or a shell script can tell it from the command's own failure.
 */
import { InvalidArgumentError, LeaseLostError, LockTimeoutError, type Baton, type Lease } from '../index.js';
import { COMMON_FLAGS, booleanFlag, expectPositionals, formatDuration, parseCount, parseDuration, stringFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import { Interrupted, SignalRelay, outcomeExitCode, startChild, startFailure } from './child.js';
import { EXIT, signalExitCode } from './exit-codes.js';
import { quote } from './format.js';
import type { Io } from './io.js';
import { reportWaiting } from './waiting.js';

export const RUN_USAGE = 'baton run NAME [options] -- COMMAND [ARGS...]';

export const RUN_FLAGS: FlagSpecs = Object.freeze({
  ...COMMON_FLAGS,
  ttl: { type: 'string' },
  wait: { type: 'string' },
  'no-wait': { type: 'boolean' },
  permits: { type: 'string' },
  grace: { type: 'string' },
  label: { type: 'string' },
  verbose: { type: 'boolean' },
});

/** RunOptions: a checked `baton run` command line. */
export interface RunOptions {
  readonly name: string;
  readonly ttlMs: number;
  /** Longest wait for the lock: 0 tries once, Infinity waits as long as it takes. */
  readonly waitMs: number;
  /** Permits of the semaphore, or undefined for the mutex. */
  readonly permits: number | undefined;
  readonly graceMs: number;
  readonly command: string;
  readonly args: readonly string[];
  /** Shown with the holder by `baton ls` and `inspect`. */
  readonly label: string | undefined;
  /** Report a wait on stderr also when it is not a terminal. */
  readonly verbose: boolean;
}

export const RUN_DEFAULTS = Object.freeze({ ttlMs: 30_000, waitMs: Infinity, graceMs: 10_000 });

/** parseRun checks a `baton run` command line, before anything is opened. */
export function parseRun(args: ParsedArgs): RunOptions {
  if (args.rest === null) {
    const hint = args.positionals.length > 1 ? ` before "${args.positionals[1]}"` : '';
    throw new InvalidArgumentError('--', `expected -- and a command${hint}: usage: ${RUN_USAGE}`);
  }
  expectPositionals(args, ['NAME'], RUN_USAGE, true);
  const [command, ...commandArgs] = args.rest;
  if (command === undefined || command === '') throw new InvalidArgumentError('command', `expected a command after --: usage: ${RUN_USAGE}`);
  const wait = stringFlag(args, 'wait');
  if (wait !== undefined && booleanFlag(args, 'no-wait')) throw new InvalidArgumentError('wait', '--wait and --no-wait cannot be used together');
  const ttl = stringFlag(args, 'ttl');
  const permits = stringFlag(args, 'permits');
  const grace = stringFlag(args, 'grace');
  return {
    name: args.positionals[0]!,
    ttlMs: ttl === undefined ? RUN_DEFAULTS.ttlMs : parseDuration(ttl, 'ttl', 1),
    waitMs: booleanFlag(args, 'no-wait') ? 0 : wait === undefined ? RUN_DEFAULTS.waitMs : parseDuration(wait, 'wait', 0),
    permits: permits === undefined ? undefined : parseCount(permits, 'permits'),
    graceMs: grace === undefined ? RUN_DEFAULTS.graceMs : parseDuration(grace, 'grace', 0),
    command,
    args: commandArgs,
    label: stringFlag(args, 'label'),
    verbose: booleanFlag(args, 'verbose'),
  };
}

/**
 * commandLine: the command as a shell would take it back (`sh -c 'echo hi'`), for the
 * holder's description that anyone who can list the locks reads; at most 300 characters.
 * The credentials of every URL in it are replaced by `***` (`redis://***@host`): a command
 * that locks often names its own database.
 */
export function commandLine(o: Pick<RunOptions, 'command' | 'args'>): string {
  const word = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`);
  const line = [o.command, ...o.args].map((arg) => word(withoutCredentials(arg))).join(' ');
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}

/** withoutCredentials replaces the user info of every URL in `text` (`scheme://user:password@`) with `***`. */
function withoutCredentials(text: string): string {
  return text.replace(/([A-Za-z][A-Za-z0-9+.-]*:\/\/)[^\s/?#@'"]+@/g, '$1***@');
}

/** run takes the lock, runs the command under it, and returns baton's exit code. */
export async function run(baton: Baton<bigint | null>, options: RunOptions, io: Io): Promise<number> {
  const relay = new SignalRelay();
  try {
    const lease = await acquire(baton, options, relay.signal, io);
    if (typeof lease === 'number') return lease;
    if (relay.signal.aborted) {
      // A signal arrived between the grant and the start of the command: do not start it.
      await releaseQuietly(lease, io);
      return signalExitCode((relay.signal.reason as Interrupted).signal);
    }
    return await supervise(baton, lease, options, relay, io);
  } finally {
    relay.dispose();
  }
}

/** acquire returns the lease, or the exit code when there is none (busy, timed out, interrupted). */
async function acquire(baton: Baton<bigint | null>, o: RunOptions, signal: AbortSignal, io: Io): Promise<Lease<bigint | null> | number> {
  const lock = o.permits === undefined ? baton.mutex(o.name) : baton.semaphore(o.name, { permits: o.permits });
  const report = o.waitMs === 0 ? null : reportWaiting(baton, o.name, o.permits === undefined ? 'mutex' : 'semaphore', io, o.verbose);
  try {
    const lease = o.waitMs === 0
      ? await lock.tryAcquire({ ttlMs: o.ttlMs, autoRenew: true, ...(o.label === undefined ? {} : { label: o.label }) })
      : await lock.acquire({ ttlMs: o.ttlMs, timeoutMs: o.waitMs, signal, autoRenew: true, ...(o.label === undefined ? {} : { label: o.label }) });
    if (lease) return lease;
    io.err(`baton: lock ${quote(o.name)} is busy`);
    return EXIT.busy;
  } catch (error) {
    if (error instanceof LockTimeoutError) {
      io.err(`baton: lock ${quote(o.name)} is busy: gave up after ${formatDuration(o.waitMs)}`);
      return EXIT.busy;
    }
    if (error instanceof Interrupted) {
      io.err(`baton: ${error.signal} while waiting for lock ${quote(o.name)}; gave up`);
      return signalExitCode(error.signal);
    }
    throw error;
  } finally {
    report?.stop();
  }
}

/**
 * supervise runs the command while the lease is held and turns its end into baton's exit code.
 * Once the lease is lost there is nothing left to do with the store, so the instance starts
 * closing while the command is stopped: with a store that stopped answering (the likely
 * reason for the loss) its bounded close runs during the grace period instead of after it,
 * and baton exits about when the command dies.
 */
async function supervise(baton: Baton<bigint | null>, lease: Lease<bigint | null>, o: RunOptions, relay: SignalRelay, io: Io): Promise<number> {
  const child = startChild(o.command, o.args, commandEnv(lease, o.name, io.env));
  relay.forwardTo(child.process);
  let lost = false;
  let killTimer: NodeJS.Timeout | undefined;
  const leaseSignal = lease.signal;
  const onLost = (): void => {
    lost = true;
    const reason = leaseSignal.reason instanceof LeaseLostError ? leaseSignal.reason.reason : 'lost';
    io.err(`baton: lock ${quote(o.name)} was lost (${reason}); stopping the command`);
    child.process?.kill('SIGTERM');
    killTimer = setTimeout(() => child.process?.kill('SIGKILL'), o.graceMs);
    void baton.close().catch(() => undefined);
  };
  if (leaseSignal.aborted) onLost();
  else leaseSignal.addEventListener('abort', onLost, { once: true });

  const outcome = await child.ended;
  clearTimeout(killTimer);
  leaseSignal.removeEventListener('abort', onLost);
  relay.forwardTo(null);
  await releaseQuietly(lease, io);
  if (!outcome.started) {
    io.err(`baton: ${startFailure(o.command, outcome.error)}`);
    return outcomeExitCode(outcome);
  }
  return lost ? EXIT.lost : outcomeExitCode(outcome);
}

/** commandEnv: baton's environment plus the lock's name, token and owner. */
function commandEnv(lease: Lease<bigint | null>, name: string, parent: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...parent, BATON_LOCK: name, BATON_OWNER: lease.owner };
  if (lease.token === null) delete env.BATON_TOKEN;
  else env.BATON_TOKEN = String(lease.token);
  return env;
}

/**
 * releaseQuietly gives the lock back once the command is over. A lost lease was reported
 * when it happened, so its error is ignored here; a store failure is reported but does not
 * change the exit code, which belongs to the command (the lock then expires after its TTL).
 */
async function releaseQuietly(lease: Lease<bigint | null>, io: Io): Promise<void> {
  try {
    await lease.release();
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'LEASE_LOST' || code === 'NOT_HELD') return;
    io.err(`baton: could not release lock ${quote(lease.name)}; it expires by itself within its TTL: ${(error as Error).message}`);
  }
}
