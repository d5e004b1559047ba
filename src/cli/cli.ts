/**
 * The `baton` command line: reads the global flags, picks the command, opens the store and
 * turns whatever happens into one exit code. Every exit goes through `main`'s return value
 * after the baton instance is closed; a user's mistake prints `baton: <message>`, never a
 * stack trace.
 */
import { InvalidArgumentError, createBaton, type Baton, type BatonOptions, type HolderDescription } from '../index.js';
import { openStore } from '../url.js';
import { INSPECT_FLAGS, LS_FLAGS, PRUNE_FLAGS, RELEASE_FLAGS, inspect, ls, parseInspect, parseLs, parsePrune, parseRelease, prune, release } from './admin.js';
import { COMMON_FLAGS, booleanFlag, parseArgs, stringFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import { DASHBOARD_FLAGS, dashboard, parseDashboard } from './dashboard.js';
import { EXIT, exitCodeFor } from './exit-codes.js';
import { CRON_HELP, DASHBOARD_HELP, INSPECT_HELP, LS_HELP, MAIN_HELP, PRUNE_HELP, RELEASE_HELP, RUN_HELP, version } from './help.js';
import { processIo, type Io } from './io.js';
import { CRON_FLAGS, cron, parseCron } from './cron.js';
import { RUN_FLAGS, commandLine, parseRun, run } from './run.js';

type AnyBaton = Baton<bigint | null>;

/** Command: a subcommand's flags, help, and `prepare`, which checks its arguments before any store is opened. */
interface Command {
  readonly flags: FlagSpecs;
  readonly help: string;
  prepare?(args: ParsedArgs): (baton: AnyBaton, io: Io) => Promise<number>;
  /** What the command's baton instance says of its holders (`baton run`: its command line). */
  holder?(args: ParsedArgs): HolderDescription;
  /** A command that opens the store itself (`baton dashboard`, which serves its page while the store is down), given its URL, instead of `prepare`. */
  standalone?(args: ParsedArgs, url: string, io: Io): Promise<number>;
}

const COMMANDS: Readonly<Record<string, Command>> = Object.freeze({
  run: { flags: RUN_FLAGS, help: RUN_HELP, prepare: (args) => bind(parseRun(args), run), holder: (args) => ({ command: commandLine(parseRun(args)) }) },
  ls: { flags: LS_FLAGS, help: LS_HELP, prepare: (args) => bind(parseLs(args), ls) },
  inspect: { flags: INSPECT_FLAGS, help: INSPECT_HELP, prepare: (args) => bind(parseInspect(args), inspect) },
  release: { flags: RELEASE_FLAGS, help: RELEASE_HELP, prepare: (args) => bind(parseRelease(args), release) },
  prune: { flags: PRUNE_FLAGS, help: PRUNE_HELP, prepare: (args) => bind(parsePrune(args), prune) },
  cron: { flags: CRON_FLAGS, help: CRON_HELP, prepare: (args) => bind(parseCron(args), cron), holder: (args) => ({ command: commandLine(parseCron(args)) }) },
  dashboard: {
    flags: DASHBOARD_FLAGS,
    help: DASHBOARD_HELP,
    standalone: (args, url, io) => dashboard(url, parseDashboard(args), io),
  },
});

const GLOBAL_FLAGS: FlagSpecs = Object.freeze({ ...COMMON_FLAGS, version: { type: 'boolean', short: 'V' } });

/** The store when neither `--store` nor `BATON_STORE` names one: the default SQLite file. */
export const DEFAULT_STORE_URL = 'sqlite:';

/** main runs one command line (without `node` and the script) and returns the exit code. */
export async function main(argv: readonly string[], io: Io = processIo): Promise<number> {
  let topic: string | undefined;
  try {
    const { global, command, rest } = splitGlobal(argv);
    if (booleanFlag(global, 'version')) {
      io.out(version());
      return EXIT.ok;
    }
    if (command === undefined) {
      if (booleanFlag(global, 'help')) io.out(MAIN_HELP.trimEnd());
      else io.err(MAIN_HELP.trimEnd());
      return booleanFlag(global, 'help') ? EXIT.ok : EXIT.usage;
    }
    if (command === 'help') return help(rest, io);
    const definition = COMMANDS[command];
    if (!Object.hasOwn(COMMANDS, command) || !definition) {
      throw new InvalidArgumentError('command', `unknown command "${command}"; expected one of: ${Object.keys(COMMANDS).join(', ')}, help`);
    }
    topic = command;
    const args = parseArgs(rest, definition.flags, `baton ${command}`);
    if (booleanFlag(global, 'help') || booleanFlag(args, 'help')) {
      io.out(definition.help.trimEnd());
      return EXIT.ok;
    }
    if (definition.standalone) return await definition.standalone(args, storeUrl(global, args, io.env), io);
    // Every command has `standalone` or `prepare`.
    const execute = definition.prepare!(args);
    const options: BatonOptions = definition.holder ? { holder: definition.holder(args) } : {};
    return await withBaton(storeUrl(global, args, io.env), options, (baton) => execute(baton, io));
  } catch (error) {
    return report(error, topic, io);
  }
}

/** splitGlobal separates `baton [global flags] COMMAND [command's arguments]`. */
function splitGlobal(argv: readonly string[]): { global: ParsedArgs; command: string | undefined; rest: readonly string[] } {
  let i = 0;
  while (i < argv.length && argv[i]!.startsWith('-') && argv[i] !== '-' && argv[i] !== '--') i += argv[i] === '--store' ? 2 : 1;
  if (argv[i] === '--') throw new InvalidArgumentError('--', 'expected a command before --: usage: baton run NAME [options] -- COMMAND [ARGS...]');
  const global = parseArgs(argv.slice(0, Math.min(i, argv.length)), GLOBAL_FLAGS, 'baton');
  return { global, command: argv[i], rest: argv.slice(i + 1) };
}

/** `baton help [COMMAND]`. */
function help(rest: readonly string[], io: Io): number {
  const [topic, extra] = rest;
  if (extra !== undefined) throw new InvalidArgumentError('arguments', `unexpected argument "${extra}": usage: baton help [COMMAND]`);
  if (topic === undefined || topic === 'help') {
    io.out(MAIN_HELP.trimEnd());
    return EXIT.ok;
  }
  const definition = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
  if (!definition) throw new InvalidArgumentError('command', `unknown command "${topic}"; expected one of: ${Object.keys(COMMANDS).join(', ')}`);
  io.out(definition.help.trimEnd());
  return EXIT.ok;
}

/** storeUrl: `--store` (before or after the command, not both), else `BATON_STORE`, else the default SQLite file. */
function storeUrl(global: ParsedArgs, args: ParsedArgs, env: NodeJS.ProcessEnv): string {
  const before = stringFlag(global, 'store');
  const after = stringFlag(args, 'store');
  if (before !== undefined && after !== undefined) throw new InvalidArgumentError('store', '--store is given twice');
  return before ?? after ?? (env.BATON_STORE || DEFAULT_STORE_URL);
}

/** withBaton opens the store, runs `body`, and always closes the instance (which closes the store) before returning. */
async function withBaton<T>(url: string, options: BatonOptions, body: (baton: AnyBaton) => Promise<T>): Promise<T> {
  const baton = createBaton(await openStore(url), options);
  try {
    return await body(baton);
  } finally {
    await baton.close().catch(() => undefined);
  }
}

/** report prints an error that reached the top and returns its exit code. */
function report(error: unknown, topic: string | undefined, io: Io): number {
  const code = exitCodeFor(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === EXIT.internal) {
    io.err(`baton: internal error: ${message}`);
    if (io.env.BATON_DEBUG && error instanceof Error && error.stack) io.err(error.stack);
    else io.err('(set BATON_DEBUG=1 to see where it happened)');
    return code;
  }
  io.err(`baton: ${message}`);
  if (code === EXIT.usage) io.err(`Run "baton ${topic === undefined ? 'help' : `${topic} --help`}" for usage.`);
  return code;
}

function bind<O>(options: O, command: (baton: AnyBaton, options: O, io: Io) => Promise<number>): (baton: AnyBaton, io: Io) => Promise<number> {
  return (baton, io) => command(baton, options, io);
}
