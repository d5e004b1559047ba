/**
 * Starts real ZooKeeper servers (Debian package `zookeeper`, 3.8) on free loopback ports with
 * temporary data directories: one standalone server, or a 3-server ensemble. Servers tick
 * every 100 ms, so the smallest session timeout they negotiate is 200 ms (two ticks) and a
 * session expires within a tick of its timeout. Stopped by PID (recorded through
 * `children.ts`); a restart keeps the data directory, as ZooKeeper runs.
 * `scripts/setup` installs the package.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { createZooKeeperStore, type ZooKeeperClient, type ZooKeeperDriver } from '../../src/stores/zookeeper/index.js';
import type { Backing } from '../contract/suite.js';
import { adopt } from './children.js';
import { cleanUp } from './clean-up.js';
import { freePort, killProcess } from './process.js';

/** The driver, node-zookeeper-client (CommonJS, without types of its own). */
export const zookeeper = createRequire(import.meta.url)('node-zookeeper-client') as ZooKeeperDriver;

/** The jars a server runs on: the Debian package's, whose manifest names the rest of its class path. */
export const ZOOKEEPER_CLASSPATH = ['/usr/share/java/zookeeper.jar', '/usr/share/java/slf4j-nop.jar'].join(':');

/** TICK_MS: the servers' tick; sessions are negotiated between 2 and 600 ticks. */
export const TICK_MS = 100;

export interface ZooKeeperEnsemble {
  /** `host:port` of each server, in server order. */
  readonly hosts: readonly string[];
  /** The connection string of the given servers (default: all), for a client. */
  connectionString(servers?: readonly number[]): string;
  /** client: a new node-zookeeper-client client on the given servers, connecting; closed by `stop()`. */
  client(options?: { sessionTimeout?: number; servers?: readonly number[] }): ZooKeeperClient;
  pid(i: number): number;
  /** kill SIGKILLs server `i`. */
  kill(i: number): Promise<void>;
  /** start starts server `i` again on its data directory. */
  start(i: number): Promise<void>;
  /** restart kills every server and starts them again on their data. */
  restart(): Promise<void>;
  /** pause SIGSTOPs server `i` (its sockets stay open, nothing answers); `resume` SIGCONTs it. */
  pause(i: number): void;
  resume(i: number): void;
  stop(): Promise<void>;
}

/** startZooKeeper starts one standalone server, or an ensemble of 3. */
export async function startZooKeeper(servers: 1 | 3 = 1): Promise<ZooKeeperEnsemble> {
  const root = mkdtempSync(join(tmpdir(), 'baton-zk-'));
  const ports = await Promise.all(Array.from({ length: servers }, async () => ({ client: await freePort(), peer: await freePort(), election: await freePort() })));
  const hosts = ports.map((p) => `127.0.0.1:${p.client}`);
  const children: (ChildProcess | null)[] = ports.map(() => null);
  const outputs: string[] = ports.map(() => '');
  const clients: ZooKeeperClient[] = [];

  for (const [i, p] of ports.entries()) {
    const dir = join(root, `s${i}`);
    mkdirSync(join(dir, 'data'), { recursive: true });
    const lines = [
      `tickTime=${TICK_MS}`,
      `dataDir=${join(dir, 'data')}`,
      `clientPort=${p.client}`,
      'clientPortAddress=127.0.0.1',
      'minSessionTimeout=200',
      'maxSessionTimeout=60000',
      'initLimit=50',
      'syncLimit=10',
      'admin.enableServer=false',
      '4lw.commands.whitelist=srvr,ruok',
      'forceSync=no',
    ];
    if (servers > 1) {
      writeFileSync(join(dir, 'data', 'myid'), `${i + 1}\n`);
      for (const [j, q] of ports.entries()) lines.push(`server.${j + 1}=127.0.0.1:${q.peer}:${q.election}`);
    }
    writeFileSync(join(dir, 'zoo.cfg'), `${lines.join('\n')}\n`);
  }

  const launch = (i: number): void => {
    const main = servers > 1 ? 'org.apache.zookeeper.server.quorum.QuorumPeerMain' : 'org.apache.zookeeper.server.ZooKeeperServerMain';
    const child = adopt(spawn('java', ['-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-Dzookeeper.jmx.log4j.disable=true', '-cp', ZOOKEEPER_CLASSPATH, main, join(root, `s${i}`, 'zoo.cfg')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    }), `zookeeper server ${i + 1} on port ${ports[i]!.client}`);
    outputs[i] = '';
    child.stdout!.on('data', (chunk: Buffer) => (outputs[i] += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (outputs[i] += chunk.toString()));
    children[i] = child;
  };

  /** serving: the server answers `srvr` with its mode (a server without a quorum says it is not serving). */
  const serving = (i: number): Promise<boolean> => new Promise((resolve) => {
    const socket = connect(ports[i]!.client, '127.0.0.1');
    let text = '';
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.on('connect', () => socket.write('srvr'));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.on('end', () => done(/Mode: (standalone|leader|follower)/.test(text)));
    socket.on('error', () => done(false));
  });

  /** Waits until the servers serve, 30 s at most; a server that exits fails it at once. */
  const waitServing = async (indices: number[]): Promise<void> => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const states = await Promise.all(indices.map(serving));
      if (states.every(Boolean)) return;
      const dead = indices.find((i) => children[i]!.exitCode !== null);
      if (Date.now() > deadline || dead !== undefined) {
        throw new Error(`ZooKeeper did not serve within 30 s${dead === undefined ? '' : ` (server ${dead + 1} exited)`}: ${indices.map((i) => `s${i + 1}: ${outputs[i]}`).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  };

  const stop = (name: string, after?: { failed: boolean }): Promise<void> => cleanUp(name, {
    'close its clients': () => {
      for (const client of clients.splice(0)) client.close();
    },
    ...Object.fromEntries(children.map((child, i) => [`kill server ${i + 1}`, () => killProcess(child)])),
    'remove its data directories': () => rmSync(root, { recursive: true, force: true }),
  }, after);

  const all = ports.map((_, i) => i);
  for (const i of all) launch(i);
  try {
    await waitServing(all);
  } catch (error) {
    await stop('stop the ZooKeeper servers that did not start', { failed: true });
    throw error;
  }

  const live = (i: number): ChildProcess | null => {
    const child = children[i];
    return child && child.exitCode === null && child.signalCode === null ? child : null;
  };
  return {
    hosts,
    connectionString: (indices = all) => indices.map((i) => hosts[i]!).join(','),
    client(options = {}) {
      const client = zookeeper.createClient((options.servers ?? all).map((i) => hosts[i]!).join(','), { sessionTimeout: options.sessionTimeout ?? 1000, spinDelay: 100 });
      client.connect();
      clients.push(client);
      return client;
    },
    pid: (i) => children[i]!.pid!,
    kill: (i) => killProcess(children[i]!),
    async start(i) {
      launch(i);
      await waitServing([i]);
    },
    async restart() {
      await Promise.all(all.map((i) => killProcess(children[i]!)));
      for (const i of all) launch(i);
      await waitServing(all);
    },
    pause: (i) => void live(i)?.kill('SIGSTOP'),
    resume: (i) => void live(i)?.kill('SIGCONT'),
    stop: () => stop(`stop ZooKeeper on ports ${ports.map((p) => p.client).join(', ')}`),
  };
}

/**
 * zookeeperBacking: the contract suite's backing on `ensemble()` (read when a test starts): a
 * fresh root is a fresh, empty place on the same servers, and each connect is a store with a
 * client (and so a session, of 1 s) of its own, which the store closes.
 */
export function zookeeperBacking(ensemble: () => ZooKeeperEnsemble, sessionTimeout = 1000): () => Promise<Backing> {
  return async () => {
    const root = `/t${randomBytes(4).toString('hex')}`;
    return {
      connect: () => createZooKeeperStore(ensemble().client({ sessionTimeout }), { root, closeClient: true }),
      restart: () => ensemble().restart(),
      cleanup: async () => undefined,
    };
  };
}
