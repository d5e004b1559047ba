/**
 * What a Redis store can say when its server is out of reach: where the client connects (a
 * URL without credentials) and the client's last connection error (`connect ECONNREFUSED
 * 10.0.0.5:6379`), which the driver's own errors hide ("Connection is closed.", "Reached the
 * max retries per request limit", or a command that waits in the offline queue until core
 * gives up on it).
 *
 * The error comes from the client's `error` events, and only when the client already has a
 * listener for them: a listener of baton's would change what the client does without one
 * (ioredis prints each error; node-redis throws it, ending the process). Without one, the
 * message still names the address and the client's state. The stores on one client share
 * one set of listeners, removed when the last of them closes.
 */
import { redactUrl } from '../../url-parts.js';
import type { RedisClient } from './client.js';

/** The parts of a client, ioredis or node-redis, that tell where it connects and how it is doing. */
interface Observable {
  on?(event: string, listener: (...args: never[]) => void): unknown;
  off?(event: string, listener: (...args: never[]) => void): unknown;
  listenerCount?(event: string): number;
  /** ioredis: `ready` once connected; `connecting`, `reconnecting`, `close`, `end`, ... otherwise. */
  status?: string;
  /** node-redis: connected and ready for commands. */
  isReady?: boolean;
  /** ioredis `Redis` (host, port, path, tls) or node-redis (url, socket). */
  options?: {
    host?: string;
    port?: number;
    path?: string | null;
    tls?: unknown;
    url?: string;
    socket?: { host?: string; port?: number; path?: string; tls?: unknown };
    redisOptions?: { tls?: unknown };
  };
  /** ioredis `Cluster`: the seed nodes it was made with. */
  startupNodes?: readonly unknown[];
  isCluster?: boolean;
}

/** ConnectionWatch: what a store knows of its client's connection, for messages. */
export interface ConnectionWatch {
  /**
   * unreachable: `Cannot reach Redis at redis://10.0.0.5:6379: connect ECONNREFUSED
   * 10.0.0.5:6379` while the client is not connected, with `fallback` as the cause when the
   * client's own error is not known; undefined while it is connected, or cannot tell.
   */
  unreachable(fallback?: string): string | undefined;
  /** stop leaves the client's error log: its listeners go when the last store on the client stops. */
  stop(): void;
}

/** The last connection error of one client, shared by the stores on it: one set of listeners per client, however many stores. */
interface ErrorLog {
  last: Error | undefined;
  users: number;
  detach(): void;
}

const logs = new WeakMap<object, ErrorLog>();

/** Starts (or joins) the error log of `c`, if it already has an `error` listener; undefined otherwise. */
function joinLog(c: Observable): ErrorLog | undefined {
  const existing = logs.get(c);
  if (existing) {
    existing.users++;
    return existing;
  }
  if (typeof c.on !== 'function' || typeof c.listenerCount !== 'function' || c.listenerCount('error') === 0) return undefined;
  const onError = (error: Error & { lastNodeError?: Error }): void => void (log.last = error.lastNodeError ?? error);
  const onNodeError = (error: Error): void => void (log.last = error);
  const onReady = (): void => void (log.last = undefined);
  const log: ErrorLog = {
    last: undefined,
    users: 1,
    detach() {
      if (--log.users > 0) return;
      logs.delete(c);
      c.off?.('error', onError);
      c.off?.('node error', onNodeError);
      c.off?.('ready', onReady);
    },
  };
  c.on('error', onError);
  c.on('node error', onNodeError);
  c.on('ready', onReady);
  logs.set(c, log);
  return log;
}

/** watchConnection follows `client`'s connection, listening to its errors only where it already has a listener for them. */
export function watchConnection(client: RedisClient): ConnectionWatch {
  const c = client as unknown as Observable;
  const address = addressOf(c);
  const what = Array.isArray(c.startupNodes) || c.isCluster ? 'the Redis Cluster' : 'Redis';
  let log = joinLog(c);
  return {
    unreachable(fallback) {
      const connected = typeof c.status === 'string' ? c.status === 'ready' : typeof c.isReady === 'boolean' ? c.isReady : undefined;
      if (connected !== false || address === undefined) return undefined;
      const state = typeof c.status === 'string' ? `the client is ${c.status}` : 'the client is not connected';
      return `Cannot reach ${what} at ${address}: ${log?.last?.message ?? fallback ?? state}`;
    },
    stop() {
      log?.detach();
      log = undefined;
    },
  };
}

/** isReplyError: Redis answered with an error (ioredis's `ReplyError`, node-redis's `ErrorReply`): it was reached. */
export function isReplyError(error: unknown): boolean {
  return error instanceof Error && (error.name === 'ReplyError' || error.name === 'ErrorReply');
}

/** Where a client connects, as a URL without credentials: `redis://10.0.0.5:6379`, `rediss+cluster://a:7001,b:7002`. */
function addressOf(c: Observable): string | undefined {
  const o = c.options;
  if (!o) return undefined;
  if (Array.isArray(c.startupNodes) || c.isCluster) {
    const nodes = (c.startupNodes ?? []).map((node) => {
      if (typeof node === 'string') return redactUrl(node).replace(/^rediss?:\/\//, '');
      if (typeof node === 'number') return `localhost:${node}`;
      const { host = 'localhost', port = 6379 } = (node ?? {}) as { host?: string; port?: number };
      return `${hostText(host)}:${port}`;
    });
    return `${o.redisOptions?.tls ? 'rediss' : 'redis'}+cluster://${nodes.join(',')}`;
  }
  if (typeof o.url === 'string') return redactUrl(o.url);
  const socket = o.socket ?? o;
  if (socket.path) return `unix:${socket.path}`;
  if (socket.host === undefined && socket.port === undefined) return undefined;
  return `${socket.tls ? 'rediss' : 'redis'}://${hostText(socket.host ?? 'localhost')}:${socket.port ?? 6379}`;
}

/** An IPv6 address in brackets, as URLs write it. */
function hostText(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
