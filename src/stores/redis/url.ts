/**
 * The Redis store URLs, each also over TLS (`rediss`):
 *
 *   redis://[user:pass@]host:port[/db][?prefix=app]   one Redis server
 *   redis+quorum://[user:pass@]host:port,host:port,...[/db][?prefix=app&nodeTimeoutMs=250]
 *                                a Redlock quorum over independent Redis servers
 *   redis+cluster://[user:pass@]host:port[,host:port...][?prefix=app]
 *                                a Redis Cluster, reached through these seed nodes
 *
 * Opening is ./connect.ts, imported only when a store is opened.
 */
import { InvalidArgumentError } from '../../errors.js';
import { msOption, queryOptions, redactUrl, type StoreScheme } from '../../url-parts.js';

/** RedisStoreUrl: a parsed `redis:` or `rediss:` URL; `url` is what goes to ioredis, without baton's own options. */
export interface RedisStoreUrl {
  readonly scheme: 'redis';
  readonly url: string;
  readonly prefix?: string;
}

/**
 * RedisQuorumStoreUrl: a parsed `redis+quorum:` or `rediss+quorum:` URL, a Redlock quorum
 * (`quorum([...])`) over independent Redis servers; `urls` are what goes to ioredis, one per
 * node, each with the URL's credentials and database.
 */
export interface RedisQuorumStoreUrl {
  readonly scheme: 'redis+quorum';
  readonly urls: readonly string[];
  readonly prefix?: string;
  readonly nodeTimeoutMs?: number;
}

/**
 * RedisClusterStoreUrl: a parsed `redis+cluster:` or `rediss+cluster:` URL, one Redis Cluster
 * (an ioredis `Cluster`) found through its seed nodes; `urls` are the seeds, one per node,
 * each with the URL's credentials (which every node of the cluster gets).
 */
export interface RedisClusterStoreUrl {
  readonly scheme: 'redis+cluster';
  readonly urls: readonly string[];
  readonly prefix?: string;
}

const QUORUM_FORM = 'redis+quorum://[user:password@]host:port,host:port,...[/db][?prefix=app&nodeTimeoutMs=250]';
const CLUSTER_FORM = 'redis+cluster://[user:password@]host:port[,host:port...][?prefix=app]';

/** redisScheme: `redis://` and `rediss://`, one Redis server. */
export const redisScheme: StoreScheme<'redis' | 'rediss', RedisStoreUrl> = {
  names: ['redis', 'rediss'],
  form: 'redis://[user:password@]host:port[/db][?prefix=app]',
  summary: 'one Redis server (needs ioredis); rediss:// for TLS',
  options: ['prefix'],
  parse: parseRedis,
  open: async (parsed) => (await import('./connect.js')).openRedis(parsed),
};

/** redisQuorumScheme: `redis+quorum://` and `rediss+quorum://`, a Redlock quorum of fenceless nodes. */
export const redisQuorumScheme: StoreScheme<'redis+quorum' | 'rediss+quorum', RedisQuorumStoreUrl> = {
  names: ['redis+quorum', 'rediss+quorum'],
  form: QUORUM_FORM,
  summary: 'Redlock over independent Redis servers, one node per host, without fencing tokens; rediss+quorum:// for TLS',
  options: ['prefix', 'nodeTimeoutMs'],
  parse: parseRedisQuorum,
  open: async (parsed) => (await import('./connect.js')).openRedisQuorum(parsed),
};

/** redisClusterScheme: `redis+cluster://` and `rediss+cluster://`, one Redis Cluster. */
export const redisClusterScheme: StoreScheme<'redis+cluster' | 'rediss+cluster', RedisClusterStoreUrl> = {
  names: ['redis+cluster', 'rediss+cluster'],
  form: CLUSTER_FORM,
  summary: 'a Redis Cluster, found through these seed nodes (database 0 only); rediss+cluster:// for TLS',
  options: ['prefix'],
  parse: parseRedisCluster,
  open: async (parsed) => (await import('./connect.js')).openRedisCluster(parsed),
};

/** A Redis key prefix from a URL: non-empty, and without the characters of baton's hash tags. */
function redisPrefix(value: string): string {
  if (value === '' || /[{}:]/.test(value)) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string without "{", "}" or ":", got "${value}"`);
  return value;
}

function parseRedis(url: string): RedisStoreUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError('url', `Malformed Redis URL "${redactUrl(url)}"; expected redis://[user:password@]host:port[/db]`);
  }
  if (parsed.hostname === '') throw new InvalidArgumentError('url', `A Redis URL needs a host, got "${redactUrl(url)}"`);
  let prefix: string | undefined;
  for (const [key, value] of queryOptions(parsed.search.slice(1), url)) {
    if (key !== 'prefix') throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for redis://; expected prefix`);
    prefix = redisPrefix(value);
  }
  parsed.search = '';
  return { scheme: 'redis', url: parsed.toString(), ...(prefix === undefined ? {} : { prefix }) };
}

/** The scheme of a node of a quorum or a cluster: `rediss` when the URL's is TLS. */
function nodeSchemeOf(url: string): 'redis' | 'rediss' {
  return /^rediss\+/i.test(url) ? 'rediss' : 'redis';
}

function parseRedisQuorum(url: string): RedisQuorumStoreUrl {
  const { urls, tail } = redisNodes(url, nodeSchemeOf(url), 'Redis quorum', QUORUM_FORM, 'a node listed twice would vote twice');
  let prefix: string | undefined;
  let nodeTimeoutMs: number | undefined;
  const q = tail.indexOf('?');
  for (const [key, value] of queryOptions(q < 0 ? '' : tail.slice(q + 1), url)) {
    if (key === 'prefix') {
      prefix = redisPrefix(value);
    } else if (key === 'nodeTimeoutMs') {
      nodeTimeoutMs = msOption(key, value, 1);
    } else {
      throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for redis+quorum://; expected prefix, nodeTimeoutMs`);
    }
  }
  return { scheme: 'redis+quorum', urls, ...(prefix === undefined ? {} : { prefix }), ...(nodeTimeoutMs === undefined ? {} : { nodeTimeoutMs }) };
}

function parseRedisCluster(url: string): RedisClusterStoreUrl {
  const { urls, tail } = redisNodes(url, nodeSchemeOf(url), 'Redis Cluster', CLUSTER_FORM, 'list each seed node once');
  const path = tail.replace(/[?#].*$/s, '');
  if (path !== '' && path !== '/' && path !== '/0') {
    throw new InvalidArgumentError('url', `A Redis Cluster has only database 0, got "${path}" in "${redactUrl(url)}"; expected ${CLUSTER_FORM}`);
  }
  // The credentials go to every node as ioredis options, decoded: a malformed escape fails here.
  const seed = new URL(urls[0]!);
  try {
    decodeURIComponent(seed.username);
    decodeURIComponent(seed.password);
  } catch {
    throw new InvalidArgumentError('url', `Malformed percent-escape in the credentials of the Redis Cluster URL "${redactUrl(url)}"`);
  }
  let prefix: string | undefined;
  const q = tail.indexOf('?');
  for (const [key, value] of queryOptions(q < 0 ? '' : tail.slice(q + 1), url)) {
    if (key !== 'prefix') throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for redis+cluster://; expected prefix`);
    prefix = redisPrefix(value);
  }
  return { scheme: 'redis+cluster', urls: urls.map((u) => u.replace(/\/0?$/, '')), ...(prefix === undefined ? {} : { prefix }) };
}

/**
 * Reads the nodes of a URL that lists several Redis servers (`scheme://[user:password@]host:port,host:port,...[/db][?...]`):
 * one `redis://` (or `rediss://`) URL per node, each checked as a redis:// URL and given the
 * credentials and database; `tail` is what follows the hosts (the path and the options).
 */
function redisNodes(url: string, nodeScheme: 'redis' | 'rediss', what: string, form: string, twice: string): { urls: string[]; tail: string } {
  const rest = url.slice(url.indexOf(':') + 1);
  if (!rest.startsWith('//')) throw new InvalidArgumentError('url', `Malformed ${what} URL "${redactUrl(url)}"; expected ${form}`);
  const body = rest.slice(2);
  const end = body.search(/[/?#]/);
  const authority = end < 0 ? body : body.slice(0, end);
  const tail = end < 0 ? '' : body.slice(end);
  const at = authority.lastIndexOf('@');
  const userinfo = at < 0 ? '' : authority.slice(0, at + 1);
  const hosts = (at < 0 ? authority : authority.slice(at + 1)).split(',');
  if (hosts.some((host) => host === '')) throw new InvalidArgumentError('url', `A ${what} URL needs a comma-separated list of host:port, got "${redactUrl(url)}"; expected ${form}`);
  if (new Set(hosts.map((h) => h.toLowerCase())).size !== hosts.length) {
    throw new InvalidArgumentError('url', `A ${what} URL lists a node twice in "${redactUrl(url)}": ${twice}`);
  }
  const urls = hosts.map((host) => {
    try {
      return parseRedis(`${nodeScheme}://${userinfo}${host}${tail.replace(/\?.*$/s, '')}`).url;
    } catch {
      throw new InvalidArgumentError('url', `Malformed node "${host}" in the ${what} URL "${redactUrl(url)}"; expected ${form}`);
    }
  });
  return { urls, tail };
}
