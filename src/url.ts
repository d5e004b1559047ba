/**
 * Store URLs: one string that says where locks live, for configuration files, environment
 * variables (`BATON_STORE`) and the `baton` CLI.
 *
 * Each store folder describes its own scheme(s) in its `url.ts` (a `StoreScheme`: its forms,
 * how to read a URL and how to open the store); `STORE_SCHEMES` lists them, and
 * `parseStoreUrl`, `openStore`, the supported schemes their messages name and `baton --help`
 * are all made from that one list. A scheme is added there and nowhere else.
 *
 * Store modules are loaded only when their scheme is used, so that importing `baton-lock/url`
 * never loads better-sqlite3 for a program that only uses `memory:`.
 */
import { InvalidArgumentError } from './errors.js';
import type { LockStore } from './store.js';
import { dynamodbScheme, type DynamoDbStoreUrl } from './stores/dynamodb/url.js';
import { etcdScheme, type EtcdStoreUrl } from './stores/etcd/url.js';
import { memoryScheme, type MemoryStoreUrl } from './stores/memory/url.js';
import { postgresScheme, type PostgresStoreUrl } from './stores/postgres/url.js';
import { redisClusterScheme, redisQuorumScheme, redisScheme, type RedisClusterStoreUrl, type RedisQuorumStoreUrl, type RedisStoreUrl } from './stores/redis/url.js';
import { sqliteScheme, type SqliteStoreUrl } from './stores/sqlite/url.js';
import { zookeeperScheme, type ZooKeeperStoreUrl } from './stores/zookeeper/url.js';
import { redactUrl, schemeOf, type StoreScheme } from './url-parts.js';

export { redactUrl } from './url-parts.js';
export type { StoreScheme } from './url-parts.js';
export type { DynamoDbStoreUrl } from './stores/dynamodb/url.js';
export type { EtcdStoreUrl } from './stores/etcd/url.js';
export type { MemoryStoreUrl } from './stores/memory/url.js';
export type { PostgresStoreUrl } from './stores/postgres/url.js';
export type { RedisClusterStoreUrl, RedisQuorumStoreUrl, RedisStoreUrl } from './stores/redis/url.js';
export type { SqliteStoreUrl } from './stores/sqlite/url.js';
export type { ZooKeeperStoreUrl } from './stores/zookeeper/url.js';

/** StoreUrl: a parsed store URL, told apart by `scheme`. */
export type StoreUrl = SqliteStoreUrl | MemoryStoreUrl | RedisStoreUrl | RedisQuorumStoreUrl | RedisClusterStoreUrl | EtcdStoreUrl | ZooKeeperStoreUrl | PostgresStoreUrl | DynamoDbStoreUrl;

/** STORE_SCHEMES: every store URL scheme baton opens, in the order messages and help list them. */
export const STORE_SCHEMES = Object.freeze([sqliteScheme, redisScheme, redisQuorumScheme, redisClusterScheme, etcdScheme, zookeeperScheme, postgresScheme, dynamodbScheme, memoryScheme] as const);

/** StoreSchemeName: a scheme `openStore` can open, `sqlite` to `rediss+cluster`. */
export type StoreSchemeName = (typeof STORE_SCHEMES)[number]['names'][number];

/** The schemes `openStore` can open. */
export const SUPPORTED_SCHEMES: readonly StoreSchemeName[] = Object.freeze(STORE_SCHEMES.flatMap((scheme) => scheme.names));

/** Every registered scheme by name; two stores claiming one name is a mistake caught on load. */
const BY_NAME = new Map<string, StoreScheme<string, StoreUrl>>();
for (const scheme of STORE_SCHEMES) {
  for (const name of scheme.names) {
    if (BY_NAME.has(name)) throw new Error(`Two store schemes are named "${name}"`);
    BY_NAME.set(name, scheme as StoreScheme<string, StoreUrl>);
  }
}

/** schemeLabel is how messages and help name a scheme: `redis://`, or `sqlite:` for a scheme whose form has no `//`. */
function schemeLabel(scheme: StoreScheme, name: string = scheme.names[0]): string {
  return scheme.form.startsWith(`${scheme.names[0]}://`) ? `${name}://` : `${name}:`;
}

/** The supported schemes as messages list them: `sqlite: (for example ...), redis:// (and rediss://), ... and memory:`. */
const SUPPORTED_TEXT = ((): string => {
  const items = STORE_SCHEMES.map((scheme: StoreScheme) => {
    const tls = scheme.names[1];
    return `${schemeLabel(scheme)}${scheme.example === undefined ? '' : ` (${scheme.example})`}${tls === undefined ? '' : ` (and ${schemeLabel(scheme, tls)})`}`;
  });
  return `${items.slice(0, -1).join(', ')} and ${items.at(-1)}`;
})();


/**
 * parseStoreUrl reads a store URL without opening anything. It throws
 * `InvalidArgumentError('url', ...)` for a malformed URL, an unknown option, or a scheme baton
 * does not support; messages never repeat a URL's credentials.
 */
export function parseStoreUrl(url: string): StoreUrl {
  return resolveUrl(url).parsed;
}

/**
 * openStore makes the store a URL names and opens it, so that a wrong path or a missing
 * driver fails here (with `StoreUnavailableError`) rather than on the first lock. The caller
 * owns the store: pass it to `createBaton`, whose `close()` closes it.
 */
export async function openStore(url: string): Promise<LockStore> {
  const { scheme, parsed } = resolveUrl(url);
  return scheme.open(parsed, url);
}

/** The scheme a URL names and the URL read by it. */
function resolveUrl(url: string): { scheme: StoreScheme<string, StoreUrl>; parsed: StoreUrl } {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidArgumentError('url', `Expected a store URL such as ${SUPPORTED_TEXT}, got ${typeof url === 'string' ? 'an empty string' : String(url)}`);
  }
  const split = schemeOf(url);
  if (!split) throw new InvalidArgumentError('url', `Expected a store URL with a scheme, got "${redactUrl(url)}"${pathHint(url)}; baton supports ${SUPPORTED_TEXT}`);
  const scheme = BY_NAME.get(split.scheme);
  if (!scheme) throw unsupportedScheme(split.scheme);
  return { scheme, parsed: scheme.parse(url) };
}

/** A message that names only the scheme: the rest of an unknown URL may hold credentials. */
function unsupportedScheme(scheme: string): InvalidArgumentError {
  return new InvalidArgumentError('url', `Unknown store URL scheme "${scheme}:"; baton supports ${SUPPORTED_TEXT}`);
}

/** A bare file path is a common mistake for a store URL: suggest the sqlite: form. */
function pathHint(url: string): string {
  return /^[./~]/.test(url) ? ` (for a SQLite file write sqlite:${url})` : '';
}
