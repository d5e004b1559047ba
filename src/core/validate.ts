import { InvalidArgumentError } from '../errors.js';
import { MAX_TIMER_MS } from './clock.js';

/** MAX_NAME_LENGTH: lock names are 1 to 256 characters, without control characters. */
export const MAX_NAME_LENGTH = 256;

/** MAX_DURATION_MS: the longest TTL or timeout baton accepts, 2^31 - 1 ms (about 24.8 days), the limit of a Node timer. */
export const MAX_DURATION_MS = MAX_TIMER_MS;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  if (typeof value === 'function') return 'a function';
  return Array.isArray(value) ? 'an array' : `an object`;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** checkName: a lock name is a well-formed Unicode string of 1 to 256 characters with no control characters. */
export function checkName(name: unknown, argument = 'name'): string {
  if (typeof name !== 'string') throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be a string, got ${describe(name)}`);
  if (name.length === 0) throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be a non-empty string`);
  if (name.length > MAX_NAME_LENGTH) {
    throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be at most ${MAX_NAME_LENGTH} characters, got ${name.length}`);
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    throw new InvalidArgumentError(argument, `Expected \`${argument}\` to contain no control characters, got ${describe(name)}`);
  }
  // A lone surrogate has no UTF-8 form: stores that keep names as UTF-8 (Redis, etcd) would
  // store it as U+FFFD, and two different names would be one lock.
  if (LONE_SURROGATE.test(name)) {
    throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be well-formed Unicode (a lone surrogate, such as "\\ud800", has no UTF-8 form and would name the same lock as U+FFFD), got ${describe(name)}`);
  }
  return name;
}

/** checkDuration: a duration is an integer number of milliseconds from `min` to 2^31 - 1. */
export function checkDuration(value: unknown, argument: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > MAX_DURATION_MS) {
    const range = min === 0 ? 'a non-negative integer' : 'a positive integer';
    throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be ${range} number of milliseconds up to ${MAX_DURATION_MS}, got ${describe(value)}`);
  }
  return value;
}

/** checkTimeout: like `checkDuration` from 0, and `Infinity` means wait without a deadline. */
export function checkTimeout(value: unknown, argument = 'timeoutMs'): number {
  if (value === Infinity) return Infinity;
  return checkDuration(value, argument, 0);
}

/** checkPositiveInteger: a count such as `permits`, from 1 to 2^31 - 1. */
export function checkPositiveInteger(value: unknown, argument: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_DURATION_MS) {
    throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be a positive integer, got ${describe(value)}`);
  }
  return value;
}

/** checkSignal: undefined, or an AbortSignal. */
export function checkSignal(value: unknown, argument = 'signal'): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be an AbortSignal, got ${describe(value)}`);
  return value;
}

/** checkBoolean: undefined, or a boolean. */
export function checkBoolean(value: unknown, argument: string): boolean | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be a boolean, got ${describe(value)}`);
  return value;
}

/** checkFunction: a callback argument. */
export function checkFunction(value: unknown, argument: string): void {
  if (typeof value !== 'function') throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be a function, got ${describe(value)}`);
}

/** checkOptions: undefined or a plain object whose keys are all known; names the first unknown key. */
export function checkOptions<T extends object>(value: unknown, argument: string, known: readonly string[]): Partial<T> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidArgumentError(argument, `Expected \`${argument}\` to be an object, got ${describe(value)}`);
  }
  for (const key of Object.keys(value)) {
    if (!known.includes(key)) {
      throw new InvalidArgumentError(`${argument}.${key}`, `Unknown option \`${key}\` in \`${argument}\`; expected one of: ${known.join(', ')}`);
    }
  }
  return value as Partial<T>;
}
