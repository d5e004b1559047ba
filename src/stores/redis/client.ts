/**
 * The few Redis commands the store sends, over whichever client the user has: ioredis
 * (`Redis` or `Cluster`) or node-redis (`createClient` or `createCluster`). Clients are
 * typed by shape, so baton imports neither; each adapter only renames calls.
 */
import { InvalidArgumentError } from '../../errors.js';

/** The part of an ioredis `Redis` or `Cluster` the store uses. */
export interface IORedisLike {
  evalsha(sha: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: (string | number)[]): Promise<unknown>;
  /** A second connection with the same options, for the wake-up subscription. */
  duplicate(): IORedisConnection & {
    subscribe(channel: string): Promise<unknown>;
    on(event: 'message', listener: (channel: string, message: string) => void): unknown;
    on(event: 'error', listener: (error: Error) => void): unknown;
  };
  quit(): Promise<unknown>;
  status?: string;
  disconnect?(): void;
  /** ioredis's options: `enableOfflineQueue: false` makes a command sent before `ready` fail. */
  options?: { enableOfflineQueue?: boolean };
  connect?(): Promise<unknown>;
  once?(event: 'ready' | 'close', listener: () => void): unknown;
  off?(event: 'ready' | 'close', listener: () => void): unknown;
  scan?(cursor: string, matchToken: 'MATCH', pattern: string, countToken: 'COUNT', count: number): Promise<[string, string[]]>;
  /** ioredis `Cluster`: one client per master, for SCAN and the wake-up subscription. */
  nodes?(role: 'master'): IORedisNodeLike[];
}

/** An ioredis `Redis` client of one node of a `Cluster`, which duplicates with other options. */
interface IORedisNodeLike extends IORedisLike {
  duplicate(override?: Record<string, unknown>): ReturnType<IORedisLike['duplicate']>;
}

/** What ending an ioredis connection needs. */
interface IORedisConnection {
  quit(): Promise<unknown>;
  status?: string;
  disconnect?(): void;
}

/** The socket of an ioredis `Redis` (`stream`), and a `Cluster`'s node clients. */
interface IORedisSockets {
  stream?: { destroy(): void };
  nodes?(role: 'all'): IORedisSockets[];
}

const dropped = new WeakSet<IORedisConnection>();

/**
 * Drops an ioredis connection at once. `disconnect()` only half-closes the socket and waits
 * up to ioredis's `disconnectTimeout` (2 s by default) for the server to close its side: a
 * stalled server never does, and that socket and timer kept the process alive for 2 s after
 * `close()` returned. Its sockets (a cluster's, one per node) are destroyed instead.
 */
function dropConnection(connection: IORedisConnection): void {
  // Once: a second disconnect() would start another disconnectTimeout timer on a socket that
  // has already closed; so would a first one on a connection that already ended (QUIT).
  if (dropped.has(connection) || connection.status === 'end') return;
  dropped.add(connection);
  const sockets = connection as IORedisSockets;
  const all = [sockets, ...(typeof sockets.nodes === 'function' ? sockets.nodes('all') : [])];
  connection.disconnect?.();
  for (const each of all) each.stream?.destroy();
}

/**
 * Ends an ioredis connection: QUIT when it is up, so that replies in flight arrive; at once
 * when it is not, because a QUIT queued on a connection that is down would wait for the
 * server, and the client would keep reconnecting meanwhile.
 */
async function end(connection: IORedisConnection, drop?: AbortSignal): Promise<void> {
  if (!drop?.aborted && (connection.status === undefined || connection.status === 'ready')) {
    // A QUIT that the server does not answer (it stalled) is cut when `drop` aborts.
    const cut = (): void => dropConnection(connection);
    drop?.addEventListener('abort', cut, { once: true });
    try {
      await connection.quit();
      return;
    } catch {
      // fall through: drop the connection
    } finally {
      drop?.removeEventListener('abort', cut);
    }
  }
  dropConnection(connection);
}

/** The part of a node-redis client (v4 and later) the store uses. */
export interface NodeRedisLike {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  subscribe(channel: string, listener: (message: string, channel: string) => void): Promise<unknown>;
  unsubscribe(channel: string): Promise<unknown>;
  scan?(cursor: string, options: { MATCH: string; COUNT: number }): Promise<{ cursor: string | number; keys: string[] }>;
  duplicate?(): NodeRedisLike & { connect(): Promise<unknown>; on(event: 'error', listener: (error: Error) => void): unknown };
  quit?(): Promise<unknown>;
  close?(): Promise<unknown>;
  destroy?(): void;
  /** node-redis cluster: its masters and a client for each, for SCAN. */
  masters?: readonly unknown[];
  nodeClient?(node: unknown): Promise<NodeRedisLike>;
}

/** RedisClient: an ioredis or node-redis client, single server or cluster, connected. */
export type RedisClient = IORedisLike | NodeRedisLike;

/** A subscription to one channel. */
export interface Subscription {
  /** close ends the subscription's connection; at once, without waiting for the server, when `drop` aborts. */
  close(drop?: AbortSignal): Promise<void>;
}

/** The commands the Redis store sends, the same whatever the client. */
export interface RedisCommands {
  evalsha(sha: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  eval(source: string, keys: readonly string[], args: readonly string[]): Promise<unknown>;
  /** Every key matching `pattern`, on every master. */
  scan(pattern: string): Promise<string[]>;
  /** Subscribes on a connection of its own; when `drop` aborts, that connection ends at once, subscribed yet or not. */
  subscribe(channel: string, onMessage: (message: string) => void, drop: AbortSignal): Promise<Subscription>;
  /** Ends the client; at once, without waiting for the server, when `drop` aborts. */
  quit(drop?: AbortSignal): Promise<void>;
  /**
   * null when a command can be sent now; else the client's first connection attempt, which
   * a command waits for (a client without an offline queue fails a command sent meanwhile).
   */
  firstConnection?(): Promise<void> | null;
}

const isIORedis = (client: RedisClient): client is IORedisLike => typeof (client as IORedisLike).evalsha === 'function';
const isNodeRedis = (client: RedisClient): client is NodeRedisLike => typeof (client as NodeRedisLike).evalSha === 'function';

/** commandsFor wraps the user's client; throws InvalidArgumentError for anything else. */
export function commandsFor(client: RedisClient): RedisCommands {
  if (client && isIORedis(client)) return ioredisCommands(client);
  if (client && isNodeRedis(client)) return nodeRedisCommands(client);
  throw new InvalidArgumentError('client', 'Expected `client` to be a connected ioredis (Redis or Cluster) or node-redis (createClient or createCluster) client');
}

/**
 * States of an ioredis client on its way to its first `ready`. A client that lost its
 * connection (`reconnecting`) is not waited for: a server that went down fails the command
 * at once, as a quorum's node must (its vote counts as failed without delay).
 */
const CONNECTING = new Set(['wait', 'connecting', 'connect']);

/** Clients seen `ready` once: after that, `connecting` is a reconnection, not waited for. */
const everReady = new WeakSet<IORedisLike>();

/** The connection attempt commands wait for, one per client however many stores and commands wait. */
const attempts = new WeakMap<IORedisLike, Promise<void>>();

/**
 * firstConnection: for an ioredis client without an offline queue that is making its first
 * connection, the outcome of that attempt (resolves at `ready`, rejects when the attempt
 * closes); null when commands can go now (ready, or the client queues them itself, or it is
 * reconnecting or has ended: the command then fails at once). Core bounds the wait by the
 * call's deadline and signal. The attempt is shared by every command of the client: two
 * listeners while it lasts, none after.
 */
function firstConnection(client: IORedisLike): Promise<void> | null {
  if (client.options?.enableOfflineQueue !== false || everReady.has(client)) return null;
  if (client.status === 'ready') {
    everReady.add(client);
    return null;
  }
  if (!CONNECTING.has(client.status ?? 'ready') || !client.once || !client.off) return null;
  let attempt = attempts.get(client);
  if (attempt) return attempt;
  attempt = new Promise<void>((resolve, reject) => {
    const settle = (error?: Error): void => {
      client.off!('ready', onReady);
      client.off!('close', onClose);
      attempts.delete(client);
      if (error) reject(error);
      else {
        everReady.add(client);
        resolve();
      }
    };
    const onReady = (): void => settle();
    const onClose = (): void => settle(new Error('Connection is closed.'));
    client.once!('ready', onReady);
    client.once!('close', onClose);
  });
  // Every waiting command handles the outcome; none waiting must not make it unhandled.
  attempt.catch(() => undefined);
  attempts.set(client, attempt);
  if (client.status === 'wait') void client.connect?.().catch(() => undefined);
  return attempt;
}

function ioredisCommands(client: IORedisLike): RedisCommands {
  if (client.status === 'ready') everReady.add(client);
  return {
    firstConnection: () => firstConnection(client),
    evalsha: (sha, keys, args) => client.evalsha(sha, keys.length, ...keys, ...args),
    eval: (source, keys, args) => client.eval(source, keys.length, ...keys, ...args),
    async scan(pattern) {
      // A cluster client that has not connected yet knows no master, and would scan none:
      // one command connects it (or fails, when the cluster is out of reach).
      if (typeof client.nodes === 'function' && client.nodes('master').length === 0) await client.eval('return 0', 0);
      const nodes = typeof client.nodes === 'function' ? client.nodes('master') : [client];
      const found: string[] = [];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const [next, keys] = await node.scan!(cursor, 'MATCH', pattern, 'COUNT', 500);
          cursor = next;
          found.push(...keys);
        } while (cursor !== '0');
      }
      return found;
    },
    async subscribe(channel, onMessage, drop) {
      if (typeof client.nodes === 'function') return clusterSubscription(client, channel, onMessage, drop);
      drop.throwIfAborted();
      const subscriber = client.duplicate();
      drop.addEventListener('abort', () => dropConnection(subscriber), { once: true });
      subscriber.on('message', (_channel, message) => onMessage(message));
      // The connection reconnects and subscribes again by itself; a wake-up missed meanwhile
      // costs the waiter one poll. Without a listener ioredis would report every drop as an
      // unhandled 'error' event in the user's process.
      subscriber.on('error', () => undefined);
      try {
        await subscriber.subscribe(channel);
      } catch (error) {
        await end(subscriber, drop);
        throw error;
      }
      return { close: (now) => end(subscriber, now) };
    },
    quit: (now) => end(client, now),
  };
}

/**
 * The wake-up subscription on an ioredis `Cluster`: one connection to one master at a time
 * (a PUBLISH reaches every node of a cluster), and after it drops, a connection to the next
 * master, 50 ms later and up to 500 ms more each time it fails again; a wake-up missed
 * meanwhile costs a waiter one poll. The cluster client's own subscriber (`duplicate()`)
 * picks a new node at once each time its connection ends, with no delay: while the nodes
 * refuse or reset connections, it reconnected thousands of times a second, burning a core
 * and adding a listener to a socket each time (MaxListenersExceededWarning).
 */
async function clusterSubscription(client: IORedisLike, channel: string, onMessage: (message: string) => void, drop: AbortSignal): Promise<Subscription> {
  type Connection = ReturnType<IORedisLike['duplicate']>;
  let closed = false;
  let failures = 0;
  let turn = 0;
  let current: Connection | null = null;
  let timer: ReturnType<typeof setTimeout> | undefined;
  drop.addEventListener('abort', () => {
    closed = true;
    clearTimeout(timer);
    if (current) dropConnection(current);
  }, { once: true });
  const retry = (): void => {
    if (closed) return;
    timer = setTimeout(() => void connect().catch(() => undefined), Math.min(50 * ++failures, 500));
  };
  const connect = async (): Promise<void> => {
    timer = undefined;
    const masters = client.nodes!('master');
    const node = masters[turn++ % Math.max(1, masters.length)];
    if (!node) {
      retry();
      throw new Error('The Redis Cluster client knows no master yet');
    }
    // No reconnection of its own: when it ends, the next master is tried (retry, above).
    const connection = node.duplicate({ retryStrategy: () => null, lazyConnect: false, enableOfflineQueue: true, readOnly: false });
    current = connection;
    connection.on('message', (_channel, message) => onMessage(message));
    connection.on('error', () => undefined);
    (connection as unknown as { once(event: 'end', listener: () => void): unknown }).once('end', () => {
      if (current !== connection) return;
      current = null;
      retry();
    });
    try {
      await connection.subscribe(channel);
      failures = 0;
    } catch (error) {
      connection.disconnect?.(); // ends it, which tries the next master
      throw error;
    }
  };
  // A cluster client that has not connected yet knows no master: one command connects it.
  if (client.nodes!('master').length === 0) await client.eval('return 0', 0);
  try {
    await connect();
  } catch (error) {
    closed = true;
    clearTimeout(timer);
    if (current) await end(current, drop);
    throw error;
  }
  return {
    async close(now) {
      closed = true;
      clearTimeout(timer);
      const connection = current;
      current = null;
      if (connection) await end(connection, now);
    },
  };
}

function nodeRedisCommands(client: NodeRedisLike): RedisCommands {
  const isCluster = Array.isArray(client.masters) && typeof client.nodeClient === 'function';
  const end = async (c: NodeRedisLike, drop?: AbortSignal): Promise<void> => {
    if (drop?.aborted) {
      c.destroy?.();
      return;
    }
    const cut = (): void => c.destroy?.();
    drop?.addEventListener('abort', cut, { once: true });
    try {
      await (typeof c.close === 'function' ? c.close() : c.quit?.());
    } catch {
      c.destroy?.();
    } finally {
      drop?.removeEventListener('abort', cut);
    }
  };
  return {
    evalsha: (sha, keys, args) => client.evalSha(sha, { keys: [...keys], arguments: [...args] }),
    eval: (source, keys, args) => client.eval(source, { keys: [...keys], arguments: [...args] }),
    async scan(pattern) {
      const nodes = isCluster ? await Promise.all(client.masters!.map((master) => client.nodeClient!(master))) : [client];
      const found: string[] = [];
      for (const node of nodes) {
        let cursor = '0';
        do {
          const reply = await node.scan!(cursor, { MATCH: pattern, COUNT: 500 });
          cursor = String(reply.cursor);
          found.push(...reply.keys);
        } while (cursor !== '0');
      }
      return found;
    },
    async subscribe(channel, onMessage, drop) {
      drop.throwIfAborted();
      // A cluster client keeps a connection of its own for pub/sub; a single client must not
      // be put in subscriber mode, so it gets a duplicate.
      if (isCluster || typeof client.duplicate !== 'function') {
        await client.subscribe(channel, (message) => onMessage(message));
        return { close: async () => void (await client.unsubscribe(channel).catch(() => undefined)) };
      }
      const subscriber = client.duplicate();
      subscriber.on('error', () => undefined); // it reconnects by itself; see the ioredis subscriber
      drop.addEventListener('abort', () => subscriber.destroy?.(), { once: true });
      try {
        await subscriber.connect();
        await subscriber.subscribe(channel, (message) => onMessage(message));
      } catch (error) {
        await end(subscriber, drop);
        throw error;
      }
      return { close: (now) => end(subscriber, now) };
    },
    quit: (now) => end(client, now),
  };
}
