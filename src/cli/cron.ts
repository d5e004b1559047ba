/**
 * `baton cron SPEC NAME [options] -- COMMAND [ARGS...]`: run a command once per slot of a
 * schedule across every host that runs the same line, whatever their clocks (see `Job` in
 * core/scheduler.ts). It runs until SIGINT, SIGTERM or SIGHUP, which stop the schedule, are
 * passed on to a command that is running, and end baton (exit 0) once it has ended.
 */
import { InvalidArgumentError, LeaseLostError, type Baton, type JobRun } from '../index.js';
import { COMMON_FLAGS, expectPositionals, parseDuration, stringFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import { FORWARDED_SIGNALS, inForeground, startChild, startFailure } from './child.js';
import { EXIT } from './exit-codes.js';
import { quote } from './format.js';
import type { Io } from './io.js';

export const CRON_USAGE = "baton cron 'SPEC' NAME [options] -- COMMAND [ARGS...]";

export const CRON_FLAGS: FlagSpecs = Object.freeze({
  ...COMMON_FLAGS,
  timezone: { type: 'string' },
  ttl: { type: 'string' },
  'at-least': { type: 'string' },
  'catch-up': { type: 'string' },
  grace: { type: 'string' },
  label: { type: 'string' },
});

/** CronOptions: a checked `baton cron` command line. */
export interface CronOptions {
  /** A cron expression, or a period in ms (`every 30s`). */
  readonly when: string | number;
  readonly name: string;
  readonly timezone: string | undefined;
  readonly ttlMs: number;
  readonly atLeastMs: number;
  readonly catchUp: 'none' | 'latest' | number;
  readonly graceMs: number;
  readonly label: string | undefined;
  readonly command: string;
  readonly args: readonly string[];
}

/** parseCron checks a `baton cron` command line, before anything is opened. */
export function parseCron(args: ParsedArgs): CronOptions {
  if (args.rest === null) throw new InvalidArgumentError('--', `expected -- and a command: usage: ${CRON_USAGE}`);
  expectPositionals(args, ['SPEC', 'NAME'], CRON_USAGE, true);
  const [command, ...commandArgs] = args.rest;
  if (command === undefined || command === '') throw new InvalidArgumentError('command', `expected a command after --: usage: ${CRON_USAGE}`);
  const spec = args.positionals[0]!;
  const every = /^every\s+(\S+)$/.exec(spec.trim());
  const ttl = stringFlag(args, 'ttl');
  const atLeast = stringFlag(args, 'at-least');
  const catchUp = stringFlag(args, 'catch-up');
  const grace = stringFlag(args, 'grace');
  return {
    when: every ? parseDuration(every[1]!, 'every', 1000) : spec,
    name: args.positionals[1]!,
    timezone: stringFlag(args, 'timezone'),
    ttlMs: ttl === undefined ? 60_000 : parseDuration(ttl, 'ttl', 1),
    atLeastMs: atLeast === undefined ? 0 : parseDuration(atLeast, 'at-least', 0),
    catchUp: catchUp === undefined || catchUp === 'none' || catchUp === 'latest' ? (catchUp ?? 'none') as 'none' | 'latest' : parseDuration(catchUp, 'catch-up', 0),
    graceMs: grace === undefined ? 10_000 : parseDuration(grace, 'grace', 0),
    label: stringFlag(args, 'label'),
    command,
    args: commandArgs,
  };
}

/** cron schedules the command and runs until a signal stops it; exits 0 then. */
export async function cron(baton: Baton<bigint | null>, o: CronOptions, io: Io): Promise<number> {
  let child: ReturnType<typeof startChild> | null = null;
  const runOnce = async ({ slot, lease, signal }: JobRun<bigint | null>): Promise<void> => {
    const env: NodeJS.ProcessEnv = { ...io.env, BATON_LOCK: o.name, BATON_OWNER: lease.owner, BATON_SLOT: slot.toISOString() };
    if (lease.token === null) delete env.BATON_TOKEN;
    else env.BATON_TOKEN = String(lease.token);
    const running = startChild(o.command, o.args, env);
    child = running;
    let killTimer: NodeJS.Timeout | undefined;
    const onLost = (): void => {
      const reason = signal.reason instanceof LeaseLostError ? signal.reason.reason : 'lost';
      io.err(`baton: lock ${quote(o.name)} was lost (${reason}) during the run of ${slot.toISOString()}; stopping the command`);
      running.process?.kill('SIGTERM');
      killTimer = setTimeout(() => running.process?.kill('SIGKILL'), o.graceMs);
    };
    if (signal.aborted) onLost();
    else signal.addEventListener('abort', onLost, { once: true });
    const outcome = await running.ended;
    clearTimeout(killTimer);
    signal.removeEventListener('abort', onLost);
    child = null;
    if (!outcome.started) throw new Error(startFailure(o.command, outcome.error));
    if (outcome.code !== 0) throw new Error(outcome.signal ? `killed by ${outcome.signal}` : `exit code ${outcome.code}`);
  };
  const job = baton.schedule(o.name, o.when, runOnce, {
    lockAtMostForMs: o.ttlMs,
    lockAtLeastForMs: o.atLeastMs,
    catchUp: o.catchUp,
    ...(o.timezone === undefined ? {} : { timezone: o.timezone }),
    ...(o.label === undefined ? {} : { label: o.label }),
  });
  job.on('error', (error) => io.err(`baton: ${error instanceof Error ? error.message : String(error)}`));
  job.on('done', ({ slot, record }) => {
    if (record.outcome !== 'ok') io.err(`baton: the run of ${slot.toISOString()} ended: ${record.outcome}${record.error ? ` (${record.error})` : ''}`);
  });
  // The job's timers are unref'd: this command keeps the process alive until it is told to stop.
  const alive = setInterval(() => undefined, 2 ** 31 - 1);
  const stopped = new Promise<void>((resolve) => {
    const handlers = FORWARDED_SIGNALS.map((name) => {
      const handler = (): void => {
        for (const [signal, h] of handlers) process.removeListener(signal, h);
        const running = (child as ReturnType<typeof startChild> | null)?.process;
        if (running && running.exitCode === null && !(name !== 'SIGTERM' && inForeground(running.pid))) running.kill(name);
        resolve();
      };
      process.on(name, handler);
      return [name, handler] as const;
    });
  });
  await stopped;
  await job.stop();
  clearInterval(alive);
  return EXIT.ok;
}
