/**
 * What a store URL scheme is made of: the `StoreScheme` descriptor each store folder exports
 * from its `url.ts`, and the helpers their parsers share. `src/url.ts` lists the descriptors;
 * this module imports no store, so that store folders can use it without an import cycle.
 */
import { InvalidArgumentError } from './errors.js';
import type { LockStore } from './store.js';

/**
 * StoreScheme describes the URL scheme(s) of one store: how to read its URLs and how to open
 * the store one names. `parseStoreUrl`, `openStore`, the list of supported schemes in their
 * messages and `baton --help` are all made from the list of these in `src/url.ts`.
 */
export interface StoreScheme<Name extends string = string, Parsed extends { readonly scheme: string } = { readonly scheme: string }> {
  /** The scheme, lower case and without its colon, then the same store's scheme over TLS if it has one: `['redis', 'rediss']`. */
  readonly names: readonly [Name] | readonly [Name, Name];
  /** The URL's form for help and messages, one line: `redis://[user:password@]host:port[/db][?prefix=app]`. */
  readonly form: string;
  /** What the store is, for help, naming the TLS scheme if there is one: `one Redis server (needs ioredis); rediss:// for TLS`. */
  readonly summary: string;
  /** The query options the scheme takes, by name. */
  readonly options: readonly string[];
  /** How messages that list the schemes show this one, when its name alone says too little. */
  readonly example?: string;
  /** parse reads a URL of one of `names` without opening anything; it throws `InvalidArgumentError('url', ...)` without repeating credentials. */
  parse(url: string): Parsed;
  /**
   * open makes and opens the store `parsed` names, importing its module and driver only now;
   * `url` is the URL it was read from, for messages (redacted). It fails with
   * `StoreUnavailableError` when the store cannot be reached.
   */
  open(parsed: Parsed, url: string): Promise<LockStore>;
}

/** The longest duration a URL option may give, in ms: the longest a Node timer waits. */
export const MAX_URL_MS = 2 ** 31 - 1;

/**
 * msOption reads a store URL option that is a duration (`busyTimeoutMs`, `nodeTimeoutMs`,
 * `sessionTtlMs`): its name says milliseconds, so it takes a whole number of them, from
 * `min` to 2^31 - 1, and no unit; `10s` is refused with the number to write instead.
 */
export function msOption(key: string, value: string, min: number): number {
  const ms = /^\d+$/.test(value) ? Number(value) : NaN;
  if (ms >= min && ms <= MAX_URL_MS) return ms;
  const unit = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(value);
  const meant = unit ? Math.round(Number(unit[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit[2] as 'ms' | 's' | 'm' | 'h']) : NaN;
  const hint = meant >= min && meant <= MAX_URL_MS ? `: the option is in milliseconds, write ${key}=${meant}` : '';
  throw new InvalidArgumentError('url', `The store URL option "${key}" must be a whole number of milliseconds from ${min} to ${MAX_URL_MS}, got "${value}"${hint}`);
}

/** schemeOf splits a URL into its scheme (lower case) and what follows the colon; null without a scheme. */
export function schemeOf(url: string): { scheme: string; rest: string } | null {
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(url);
  return match ? { scheme: match[1]!.toLowerCase(), rest: match[2]! } : null;
}

/** redactUrl drops the `user:password@` part of a URL, for messages and logs. */
export function redactUrl(url: string): string {
  return url
    .replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^/?#]*@/, '$1')
    // A URL in the query (PostgreSQL's `listen=`), percent-encoded or not, loses its user info too.
    .replace(/(\/\/|%2F%2F)[^/?#&@]*(?:@|%40)/gi, '$1');
}

/** queryOptions yields the options of a store URL's query string, in order; an option given twice is an error. */
export function* queryOptions(query: string, url: string): Generator<[string, string]> {
  const seen = new Set<string>();
  for (const [key, value] of new URLSearchParams(query)) {
    if (seen.has(key)) throw new InvalidArgumentError('url', `The store URL option "${key}" is given twice in "${redactUrl(url)}"`);
    seen.add(key);
    yield [key, value];
  }
}

/** decodePath percent-decodes a path, as URLs require (`%20` for a space, `%25` for `%`). */
export function decodePath(path: string, url: string): string {
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    throw new InvalidArgumentError('url', `Malformed percent-escape in the store URL "${redactUrl(url)}": write %25 for a literal %`);
  }
}
