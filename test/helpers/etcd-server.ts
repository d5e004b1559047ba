/**
 * Starts real etcd members on free loopback ports with temporary data directories: one
 * member, or a 3-member cluster. Members run with a 50 ms heartbeat and a 500 ms election
 * timeout, so that etcd's smallest lease TTL is 1 s (with default timings it is 2 s).
 * `scripts/setup` installs etcd (Debian packages etcd-server and etcd-client).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePort, killProcess } from './process.js';

export interface EtcdCluster {
  /** Client URLs, one a member, in member order. */
  readonly endpoints: readonly string[];
  /** client: a new etcd3 client on the given members (default: all), closed by `stop()`. */
  client(members?: readonly number[]): Etcd3;
  /** kill SIGKILLs member `i`. */
  kill(i: number): Promise<void>;
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



export async function startEtcd(members: 1 | 3 = 1): Promise<EtcdCluster> {
  const root = mkdtempSync(join(tmpdir(), 'baton-etcd-'));
  const ports = await Promise.all(Array.from({ length: members }, async () => ({ client: await freePort(), peer: await freePort() })));
  const endpoints = ports.map((p) => `http://127.0.0.1:${p.client}`);
  const initialCluster = ports.map((p, i) => `m${i}=http://127.0.0.1:${p.peer}`).join(',');
  const children: (ChildProcess | null)[] = ports.map(() => null);
  const outputs: string[] = ports.map(() => '');
  const clients: Etcd3[] = [];

  const launch = (i: number): void => {
    const p = ports[i]!;
    const child = spawn('etcd', [
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
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    outputs[i] = '';
    child.stdout!.on('data', (chunk: Buffer) => (outputs[i] += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (outputs[i] += chunk.toString()));
    children[i] = child;
  };

  const healthy = async (i: number): Promise<boolean> => {
    try {
      const response = await fetch(`${endpoints[i]}/health`, { signal: AbortSignal.timeout(1000) });
      return ((await response.json()) as { health?: string }).health === 'true';
    } catch {
      return false;
    }
  };

  const waitHealthy = async (indices: number[]): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      const states = await Promise.all(indices.map(healthy));
      if (states.every(Boolean)) return;
      const dead = indices.find((i) => children[i]!.exitCode !== null);
      if (attempt > 300 || dead !== undefined) {
        throw new Error(`etcd did not start: ${indices.map((i) => `m${i}: ${outputs[i]}`).join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };

  const all = ports.map((_, i) => i);
  for (const i of all) launch(i);
  await waitHealthy(all);

  return {
    endpoints,
    client(indices = all) {
      const client = new Etcd3({ hosts: indices.map((i) => endpoints[i]!), dialTimeout: 2000 });
      clients.push(client);
      return client;
    },
    async kill(i) {
      await killProcess(children[i]!);
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
          const response = await fetch(`${endpoints[i]}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(1000) });
          const status = (await response.json()) as { header: { member_id: string }; leader: string };
          if (status.header.member_id === status.leader) return i;
        } catch {
          // a member that does not answer is not the leader we look for
        }
      }
      return -1;
    },
    async rpcs(i) {
      const text = await (await fetch(`${endpoints[i]}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (/^grpc_server_started_total\{.*grpc_service="etcdserverpb\.(KV|Lease|Watch)"/.test(line)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
      return sum;
    },
    async stop() {
      for (const client of clients) client.close();
      await Promise.all(children.map((child) => killProcess(child)));
      rmSync(root, { recursive: true, force: true });
    },
  };
}
