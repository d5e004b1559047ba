/**
 * Store URLs: one string that says where locks live, for configuration files, environment
 * variables (`BATON_STORE`) and the `baton` CLI.
 *
 *   sqlite:                      the default file, `defaultSqlitePath()`
 *   sqlite:/var/lib/app/locks.db an absolute path (also `sqlite:///var/lib/app/locks.db`)
 *   sqlite:locks.db              a path relative to the current directory (also `sqlite:./locks.db`)
 *   sqlite:locks.db?prefix=app&durability=normal&busyTimeoutMs=2000
 *   memory:                      a fresh in-process store
 *   redis://[user:pass@]host:port[/db][?prefix=app]   one Redis server (rediss:// for TLS)
 *   etcd://[user:pass@]host:port[,host:port...][?prefix=app/&sessionTtlMs=10000]   an etcd cluster
 *                                (etcds:// for TLS, with ?ca=/path/ca.pem for a private CA and
 *                                &cert=/path/client.pem&key=/path/client.key for a client certificate)
 *   redis+quorum://[user:pass@]host:port,host:port,...[/db][?prefix=app&nodeTimeoutMs=250]
 *                                a Redlock quorum over independent Redis servers (rediss+quorum:// for TLS)
 *   redis+cluster://[user:pass@]host:port[,host:port...][?prefix=app]
 *                                a Redis Cluster, reached through these seed nodes (rediss+cluster:// for TLS)
 *
 * Store modules are loaded only when their scheme is used, so that importing `baton/url`
 * never loads better-sqlite3 for a program that only uses `memory:`.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, StoreUnavailableError } from './errors.js';
import type { LockStore } from './store.js';
import { reconnectDelay } from './stores/redis/connect.js';

/** SqliteStoreUrl: a parsed `sqlite:` URL; its options map one to one onto `SqliteStoreOptions`. */
export interface SqliteStoreUrl {
  readonly scheme: 'sqlite';
  /** Absolute path of the database file; undefined means `defaultSqlitePath()`. */
  readonly path?: string;
  readonly prefix?: string;
  readonly durability?: 'full' | 'normal';
  readonly busyTimeoutMs?: number;
}

/** MemoryStoreUrl: a parsed `memory:` URL. */
export interface MemoryStoreUrl {
  readonly scheme: 'memory';
}

/** RedisStoreUrl: a parsed `redis:` or `rediss:` URL; `url` is what goes to ioredis, without baton's own options. */
export interface RedisStoreUrl {
  readonly scheme: 'redis';
  readonly url: string;
  readonly prefix?: string;
}

/** EtcdStoreUrl: a parsed `etcd:` or `etcds:` URL: the members' addresses, the credentials, and the store's options. */
export interface EtcdStoreUrl {
  readonly scheme: 'etcd';
  /** Member addresses for etcd3, `http://host:port` (`https://` with etcds:). */
  readonly hosts: readonly string[];
  readonly username?: string;
  readonly password?: string;
  /** Path of a PEM file with the CA that signed the members' certificates (etcds: only). */
  readonly ca?: string;
  /** Paths of the PEM files of a client certificate and its private key, for members that check clients' certificates (etcds: only, both or neither). */
  readonly cert?: string;
  readonly key?: string;
  readonly prefix?: string;
  readonly sessionTtlMs?: number;
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

/** StoreUrl: a parsed store URL, told apart by `scheme`. */
export type StoreUrl = SqliteStoreUrl | MemoryStoreUrl | RedisStoreUrl | RedisQuorumStoreUrl | RedisClusterStoreUrl | EtcdStoreUrl;

/** The schemes `openStore` can open. */
export const SUPPORTED_SCHEMES = Object.freeze(['sqlite', 'memory', 'redis', 'rediss', 'redis+quorum', 'rediss+quorum', 'redis+cluster', 'rediss+cluster', 'etcd', 'etcds'] as const);

/** Schemes of stores that are planned, with the form their error message names. */
const PLANNED: Readonly<Record<string, string>> = {
  postgres: 'postgres://',
  postgresql: 'postgres://',
  zk: 'zk://',
  zookeeper: 'zk://',
};

const SQLITE_OPTIONS = ['prefix', 'durability', 'busyTimeoutMs'] as const;
const MAX_BUSY_TIMEOUT_MS = 2 ** 31 - 1;
const SUPPORTED_TEXT = 'sqlite: (for example sqlite:/var/lib/app/locks.db, or sqlite: alone for the default file), redis:// (and rediss://), redis+quorum://, redis+cluster://, etcd:// (and etcds://) and memory:';

/**
 * parseStoreUrl reads a store URL without opening anything. It throws
 * `InvalidArgumentError('url', ...)` for a malformed URL, an unknown option, or a scheme baton
 * does not support; messages never repeat a URL's credentials.
 */
export function parseStoreUrl(url: string): StoreUrl {
  if (typeof url !== 'string' || url.trim() === '') {
    throw new InvalidArgumentError('url', `Expected a store URL such as ${SUPPORTED_TEXT}, got ${typeof url === 'string' ? 'an empty string' : String(url)}`);
  }
  const match = /^([A-Za-z][A-Za-z0-9+.-]*):(.*)$/s.exec(url);
  if (!match) throw new InvalidArgumentError('url', `Expected a store URL with a scheme, got "${redactUrl(url)}"${pathHint(url)}; baton supports ${SUPPORTED_TEXT}`);
  const scheme = match[1]!.toLowerCase();
  const rest = match[2]!;
  if (scheme === 'sqlite') return parseSqlite(rest, url);
  if (scheme === 'memory') return parseMemory(rest, url);
  if (scheme === 'redis' || scheme === 'rediss') return parseRedis(url);
  if (scheme === 'etcd' || scheme === 'etcds') return parseEtcd(scheme, rest, url);
  if (scheme === 'redis+quorum' || scheme === 'rediss+quorum') return parseRedisQuorum(url, scheme === 'rediss+quorum' ? 'rediss' : 'redis');
  if (scheme === 'redis+cluster' || scheme === 'rediss+cluster') return parseRedisCluster(url, scheme === 'rediss+cluster' ? 'rediss' : 'redis');
  throw unsupportedScheme(scheme);
}

/**
 * openStore makes the store a URL names and opens it, so that a wrong path or a missing
 * driver fails here (with `StoreUnavailableError`) rather than on the first lock. The caller
 * owns the store: pass it to `createBaton`, whose `close()` closes it.
 */
export async function openStore(url: string): Promise<LockStore> {
  const parsed = parseStoreUrl(url);
  switch (parsed.scheme) {
    case 'memory': {
      const { createMemoryStore } = await import('./stores/memory/index.js');
      return createMemoryStore();
    }
    case 'sqlite': {
      const { createSqliteStore } = await import('./stores/sqlite/index.js');
      const { scheme: _scheme, ...options } = parsed;
      const store = createSqliteStore(options);
      try {
        await store.open();
      } catch (error) {
        await store.close().catch(() => undefined);
        throw error;
      }
      return store;
    }
    case 'redis':
      return openRedis(parsed);
    case 'etcd':
      return openEtcd(parsed, url);
    case 'redis+quorum':
      return openRedisQuorum(parsed);
    case 'redis+cluster': {
      const { openRedisCluster } = await import('./stores/redis/connect.js');
      return openRedisCluster(parsed);
    }
  }
}

/** The part of a gRPC call (`@grpc/grpc-js`'s `InterceptingCall`) that `trackCalls` uses. */
interface GrpcCall {
  start(metadata: unknown, listener?: { onReceiveMetadata?(metadata: unknown): void; onReceiveMessage?(message: unknown): void; onReceiveStatus?(status: unknown): void }): void;
  cancelWithStatus(code: number, details: string): void;
}

/** gRPC's status code CANCELLED. */
const GRPC_CANCELLED = 1;

/**
 * trackCalls: a gRPC client interceptor that keeps every call in flight, so that `cancelAll`
 * can end them when the client is closed (gRPC's own close ends only calls not yet started).
 * A call leaves the set when its status arrives.
 */
function trackCalls(): { interceptor: (options: unknown, next: (options: unknown) => GrpcCall) => GrpcCall; cancelAll(): void } {
  const inFlight = new Set<GrpcCall>();
  return {
    interceptor(options, next) {
      const call = next(options);
      const start = call.start.bind(call);
      call.start = (metadata, listener) => {
        inFlight.add(call);
        start(metadata, {
          onReceiveMetadata: (m) => listener?.onReceiveMetadata?.(m),
          onReceiveMessage: (m) => listener?.onReceiveMessage?.(m),
          onReceiveStatus: (status) => {
            inFlight.delete(call);
            listener?.onReceiveStatus?.(status);
          },
        });
      };
      return call;
    },
    cancelAll() {
      for (const call of [...inFlight]) call.cancelWithStatus(GRPC_CANCELLED, 'The etcd store was closed');
      inFlight.clear();
    },
  };
}

type IOptions = import('etcd3').IOptions;
type EtcdHostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/** An etcd3 host policy that only runs the call: no circuit breaker in front of a single member. */
const passThrough = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
} as unknown as EtcdHostPolicy;

async function openEtcd(parsed: EtcdStoreUrl, url: string): Promise<LockStore> {
  let Etcd3: typeof import('etcd3').Etcd3;
  try {
    ({ Etcd3 } = await import('etcd3'));
  } catch (error) {
    throw new StoreUnavailableError('etcd', 'The etcd store needs the etcd3 package: run `npm install etcd3`', { cause: error });
  }
  const { readFile } = await import('node:fs/promises');
  const pem = async (path: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (error) {
      throw new StoreUnavailableError('etcd', `Cannot read the ${what} file "${path}" of the etcd URL: ${(error as Error).message}`, { cause: error });
    }
  };
  const rootCertificate = await pem(parsed.ca, 'CA');
  const certChain = await pem(parsed.cert, 'client certificate');
  const privateKey = await pem(parsed.key, 'client key');
  // etcd3 uses TLS for https:// hosts, trusting the system's CAs unless `ca` is given (gRPC takes a missing root certificate so).
  const credentials = rootCertificate || certChain ? { credentials: { rootCertificate: rootCertificate as Buffer, ...(certChain && privateKey ? { certChain, privateKey } : {}) } } : {};
  const calls = trackCalls();
  const client = new Etcd3({
    hosts: [...parsed.hosts],
    dialTimeout: 3000,
    // gRPC's default reconnect backoff grows from 1 s to 2 min: after etcd restarts, a client
    // could wait that long to reconnect, its locks unreachable. Leases last seconds: retry
    // within a second.
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000, interceptors: [calls.interceptor] } as IOptions['grpcOptions'],
    // etcd3 cuts a member off for 5 s after three failed calls in a row, to try the others;
    // with one member that cuts off etcd itself: after a restart, a client that had failed
    // three calls could neither renew nor release for 5 s, and lost its leases.
    ...(parsed.hosts.length === 1 ? { faultHandling: { host: () => passThrough } } : {}),
    // A call (not a stream) that gets no answer within a session TTL fails rather than hang:
    // no lease could outlive it, and a hung call would hold an acquire, a release or close().
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + (parsed.sessionTtlMs ?? 10_000) }),
    ...credentials,
    ...(parsed.username !== undefined ? { auth: { username: parsed.username, password: parsed.password ?? '' } } : {}),
  });
  const { createEtcdStore } = await import('./stores/etcd/index.js');
  // Closing an etcd3 client closes its channels, but a call already sent goes on until its
  // deadline (a stream, forever) and keeps the process alive: with etcd stalled, the
  // session's grant, the revoke that close() gave up on, the watch stream. They are cancelled.
  const owned = { kv: client.kv, leaseClient: client.leaseClient, watch: client.watch.bind(client), close: () => {
    client.close();
    calls.cancelAll();
  } };
  const store = createEtcdStore(owned, {
    closeClient: true,
    ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }),
    ...(parsed.sessionTtlMs === undefined ? {} : { sessionTtlMs: parsed.sessionTtlMs }),
  });
  try {
    // One read, so that an unreachable cluster or wrong credentials fail here rather than on the first lock.
    await store.list({ kind: 'mutex' });
  } catch (error) {
    await store.close().catch(() => undefined);
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const secret = parsed.password;
    const message = (cause as Error).message;
    throw new StoreUnavailableError('etcd', `Cannot reach etcd at ${redactUrl(url)}: ${secret ? message.replaceAll(secret, '***') : message}`, { cause: error });
  }
  return store;
}

async function openRedis(parsed: RedisStoreUrl): Promise<LockStore> {
  let Redis: typeof import('ioredis').Redis;
  try {
    ({ Redis } = await import('ioredis'));
  } catch (error) {
    throw new StoreUnavailableError('redis', 'The Redis store needs the ioredis package: run `npm install ioredis`', { cause: error });
  }
  const client = new Redis(parsed.url, { lazyConnect: true, maxRetriesPerRequest: 2, retryStrategy: reconnectDelay });
  client.on('error', () => undefined); // reconnection errors reach callers as rejected commands
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    throw new StoreUnavailableError('redis', `Cannot connect to Redis at ${redactUrl(parsed.url)}: ${(error as Error).message.replaceAll(parsed.url, redactUrl(parsed.url))}`, { cause: error });
  }
  const { createRedisStore } = await import('./stores/redis/index.js');
  return createRedisStore(client, { quitClient: true, ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }) });
}

/**
 * Opens a Redlock quorum: one ioredis client per node, each a fenceless node store. It fails
 * unless a majority of the nodes connect; the others keep reconnecting in the background, and
 * count as failed votes until they do.
 */
async function openRedisQuorum(parsed: RedisQuorumStoreUrl): Promise<LockStore> {
  let Redis: typeof import('ioredis').Redis;
  try {
    ({ Redis } = await import('ioredis'));
  } catch (error) {
    throw new StoreUnavailableError('redis', 'The Redis store needs the ioredis package: run `npm install ioredis`', { cause: error });
  }
  const clients = parsed.urls.map((url) => {
    // A quorum's node never runs a command late: by default ioredis keeps a command sent while
    // the node is down (its offline queue), and sends again one whose reply a dropped
    // connection lost, once it reconnects; a grant that the quorum gave up (and rolled back)
    // would then take the lock on a node that restarted empty, for an owner that may be
    // asking again, and count as its vote. Such a command fails at once instead.
    const client = new Redis(url, { maxRetriesPerRequest: 2, retryStrategy: reconnectDelay, enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
    client.on('error', () => undefined); // reconnection errors reach callers as rejected commands
    return client;
  });
  const majority = Math.floor(clients.length / 2) + 1;
  // Waits until a majority is connected, or 5 s.
  const ready = clients.map((client) => client.status === 'ready');
  await new Promise<void>((done) => {
    const timer = setTimeout(done, 5000);
    const check = (): void => {
      if (ready.filter(Boolean).length < majority) return;
      clearTimeout(timer);
      done();
    };
    clients.forEach((client, i) => client.once('ready', () => {
      ready[i] = true;
      check();
    }));
    check();
  });
  if (ready.filter(Boolean).length < majority) {
    for (const client of clients) client.disconnect();
    const down = parsed.urls.filter((_, i) => !ready[i]).map(redactUrl);
    throw new StoreUnavailableError('redis', `Cannot connect to a majority (${majority} of ${clients.length}) of the Redis quorum's nodes; not connected: ${down.join(', ')}`);
  }
  const { createRedisStore, quorum } = await import('./stores/redis/index.js');
  const prefix = parsed.prefix === undefined ? {} : { prefix: parsed.prefix };
  return quorum(clients.map((client) => createRedisStore(client, { quitClient: true, fencing: false, ...prefix })), parsed.nodeTimeoutMs === undefined ? {} : { nodeTimeoutMs: parsed.nodeTimeoutMs });
}

/** redactUrl drops the `user:password@` part of a URL, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^([A-Za-z][A-Za-z0-9+.-]*:\/\/)?[^/?#]*@/, '$1');
}

function parseSqlite(rest: string, url: string): SqliteStoreUrl {
  const q = rest.indexOf('?');
  let location = q < 0 ? rest : rest.slice(0, q);
  const options = parseSqliteOptions(q < 0 ? '' : rest.slice(q + 1), url);
  if (location.startsWith('//')) {
    // sqlite://HOST/PATH: only an empty host (or localhost) makes sense for a local file.
    const slash = location.indexOf('/', 2);
    const host = slash < 0 ? location.slice(2) : location.slice(2, slash);
    if (host !== '' && host.toLowerCase() !== 'localhost') {
      throw new InvalidArgumentError('url', `A sqlite: URL names a local file and has no host, got "${redactUrl(url)}": write sqlite:${host}${slash < 0 ? '' : location.slice(slash)} for a path relative to the current directory, or sqlite:///absolute/path.db`);
    }
    location = slash < 0 ? '' : location.slice(slash);
  }
  const path = decodePath(location, url);
  return { scheme: 'sqlite', ...(path === '' ? {} : { path: resolve(path) }), ...options };
}

/** The options of a store URL's query string, in order; an option given twice is an error. */
function* queryOptions(query: string, url: string): Generator<[string, string]> {
  const seen = new Set<string>();
  for (const [key, value] of new URLSearchParams(query)) {
    if (seen.has(key)) throw new InvalidArgumentError('url', `The store URL option "${key}" is given twice in "${redactUrl(url)}"`);
    seen.add(key);
    yield [key, value];
  }
}

/** A Redis key prefix from a URL: non-empty, and without the characters of baton's hash tags. */
function redisPrefix(value: string): string {
  if (value === '' || /[{}:]/.test(value)) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string without "{", "}" or ":", got "${value}"`);
  return value;
}

function parseSqliteOptions(query: string, url: string): Omit<SqliteStoreUrl, 'scheme' | 'path'> {
  const options: { prefix?: string; durability?: 'full' | 'normal'; busyTimeoutMs?: number } = {};
  for (const [key, value] of queryOptions(query, url)) {
    switch (key) {
      case 'prefix':
        if (value === '' || value.includes(':')) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string without ":", got "${value}"`);
        options.prefix = value;
        break;
      case 'durability':
        if (value !== 'full' && value !== 'normal') throw new InvalidArgumentError('url', `The store URL option "durability" must be "full" or "normal", got "${value}"`);
        options.durability = value;
        break;
      case 'busyTimeoutMs':
        if (!/^\d+$/.test(value) || Number(value) > MAX_BUSY_TIMEOUT_MS) {
          throw new InvalidArgumentError('url', `The store URL option "busyTimeoutMs" must be a whole number of milliseconds up to ${MAX_BUSY_TIMEOUT_MS}, got "${value}"`);
        }
        options.busyTimeoutMs = Number(value);
        break;
      default:
        throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for sqlite:; expected ${SQLITE_OPTIONS.join(', ')}`);
    }
  }
  return options;
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

function parseEtcd(scheme: 'etcd' | 'etcds', rest: string, url: string): EtcdStoreUrl {
  const form = `expected ${scheme}://[user:password@]host:port[,host:port...][?prefix=app/&sessionTtlMs=10000${scheme === 'etcds' ? '&ca=/path/ca.pem&cert=/path/client.pem&key=/path/client.key' : ''}]`;
  if (!rest.startsWith('//')) throw new InvalidArgumentError('url', `Malformed etcd URL "${redactUrl(url)}"; ${form}`);
  const q = rest.indexOf('?');
  let authority = q < 0 ? rest.slice(2) : rest.slice(2, q);
  if (authority.endsWith('/')) authority = authority.slice(0, -1);
  let username: string | undefined;
  let password: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const info = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = info.indexOf(':');
    try {
      username = decodeURIComponent(colon < 0 ? info : info.slice(0, colon));
      password = colon < 0 ? undefined : decodeURIComponent(info.slice(colon + 1));
    } catch {
      throw new InvalidArgumentError('url', `Malformed percent-escape in the credentials of the etcd URL "${redactUrl(url)}"`);
    }
  }
  const hosts = authority.split(',').map((host) => {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(host)) {
      throw new InvalidArgumentError('url', `Each etcd member needs a host and a port, got "${host.replace(/^.*@/, '')}" in "${redactUrl(url)}"; ${form}`);
    }
    return `${scheme === 'etcds' ? 'https' : 'http'}://${host}`;
  });
  const options: { prefix?: string; sessionTtlMs?: number; ca?: string; cert?: string; key?: string } = {};
  for (const [key, value] of queryOptions(q < 0 ? '' : rest.slice(q + 1), url)) {
    if (key === 'prefix') {
      if (value === '' || !value.endsWith('/')) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string ending with "/", got "${value}"`);
      options.prefix = value;
    } else if (key === 'sessionTtlMs') {
      if (!/^\d+$/.test(value) || Number(value) < 1000 || Number(value) > MAX_BUSY_TIMEOUT_MS) {
        throw new InvalidArgumentError('url', `The store URL option "sessionTtlMs" must be a whole number of milliseconds from 1000 to ${MAX_BUSY_TIMEOUT_MS}, got "${value}"`);
      }
      options.sessionTtlMs = Number(value);
    } else if ((key === 'ca' || key === 'cert' || key === 'key') && scheme === 'etcds') {
      if (value === '') throw new InvalidArgumentError('url', `The store URL option "${key}" must be the path of a PEM file`);
      options[key] = resolve(value);
    } else {
      throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for ${scheme}://; expected prefix, sessionTtlMs${scheme === 'etcds' ? ', ca, cert, key' : ''}${scheme === 'etcd' && ['ca', 'cert', 'key'].includes(key) ? ` (${key} is an option of etcds://, etcd over TLS)` : ''}`);
    }
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new InvalidArgumentError('url', `The store URL options "cert" and "key" go together (a client certificate and its private key), got only "${options.cert === undefined ? 'key' : 'cert'}" in "${redactUrl(url)}"`);
  }
  return { scheme: 'etcd', hosts, ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }), ...options };
}

function parseRedisQuorum(url: string, nodeScheme: 'redis' | 'rediss'): RedisQuorumStoreUrl {
  const form = 'redis+quorum://[user:password@]host:port,host:port,...[/db][?prefix=app&nodeTimeoutMs=250]';
  const { urls, tail } = redisNodes(url, nodeScheme, 'Redis quorum', form, 'a node listed twice would vote twice');
  let prefix: string | undefined;
  let nodeTimeoutMs: number | undefined;
  const q = tail.indexOf('?');
  for (const [key, value] of queryOptions(q < 0 ? '' : tail.slice(q + 1), url)) {
    if (key === 'prefix') {
      prefix = redisPrefix(value);
    } else if (key === 'nodeTimeoutMs') {
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_BUSY_TIMEOUT_MS) {
        throw new InvalidArgumentError('url', `The store URL option "nodeTimeoutMs" must be a positive whole number of milliseconds, got "${value}"`);
      }
      nodeTimeoutMs = Number(value);
    } else {
      throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for redis+quorum://; expected prefix, nodeTimeoutMs`);
    }
  }
  return { scheme: 'redis+quorum', urls, ...(prefix === undefined ? {} : { prefix }), ...(nodeTimeoutMs === undefined ? {} : { nodeTimeoutMs }) };
}

function parseRedisCluster(url: string, nodeScheme: 'redis' | 'rediss'): RedisClusterStoreUrl {
  const form = 'redis+cluster://[user:password@]host:port[,host:port...][?prefix=app]';
  const { urls, tail } = redisNodes(url, nodeScheme, 'Redis Cluster', form, 'list each seed node once');
  const path = tail.replace(/[?#].*$/s, '');
  if (path !== '' && path !== '/' && path !== '/0') {
    throw new InvalidArgumentError('url', `A Redis Cluster has only database 0, got "${path}" in "${redactUrl(url)}"; expected ${form}`);
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

function parseMemory(rest: string, url: string): MemoryStoreUrl {
  // memory: takes no path and no options; accept the common memory:// spelling too.
  if (rest !== '' && rest !== '//') throw new InvalidArgumentError('url', `A memory: URL takes no path or options, got "${redactUrl(url)}"; write memory:`);
  return { scheme: 'memory' };
}

/** Percent-decodes a path, as URLs require (`%20` for a space, `%25` for `%`). */
function decodePath(path: string, url: string): string {
  if (!path.includes('%')) return path;
  try {
    return decodeURIComponent(path);
  } catch {
    throw new InvalidArgumentError('url', `Malformed percent-escape in the store URL "${redactUrl(url)}": write %25 for a literal %`);
  }
}

/** A message that names only the scheme: the rest of an unknown URL may hold credentials. */
function unsupportedScheme(scheme: string): InvalidArgumentError {
  const planned = PLANNED[scheme];
  if (planned) {
    return new InvalidArgumentError('url', `The ${planned} store is not supported yet; baton supports ${SUPPORTED_TEXT}`);
  }
  return new InvalidArgumentError('url', `Unknown store URL scheme "${scheme}:"; baton supports ${SUPPORTED_TEXT} (postgres:// and zk:// are not supported yet)`);
}

/** A bare file path is a common mistake for a store URL: suggest the sqlite: form. */
function pathHint(url: string): string {
  return /^[./~]/.test(url) ? ` (for a SQLite file write sqlite:${url})` : '';
}
