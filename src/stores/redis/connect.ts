/**
 * The ioredis clients that `openStore` makes for Redis store URLs (./url.ts), and the stores
 * over them: one server, a Redlock quorum, a Cluster. Not an export of the package; it loads
 * ioredis only when a store is opened. It takes the parsed URLs' fields rather than their
 * types, so that it does not import the module that imports it.
 */
import { StoreUnavailableError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { redactUrl } from '../../url-parts.js';
import { tcpFailure } from '../tcp-failure.js';
import { isReplyError } from './reach.js';

/**
 * How long an ioredis client of `openStore` waits before reconnecting: 50 ms more each time,
 * at most 200 ms. ioredis's own default grows to 2 s: leases last seconds, and a quorum
 * node still reconnecting when two others go down leaves no majority.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 50, 200);
}

/**
 * The options of every ioredis client `openStore` makes for one server. `disconnectTimeout`:
 * `disconnect()` (only called on a connection that is down or given up; the store ends a
 * live one with QUIT) drops the socket at once; ioredis's default waits up to 2 s for a
 * socket that has already closed, which kept `baton ls` on a Redis that refused the
 * connection alive 2 s after it had failed.
 */
const SERVER_OPTIONS = { maxRetriesPerRequest: 2, retryStrategy: reconnectDelay, disconnectTimeout: 0 } as const;

/**
 * lastErrorOf keeps `client`'s last connection error (its `error` events, which ioredis
 * emits for each failed connection attempt), so that a failure can say why: ioredis's
 * `connect()` rejects with "Connection is closed." whatever happened.
 */
function lastErrorOf(client: { on(event: 'error', listener: (error: Error) => void): unknown }): () => Error | undefined {
  let last: Error | undefined;
  // Also what keeps reconnection errors from being printed: they reach callers as rejected commands.
  client.on('error', (error) => void (last = error));
  return () => last;
}

/** openRedis opens a store on one Redis server: `url` is a redis:// or rediss:// URL for ioredis (a `RedisStoreUrl`). */
export async function openRedis(parsed: { readonly url: string; readonly prefix?: string }): Promise<LockStore> {
  const Redis = (await ioredis()).Redis;
  const client = new Redis(parsed.url, { lazyConnect: true, ...SERVER_OPTIONS });
  const lastError = lastErrorOf(client);
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const cause = lastError() ?? (error as Error);
    // Reached, and refused (a wrong password), or not reached at all.
    const verb = isReplyError(cause) ? 'connect to' : 'reach';
    throw new StoreUnavailableError('redis', `Cannot ${verb} Redis at ${redactUrl(parsed.url)}: ${cause.message.replaceAll(parsed.url, redactUrl(parsed.url))}`, { cause });
  }
  const { createRedisStore } = await import('./store.js');
  return createRedisStore(client, { closeClient: true, ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }) });
}

/**
 * openRedisQuorum opens a Redlock quorum (a `RedisQuorumStoreUrl`): one ioredis client per
 * node, each a fenceless node store. It fails unless a majority of the nodes connect within
 * 5 s, at once when every node has tried once without a majority; the others keep reconnecting in
 * the background, and count as failed votes until they do.
 */
export async function openRedisQuorum(parsed: { readonly urls: readonly string[]; readonly prefix?: string; readonly nodeTimeoutMs?: number }): Promise<LockStore> {
  const Redis = (await ioredis()).Redis;
  const nodes = parsed.urls.map((url) => {
    // A quorum's node never runs a command late: by default ioredis keeps a command sent while
    // the node is down (its offline queue), and sends again one whose reply a dropped
    // connection lost, once it reconnects; a grant that the quorum gave up (and rolled back)
    // would then take the lock on a node that restarted empty, for an owner that may be
    // asking again, and count as its vote. Such a command fails at once instead.
    const client = new Redis(url, { ...SERVER_OPTIONS, enableOfflineQueue: false, autoResendUnfulfilledCommands: false });
    return { client, lastError: lastErrorOf(client) };
  });
  const clients = nodes.map((node) => node.client);
  const majority = Math.floor(clients.length / 2) + 1;
  // Waits until a majority is connected, or until every node has made its first connection
  // attempt (as one server's URL fails at its first refusal), or 5 s.
  const ready = clients.map((client) => client.status === 'ready');
  const failed = clients.map(() => false);
  const unlisten: (() => void)[] = [];
  await new Promise<void>((done) => {
    const timer = setTimeout(done, 5000);
    const check = (): void => {
      // Every node has answered its first attempt one way or the other: wait no longer.
      const settled = ready.every((r, i) => r || failed[i]);
      if (ready.filter(Boolean).length < majority && !settled) return;
      clearTimeout(timer);
      done();
    };
    clients.forEach((client, i) => {
      const onReady = (): void => {
        ready[i] = true;
        check();
      };
      const onClose = (): void => {
        failed[i] = true;
        check();
      };
      client.on('ready', onReady);
      client.on('close', onClose);
      unlisten.push(() => {
        client.off('ready', onReady);
        client.off('close', onClose);
      });
    });
    check();
  });
  for (const stop of unlisten) stop();
  if (ready.filter(Boolean).length < majority) {
    for (const client of clients) client.disconnect();
    const down = parsed.urls.flatMap((url, i) => (ready[i] ? [] : [`${redactUrl(url)}: ${nodes[i]!.lastError()?.message ?? 'not connected within 5 s'}`]));
    throw new StoreUnavailableError('redis', `Cannot reach a majority (${majority} of ${clients.length}) of the Redis quorum's nodes: ${down.join('; ')}`, { cause: nodes.find((node, i) => !ready[i] && node.lastError())?.lastError() });
  }
  const [{ createRedisStore }, { quorum }] = await Promise.all([import('./store.js'), import('../quorum/store.js')]);
  const prefix = parsed.prefix === undefined ? {} : { prefix: parsed.prefix };
  return quorum(clients.map((client) => createRedisStore(client, { closeClient: true, fencing: false, ...prefix })), parsed.nodeTimeoutMs === undefined ? {} : { nodeTimeoutMs: parsed.nodeTimeoutMs });
}

/** Where to connect for a node, by the `host:port` the cluster announces for it (ioredis's `natMap`). */
export type NodeAddressMap = Readonly<Record<string, { readonly host: string; readonly port: number }>>;

export interface RedisClusterConnectOptions {
  /**
   * Connect to these addresses instead of those the nodes announce (CLUSTER SLOTS), keyed
   * `ip:port` as announced (`127.0.0.1:7001`): for a cluster behind NAT or port forwarding,
   * and for the fault suite, whose workers reach each node through a proxy of their own.
   */
  readonly natMap?: NodeAddressMap;
}

/**
 * openRedisCluster opens a Redis Cluster store (a `RedisClusterStoreUrl`): an ioredis `Cluster`
 * seeded with the URL's nodes, with its credentials and TLS for every node it discovers,
 * connected before this returns (so that an unreachable cluster or a wrong password fails
 * here, with `StoreUnavailableError`).
 */
export async function openRedisCluster(parsed: { readonly urls: readonly string[]; readonly prefix?: string }, options: RedisClusterConnectOptions = {}): Promise<LockStore> {
  const Cluster = (await ioredis()).Cluster;
  const seeds = parsed.urls.map((url) => new URL(url));
  const first = seeds[0]!;
  const username = decodeURIComponent(first.username);
  const password = decodeURIComponent(first.password);
  const tls = first.protocol === 'rediss:';
  const nodes = seeds.map((seed) => ({ host: seed.hostname.replace(/^\[(.*)\]$/, '$1'), port: Number(seed.port || 6379) }));
  const client = new Cluster(nodes, {
    lazyConnect: true,
    // The cluster client reconnects as a whole when every node's connection is gone; its
    // default waits up to 2 s, as long as ioredis's single-server default (see reconnectDelay).
    clusterRetryStrategy: reconnectDelay,
    // With TLS, connect by the names given, so that the certificates' names are checked against them.
    ...(tls ? { dnsLookup: (address: string, done: (error: null, address: string) => void) => done(null, address) } : {}),
    ...(options.natMap ? { natMap: Object.fromEntries(Object.entries(options.natMap).map(([key, to]) => [key, { host: to.host, port: to.port }])) } : {}),
    redisOptions: {
      maxRetriesPerRequest: 2,
      // As for one server (SERVER_OPTIONS): a node's connection that is dropped is not waited
      // for; a refused one would otherwise hold the process 2 s after a failed open.
      disconnectTimeout: 0,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      ...(tls ? { tls: {} } : {}),
    },
  });
  let lastError: Error | undefined;
  // Reconnection errors reach callers as rejected commands; the last one explains a failed connect.
  client.on('error', (error: Error & { lastNodeError?: Error }) => void (lastError = error.lastNodeError ?? error));
  client.on('node error', (error: Error) => void (lastError = error));
  try {
    await client.connect();
  } catch (error) {
    client.disconnect();
    const where = `${tls ? 'rediss' : 'redis'}+cluster://${nodes.map((n) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`).join(',')}`;
    // ioredis says "None of startup nodes is available (Connection is closed.)" whatever
    // happened: when no seed takes a TCP connection, their errors say why.
    const refused = await Promise.all(nodes.map((n) => tcpFailure(n.host, n.port)));
    const reason = refused.every((why) => why !== undefined)
      ? refused.join('; ')
      : lastError ? `${(error as Error).message} (${lastError.message})` : (error as Error).message;
    throw new StoreUnavailableError('redis', `Cannot reach the Redis Cluster at ${where}: ${password ? reason.replaceAll(password, '***') : reason}`, { cause: error });
  }
  const { createRedisStore } = await import('./store.js');
  return createRedisStore(client, { closeClient: true, ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }) });
}

/** The ioredis module, or `StoreUnavailableError` that says how to install it. */
async function ioredis(): Promise<{ Redis: typeof import('ioredis').Redis; Cluster: typeof import('ioredis').Cluster }> {
  try {
    const { Redis, Cluster } = await import('ioredis');
    return { Redis, Cluster };
  } catch (error) {
    throw new StoreUnavailableError('redis', 'The Redis store needs the ioredis package: run `npm install ioredis`', { cause: error });
  }
}
