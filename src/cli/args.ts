/**
 * The command-line parser: flags, positionals and the `--` that starts a command, plus the
 * value types the commands share (durations, counts, lock kinds). Every mistake is an
 * `InvalidArgumentError` naming the flag, which the CLI turns into exit code 64.
 */
import { InvalidArgumentError, LOCK_KINDS, MAX_DURATION_MS, type LockKind } from '../index.js';

/** FlagSpec: a flag takes a value (`--ttl 30s`, `--ttl=30s`) or is a switch (`--json`). */
export interface FlagSpec {
  readonly type: 'string' | 'boolean';
  /** One-letter alias, such as `h` for `-h`. */
  readonly short?: string;
}

export type FlagSpecs = Readonly<Record<string, FlagSpec>>;

/** ParsedArgs: what one command line holds, flags by their long name. */
export interface ParsedArgs {
  readonly positionals: readonly string[];
  readonly flags: ReadonlyMap<string, string | true>;
  /** The tokens after `--`, or null when there was no `--`. */
  readonly rest: readonly string[] | null;
}

/** The flags every command takes. */
export const COMMON_FLAGS: FlagSpecs = Object.freeze({
  store: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
});

/**
 * parseArgs reads `argv` against `specs`. Flags and positionals may come in any order; `--`
 * ends the flags and everything after it is kept verbatim in `rest`. A flag given twice, an
 * unknown flag, or a missing value is an error; `usage` names the command in messages.
 */
export function parseArgs(argv: readonly string[], specs: FlagSpecs, usage: string): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') return { positionals, flags, rest: argv.slice(i + 1) };
    if (!token.startsWith('-') || token === '-') {
      positionals.push(token);
      continue;
    }
    const { name, inline } = splitFlag(token, specs, usage);
    if (flags.has(name)) throw new InvalidArgumentError(name, `--${name} is given twice`);
    if (specs[name]!.type === 'boolean') {
      if (inline !== undefined) throw new InvalidArgumentError(name, `--${name} takes no value, got "--${name}=${inline}"`);
      flags.set(name, true);
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || next === '--') throw new InvalidArgumentError(name, `--${name} needs a value`);
      value = next;
      i++;
    }
    flags.set(name, value);
  }
  return { positionals, flags, rest: null };
}

/** Resolves `--name`, `--name=value` and `-x` to a known long name. */
function splitFlag(token: string, specs: FlagSpecs, usage: string): { name: string; inline: string | undefined } {
  if (token.startsWith('--')) {
    const eq = token.indexOf('=');
    const name = eq < 0 ? token.slice(2) : token.slice(2, eq);
    if (Object.hasOwn(specs, name)) return { name, inline: eq < 0 ? undefined : token.slice(eq + 1) };
  } else if (token.length === 2) {
    const name = Object.keys(specs).find((key) => specs[key]!.short === token[1]);
    if (name !== undefined) return { name, inline: undefined };
  }
  throw new InvalidArgumentError(token, `unknown option ${token} for "${usage}"`);
}

/** stringFlag: the value of a flag that takes one, if given. */
export function stringFlag(args: ParsedArgs, name: string): string | undefined {
  const value = args.flags.get(name);
  return typeof value === 'string' ? value : undefined;
}

/** booleanFlag: whether a switch was given. */
export function booleanFlag(args: ParsedArgs, name: string): boolean {
  return args.flags.get(name) === true;
}

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * parseDuration reads `500ms`, `30s`, `1.5s`, `2m` or `1h` into whole milliseconds from
 * `minMs` to 2^31 - 1 (the longest Node timer). A number needs its unit: `--ttl 30` could
 * mean 30 s as well as 30 ms, so it is refused with the readings it could have, and only
 * `0`, the same in every unit, may go without one.
 */
export function parseDuration(text: string, flag: string, minMs = 0): number {
  const match = DURATION.exec(text);
  if (!match) {
    throw new InvalidArgumentError(flag, `invalid duration for --${flag}: "${text}"; use a number with a unit: 500ms, 30s, 2m, 1h`);
  }
  const number = match[1]!;
  const unit = match[2];
  if (unit === undefined && Number(number) !== 0) {
    throw new InvalidArgumentError(flag, `--${flag} ${text} has no unit: write ${unitReadings(number, minMs)}`);
  }
  const ms = Math.round(Number(number) * UNIT_MS[unit ?? 'ms']!);
  if (ms < minMs || ms > MAX_DURATION_MS) {
    throw new InvalidArgumentError(flag, `--${flag} must be from ${formatDuration(minMs)} to ${MAX_DURATION_MS}ms (about 24 days), got "${text}"`);
  }
  return ms;
}

/** The ways to write a bare `number` with a unit that `parseDuration` takes, seconds first (the likeliest meaning): `30s, 30ms or 30m`. */
function unitReadings(number: string, minMs: number): string {
  const readings = ['s', 'ms', 'm'].flatMap((unit) => {
    const ms = Number(number) * UNIT_MS[unit]!;
    return (unit !== 'ms' || Number.isInteger(ms)) && ms >= minMs && ms <= MAX_DURATION_MS ? [`${number}${unit}`] : [];
  });
  if (readings.length === 0) return 'a number with a unit: 500ms, 30s, 2m, 1h';
  return readings.length === 1 ? readings[0]! : `${readings.slice(0, -1).join(', ')} or ${readings.at(-1)}`;
}

/** formatDuration writes milliseconds the way `parseDuration` reads them: `200ms`, `10s`, `1.5s`, `2m`, `1h`. */
export function formatDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms >= 60_000 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** parseCount reads a positive whole number such as `--permits 3`. */
export function parseCount(text: string, flag: string): number {
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= MAX_DURATION_MS)) {
    throw new InvalidArgumentError(flag, `--${flag} must be a whole number from 1 to ${MAX_DURATION_MS}, got "${text}"`);
  }
  return value;
}

/** The lock kinds a store keeps; `--kind` takes one of them. */

/** parseKind reads `--kind`. */
export function parseKind(text: string | undefined): LockKind | undefined {
  if (text === undefined) return undefined;
  if (!(LOCK_KINDS as readonly string[]).includes(text)) {
    throw new InvalidArgumentError('kind', `--kind must be one of ${LOCK_KINDS.join(', ')}, got "${text}"`);
  }
  return text as LockKind;
}

/**
 * expectPositionals checks the count of positionals; `names` are their placeholders for
 * messages, such as `NAME`. A `--` is refused unless the command takes one (`restAllowed`).
 */
export function expectPositionals(args: ParsedArgs, names: readonly string[], usage: string, restAllowed = false): void {
  if (args.positionals.length < names.length) {
    throw new InvalidArgumentError(names[args.positionals.length]!, `missing ${names[args.positionals.length]}: usage: ${usage}`);
  }
  if (args.positionals.length > names.length) {
    throw new InvalidArgumentError('arguments', `unexpected argument "${args.positionals[names.length]}": usage: ${usage}`);
  }
  if (args.rest !== null && !restAllowed) throw new InvalidArgumentError('--', `unexpected "--": usage: ${usage}`);
}
