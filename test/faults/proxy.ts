/**
 * The fault proxy: a TCP proxy of our own, on loopback, in front of one server. A client
 * connects to the proxy's port instead of the server's; the harness switches the mode of
 * every connection, current and future, at any time:
 *
 * - `pass`: bytes flow both ways untouched;
 * - `latency`: each chunk is held `latencyMs` ± `jitterMs` (order kept per direction);
 * - `blackhole`: connections stay open but nothing arrives, both ways (a network
 *   partition: nothing errors). What was sent meanwhile is held and delivered, in order,
 *   when the partition heals, as TCP's retransmissions would: a TCP stream never loses
 *   bytes in the middle and carries on, so neither does the proxy;
 * - `reset`: open connections are reset (RST) and new ones are reset at once;
 * - `half-open`: requests reach the server, replies are dropped (the client keeps a
 *   connection the other side has in effect stopped answering on). Such a connection has a
 *   hole in its reply stream, so it never carries bytes again: when the mode changes, it is
 *   reset, as the server's TCP eventually does.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'latency' | 'blackhole' | 'reset' | 'half-open';

export interface FaultProxy {
  readonly port: number;
  readonly mode: ProxyMode;
  /** set changes the mode of every connection; latency settings apply from the next chunk. */
  set(mode: ProxyMode, options?: { latencyMs?: number; jitterMs?: number }): void;
  /** connections: how many client connections are open. */
  readonly connections: number;
  /** accepted: how many client connections were made to it so far, reset ones included. */
  readonly accepted: number;
  close(): Promise<void>;
}

interface Pipe {
  client: Socket;
  server: Socket;
  /** When the last held chunk of each direction is due, so that order is kept. */
  due: { up: number; down: number };
  /** Chunks held by a blackhole, delivered when it heals. */
  held: { direction: 'up' | 'down'; chunk: Buffer }[];
  /** A reply was dropped on this connection: it is reset when the half-open mode ends. */
  broken: boolean;
}

export async function createFaultProxy(target: { host?: string; port: number }, options?: { random?: () => number }): Promise<FaultProxy> {
  const random = options?.random ?? Math.random;
  const pipes = new Set<Pipe>();
  let mode: ProxyMode = 'pass';
  let latencyMs = 0;
  let jitterMs = 0;

  const forward = (pipe: Pipe, direction: 'up' | 'down', chunk: Buffer): void => {
    const to = direction === 'up' ? pipe.server : pipe.client;
    if (mode === 'reset') return;
    if (mode === 'blackhole' || pipe.held.length > 0) {
      pipe.held.push({ direction, chunk });
      return;
    }
    if (mode === 'half-open' && direction === 'down') {
      pipe.broken = true;
      return;
    }
    if (mode !== 'latency') {
      if (!to.destroyed) to.write(chunk);
      return;
    }
    const delay = Math.max(0, latencyMs + (random() * 2 - 1) * jitterMs);
    const at = Math.max(pipe.due[direction], Date.now() + delay);
    pipe.due[direction] = at;
    setTimeout(() => {
      if (!to.destroyed) to.write(chunk);
    }, at - Date.now());
  };

  let accepted = 0;
  const server: Server = createServer((client) => {
    accepted++;
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect({ host: target.host ?? '127.0.0.1', port: target.port });
    const pipe: Pipe = { client, server: upstream, due: { up: 0, down: 0 }, held: [], broken: false };
    pipes.add(pipe);
    const end = (): void => {
      pipes.delete(pipe);
      if (!client.destroyed) client.destroy();
      if (!upstream.destroyed) upstream.destroy();
    };
    client.on('data', (chunk: Buffer) => forward(pipe, 'up', chunk));
    upstream.on('data', (chunk: Buffer) => forward(pipe, 'down', chunk));
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  return {
    port,
    get mode() {
      return mode;
    },
    get connections() {
      return pipes.size;
    },
    get accepted() {
      return accepted;
    },
    set(next, settings) {
      const previous = mode;
      mode = next;
      latencyMs = settings?.latencyMs ?? latencyMs;
      jitterMs = settings?.jitterMs ?? jitterMs;
      for (const pipe of [...pipes]) {
        if (next === 'reset' || (previous === 'half-open' && next !== 'half-open' && pipe.broken)) {
          pipe.client.resetAndDestroy();
          pipe.server.destroy();
          pipes.delete(pipe);
        } else if (next !== 'blackhole' && pipe.held.length > 0) {
          // The partition healed: what was sent during it arrives now, in order, under the new mode.
          for (const { direction, chunk } of pipe.held.splice(0)) forward(pipe, direction, chunk);
        }
      }
    },
    async close() {
      for (const pipe of pipes) {
        pipe.client.destroy();
        pipe.server.destroy();
      }
      pipes.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
