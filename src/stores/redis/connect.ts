/**
 * The ioredis clients that `openStore` (src/url.ts) makes for Redis store URLs: how they
 * reconnect, and the Cluster client of `redis+cluster://`. Not an export of the package; it
 * loads ioredis only when a store is opened.
 */
import { StoreUnavailableError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import type { RedisClusterStoreUrl } from '../../url.js';

/**
 * How long an ioredis client of `openStore` waits before reconnecting: 50 ms more each time,
 * at most 200 ms. ioredis's own default grows to 2 s: leases last seconds, and a quorum
 * node still reconnecting when two others go down leaves no majority.
 */
export function reconnectDelay(attempt: number): number {
  return Math.min(attempt * 50, 200);
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
 * Opens a Redis Cluster store: an ioredis `Cluster` seeded with the URL's nodes, with its
 * credentials and TLS for every node it discovers, connected before this returns (so that an
 * unreachable cluster or a wrong password fails here, with `StoreUnavailableError`).
 */
export async function openRedisCluster(parsed: RedisClusterStoreUrl, options: RedisClusterConnectOptions = {}): Promise<LockStore> {
  let Cluster: typeof import('ioredis').Cluster;
  try {
    ({ Cluster } = await import('ioredis'));
  } catch (error) {
    throw new StoreUnavailableError('redis', 'The Redis store needs the ioredis package: run `npm install ioredis`', { cause: error });
  }
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
    const reason = lastError ? `${(error as Error).message} (${lastError.message})` : (error as Error).message;
    const where = nodes.map((n) => `${n.host}:${n.port}`).join(',');
    throw new StoreUnavailableError('redis', `Cannot connect to the Redis Cluster at ${parsed.urls.length > 1 ? `seeds ${where}` : where}: ${password ? reason.replaceAll(password, '***') : reason}`, { cause: error });
  }
  const { createRedisStore } = await import('./index.js');
  return createRedisStore(client, { closeClient: true, ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }) });
}
