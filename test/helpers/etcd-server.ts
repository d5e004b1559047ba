/**
 * Starts real etcd members on free loopback ports with temporary data directories: one
 * member, or a 3-member cluster. Members run with a 50 ms heartbeat and a 500 ms election
 * timeout, so that etcd's smallest lease TTL is 1 s (with default timings it is 2 s).
 * `scripts/setup` installs etcd (Debian packages etcd-server and etcd-client).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { randomBytes } from 'node:crypto';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import type { Backing } from '../contract/suite.js';
import { adopt } from './children.js';
import { cleanUp } from './clean-up.js';
import { freePort, killProcess } from './process.js';

/** EtcdTls: the PEM files of members that serve clients over TLS (see `makeCertificates`). */
export interface EtcdTls {
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** The client certificate the helper's own calls present, and whether members require one. */
  readonly clientCert: string;
  readonly clientKey: string;
  readonly clientCertAuth: boolean;
}

export interface EtcdCluster {
  /** Client URLs, one a member, in member order. */
  readonly endpoints: readonly string[];
  /** client: a new etcd3 client on the given members (default: all), closed by `stop()`. */
  client(members?: readonly number[]): Etcd3;
  /** pid: the PID of member `i`'s process (a new one after each start). */
  pid(i: number): number;
  /** kill SIGKILLs member `i`. */
  kill(i: number): Promise<void>;
  /** pause SIGSTOPs member `i`: its sockets stay open and nothing answers (a stalled member); `resume` SIGCONTs it. */
  pause(i: number): void;
  resume(i: number): void;
  /** start starts member `i` again on its data directory. */
  start(i: number): Promise<void>;
  /** restart kills every member and starts them again on their data: what etcd persisted stays. */
  restart(): Promise<void>;
  /** leader: the index of the member that leads now. */
  leader(): Promise<number>;
  /** rpcs: how many KV, Lease and Watch calls member `i` has started (from its gRPC metrics): which members a client talks to. */
  rpcs(i: number): Promise<number>;
  stop(): Promise<void>;
}

/** startEtcd starts `members` members; with `tls`, they serve clients over TLS only (`https://` endpoints). */
export async function startEtcd(members: 1 | 3 = 1, options: { tls?: EtcdTls } = {}): Promise<EtcdCluster> {
  const { tls } = options;
  const root = mkdtempSync(join(tmpdir(), 'baton-etcd-'));
  const ports = await Promise.all(Array.from({ length: members }, async () => ({ client: await freePort(), peer: await freePort() })));
  const endpoints = ports.map((p) => `${tls ? 'https' : 'http'}://127.0.0.1:${p.client}`);
  const pem = tls ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.clientCert), key: readFileSync(tls.clientKey) } : null;
  // etcd 3.4 requires client certificates whenever it is given a trusted CA file.
  const tlsFlags = tls ? ['--cert-file', tls.serverCert, '--key-file', tls.serverKey, ...(tls.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', tls.ca] : [])] : [];
  /** An HTTP call to member `i` (its health, status and metrics endpoints), over TLS when the members use it. */
  const call = (i: number, path: string, body?: string): Promise<string> => new Promise((resolve, reject) => {
    const request = (tls ? httpsRequest : httpRequest)(`${endpoints[i]}${path}`, { method: body === undefined ? 'GET' : 'POST', timeout: 2000, ...(pem ?? {}) }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => (text += chunk.toString()));
      response.on('end', () => resolve(text));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
    request.end(body);
  });
  const initialCluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const children: (ChildProcess | null)[] = ports.map(() => null);
  const outputs: string[] = ports.map(() => '');
  const clients: Etcd3[] = [];

  const launch = (i: number): void => {
    const p = ports[i]!;
    const child = adopt(spawn('etcd', [
      '--name', `m${i}`,
      '--data-dir', join(root, `m${i}`),
      '--listen-client-urls', endpoints[i]!,
      '--advertise-client-urls', endpoints[i]!,
      '--listen-peer-urls', `http://127.0.0.1:${p.peer}`,
      '--initial-advertise-peer-urls', `http://127.0.0.1:${p.peer}`,
      '--initial-cluster', initialCluster,
      '--initial-cluster-state', 'new',
      '--initial-cluster-token', 'baton-test',
      '--heartbeat-interval', '50',
      '--election-timeout', '500',
      '--logger', 'zap',
      '--log-level', 'error',
      ...tlsFlags,
    ], { stdio: ['ignore', 'pipe', 'pipe'] }), `etcd member m${i} on port ${p.client}`);
    outputs[i] = '';
    child.stdout!.on('data', (chunk: Buffer) => (outputs[i] += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (outputs[i] += chunk.toString()));
    children[i] = child;
  };

  const healthy = async (i: number): Promise<boolean> => {
    try {
      return (JSON.parse(await call(i, '/health')) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  };

  /** Waits until the members are healthy, 20 s at most; a member that exits fails it at once. */
  const waitHealthy = async (indices: number[]): Promise<void> => {
    const deadline = Date.now() + 20_000;
    for (;;) {
      const states = await Promise.all(indices.map(healthy));
      if (states.every(Boolean)) return;
      const dead = indices.find((i) => children[i]!.exitCode !== null);
      if (Date.now() > deadline || dead !== undefined) {
        throw new Error(`etcd did not become healthy within 20 s${dead === undefined ? '' : ` (m${dead} exited)`}: ${indices.map((i) => `m${i}: ${outputs[i]}`).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const stop = (name: string, after?: { failed: boolean }): Promise<void> => cleanUp(name, {
    'close its clients': () => {
      for (const client of clients.splice(0)) client.close();
    },
    ...Object.fromEntries(children.map((child, i) => [`kill member m${i}`, () => killProcess(child)])),
    'remove its data directories': () => rmSync(root, { recursive: true, force: true }),
  }, after);

  const all = ports.map((_, i) => i);
  for (const i of all) launch(i);
  try {
    await waitHealthy(all);
  } catch (error) {
    await stop('stop the etcd members that did not start', { failed: true });
    throw error;
  }

  return {
    endpoints,
    client(indices = all) {
      const client = new Etcd3({
        hosts: indices.map((i) => endpoints[i]!),
        dialTimeout: 2000,
        ...(pem ? { credentials: { rootCertificate: pem.ca, certChain: pem.cert, privateKey: pem.key } } : {}),
      });
      clients.push(client);
      return client;
    },
    pid(i) {
      return children[i]!.pid!;
    },
    async kill(i) {
      await killProcess(children[i]!);
    },
    pause(i) {
      const child = children[i];
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGSTOP');
    },
    resume(i) {
      const child = children[i];
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
    },
    async start(i) {
      launch(i);
      await waitHealthy([i]);
    },
    async restart() {
      await Promise.all(all.map((i) => killProcess(children[i]!)));
      for (const i of all) launch(i);
      await waitHealthy(all);
    },
    async leader() {
      for (const i of all) {
        if (children[i]!.exitCode !== null || children[i]!.signalCode !== null) continue;
        try {
          const status = JSON.parse(await call(i, '/v3/maintenance/status', '{}')) as { header: { member_id: string }; leader: string };
          if (status.header.member_id === status.leader) return i;
        } catch {
          // a member that does not answer is not the leader we look for
        }
      }
      return -1;
    },
    async rpcs(i) {
      const text = await call(i, '/metrics');
      let sum = 0;
      for (const line of text.split('\n')) {
        if (/^grpc_server_started_total\{.*grpc_service="etcdserverpb\.(KV|Lease|Watch)"/.test(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return sum;
    },
    stop: () => stop(`stop etcd on ports ${ports.map((p) => p.client).join(', ')}`),
  };
}

/**
 * etcdBacking: the contract suite's backing on `cluster()` (read when a test starts): a fresh
 * key prefix is a fresh, empty place on the same members, and each connect is a store with
 * its own session (TTL 1 s).
 */
export function etcdBacking(cluster: () => EtcdCluster): () => Promise<Backing> {
  return async () => {
    const prefix = `t${randomBytes(4).toString('hex')}/`;
    const client = cluster().client();
    return {
      connect: () => createEtcdStore(client, { prefix, sessionTtlMs: 1000 }),
      restart: () => cluster().restart(),
      cleanup: () => cleanUp(`close the etcd client of prefix ${prefix}`, { 'close the client': () => client.close() }),
    };
  };
}
