/**
 * Starts a real redis-server on a free loopback port for a test file, restarts it, and
 * stops it by its PID. `scripts/setup` installs the server (Debian package redis-server)
 * when it is missing. No persistence: a restart loses the data, the harshest case.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Cluster, Redis } from 'ioredis';
import { adopt } from './children.js';
import { cleanUp } from './clean-up.js';
import { freePort, killProcess } from './process.js';

export interface RedisServer {
  readonly port: number;
  /** The server process's PID (a new one after each restart). */
  readonly pid: number;
  /** `redis://127.0.0.1:port`, or `rediss://` and the password when the server has them. */
  readonly url: string;
  /** client: a new ioredis connection, closed by `stop()`. */
  client(): Redis;
  /** restart kills the server and starts it again on the same port: its data is gone. */
  restart(): Promise<void>;
  /** down kills the server (SIGKILL) and leaves it down; `up` starts it again on the same port. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** pause SIGSTOPs the server: its sockets stay open and nothing answers (a stalled server); `resume` SIGCONTs it. */
  pause(): void;
  resume(): void;
  /** stop kills the server (paused or not) and closes the helper's clients. */
  stop(): Promise<void>;
}



/** RedisSecurity: a server that takes TLS only (with these files) and asks for a password. */
export interface RedisSecurity {
  readonly tls?: { readonly ca: string; readonly cert: string; readonly key: string; readonly clientCertificates?: boolean };
  readonly password?: string;
}

export async function startRedis(extra: string[] = [], security: RedisSecurity = {}): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-redis-'));
  const port = await freePort();
  const clients: Redis[] = [];
  const { tls, password } = security;
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-ca-cert-file', tls.ca, '--tls-cert-file', tls.cert, '--tls-key-file', tls.key, '--tls-auth-clients', tls.clientCertificates ? 'yes' : 'no']
    : ['--port', String(port)];
  // How the helper's own clients connect (with the client certificate when the server asks for one).
  const options = {
    port,
    host: '127.0.0.1',
    ...(password === undefined ? {} : { password }),
    ...(tls ? { tls: { ca: readFileSync(tls.ca), ...(tls.clientCertificates ? { cert: readFileSync(tls.cert), key: readFileSync(tls.key) } : {}) } } : {}),
  };

  const launch = async (): Promise<ChildProcess> => {
    const child = adopt(spawn('redis-server', [...listen, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, ...(password === undefined ? [] : ['--requirepass', password]), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] }), `redis-server on port ${port}`);
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const ping = new Redis({ ...options, lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
    ping.on('error', () => undefined);
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await ping.connect();
        await ping.ping();
        break;
      } catch (error) {
        ping.disconnect();
        if (Date.now() > deadline || child.exitCode !== null) {
          await killProcess(child);
          throw new Error(`redis-server did not start serving on port ${port} within 10 s: ${output}`, { cause: error });
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
    ping.disconnect();
    return child;
  };

  let child = await launch();
  return {
    port,
    get pid() {
      return child.pid!;
    },
    url: `${tls ? 'rediss' : 'redis'}://${password === undefined ? '' : `:${encodeURIComponent(password)}@`}127.0.0.1:${port}`,
    client() {
      const client = new Redis(options);
      client.on('error', () => undefined); // reconnects on its own; errors reach the caller as rejected commands
      clients.push(client);
      return client;
    },
    async restart() {
      await killProcess(child);
      child = await launch();
    },
    async down() {
      await killProcess(child);
    },
    async up() {
      if (child.exitCode === null && child.signalCode === null) return;
      child = await launch();
    },
    pause() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGSTOP');
    },
    resume() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
    },
    stop: () => cleanUp(`stop redis-server on port ${port}`, {
      'disconnect its clients': () => {
        for (const client of clients.splice(0)) client.disconnect();
      },
      'kill the server': () => killProcess(child),
      'remove its folder': () => rmSync(dir, { recursive: true, force: true }),
    }),
  };
}

export interface RedisCluster {
  readonly nodes: readonly RedisServer[];
  /** A new ioredis Cluster client, closed by `stop()`. */
  client(): Cluster;
  /** Restarts every node: the data is gone (unless the nodes persist), the cluster layout (nodes.conf) stays. */
  restart(): Promise<void>;
  /**
   * restartNode kills node `index` (SIGKILL) and starts it again on the same port, then waits
   * until every node serves again: a restarted master refuses commands (CLUSTERDOWN) for its
   * first 2 s, Redis's own delay before it takes writes again.
   */
  restartNode(index: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a Redis Cluster of `masters` real redis-server processes on loopback, no replicas,
 * with the hash slots spread by `redis-cli --cluster create`, and waits until it serves.
 * `extra` goes to every node's command line (`['--appendonly', 'yes', '--appendfsync', 'always']`
 * for nodes that keep their data across a restart).
 */
export async function startRedisCluster(masters = 3, extra: string[] = []): Promise<RedisCluster> {
  const nodes: RedisServer[] = [];
  const clients: Cluster[] = [];
  try {
    for (let i = 0; i < masters; i++) nodes.push(await startRedis(['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${i}.conf`, '--cluster-node-timeout', '2000', ...extra]));
    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes']);
    await serving(nodes);
  } catch (error) {
    await cleanUp('stop the Redis Cluster that did not come up', Object.fromEntries(nodes.map((node) => [`stop node on port ${node.port}`, () => node.stop()])), { failed: true });
    throw error;
  }
  return {
    nodes,
    client() {
      const client = new Cluster(nodes.map((n) => ({ host: '127.0.0.1', port: n.port })));
      client.on('error', () => undefined);
      clients.push(client);
      return client;
    },
    async restart() {
      for (const node of nodes) await node.restart();
      await serving(nodes);
    },
    async restartNode(index) {
      await nodes[index]!.restart();
      await serving(nodes);
    },
    stop: () => cleanUp(`stop the Redis Cluster on ports ${nodes.map((n) => n.port).join(', ')}`, {
      'disconnect its clients': () => {
        for (const client of clients.splice(0)) client.disconnect();
      },
      ...Object.fromEntries(nodes.map((node) => [`stop node on port ${node.port}`, () => node.stop()])),
    }),
  };
}

/** Waits until every node reports `cluster_state:ok`, 20 s at most. */
async function serving(nodes: readonly RedisServer[]): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (const node of nodes) {
    const probe = new Redis({ port: node.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    probe.on('error', () => undefined);
    try {
      let info = '';
      for (;;) {
        info = String(await probe.cluster('INFO').catch((error: unknown) => `(no answer: ${String(error)})`));
        if (info.includes('cluster_state:ok')) break;
        if (Date.now() > deadline) throw new Error(`Redis Cluster node on port ${node.port} did not report cluster_state:ok within 20 s: ${info}`);
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    } finally {
      probe.disconnect();
    }
  }
}
