/**
 * A fault-suite worker: a separate process that uses baton's public API the way a careless
 * client would. In a loop it takes the lock, reads both registers (the fenced one with its
 * token), works for `holdMs`, and writes value + 1 to both, sending its token. It does NOT
 * check `lease.signal` before writing, so when it is paused or blocked past its TTL, only
 * the fenced register's token check stands between it and a lost update; the unfenced twin
 * shows what happens without.
 *
 * SIGUSR1 / SIGUSR2 make the next critical section block the event loop for
 * `blockShortMs` / `blockLongMs` between the read and the write. SIGTERM closes the baton
 * instance and exits. Every step is a JSON line, in the history file and on stdout.
 *
 * Usage: node worker.js '<json config>'
 */
import { appendFileSync } from 'node:fs';
import { request } from 'node:http';
import { createBaton, monotonicNow } from '../../src/index.js';
import { openRedisCluster, type NodeAddressMap } from '../../src/stores/redis/connect.js';
import { openStore, parseStoreUrl } from '../../src/url.js';

interface Config {
  id: string;
  store: string;
  register: number;
  history: string;
  name: string;
  ttlMs: number;
  holdMs: number;
  blockShortMs: number;
  blockLongMs: number;
  /** The store issues no fencing token: write to the unfenced register only. */
  unfenced: boolean;
  /** A Redis Cluster's nodes, as they announce themselves, mapped to this worker's proxies in front of them. */
  natMap?: NodeAddressMap;
}

const config = JSON.parse(process.argv[2]!) as Config;
const log = (event: Record<string, unknown>): void => {
  const line = `${JSON.stringify({ at: monotonicNow(), worker: config.id, ...event })}\n`;
  appendFileSync(config.history, line);
  process.stdout.write(line);
};

function call(method: 'GET' | 'POST', path: string, body?: unknown): Promise<Record<string, any>> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: config.register, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolve(JSON.parse(text) as Record<string, any>));
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

let block = 0;
process.on('SIGUSR1', () => (block = config.blockShortMs));
process.on('SIGUSR2', () => (block = config.blockLongMs));
process.on('unhandledRejection', (reason) => {
  log({ e: 'unhandled', error: String(reason) });
  process.exit(1);
});

/** openStore's store, or on a Redis Cluster the same client with the natMap to this worker's proxies. */
async function open(): Promise<Awaited<ReturnType<typeof openStore>>> {
  if (!config.natMap) return openStore(config.store);
  const parsed = parseStoreUrl(config.store);
  if (parsed.scheme !== 'redis+cluster') throw new Error(`natMap is for redis+cluster:// stores, got ${parsed.scheme}`);
  return openRedisCluster(parsed, { natMap: config.natMap });
}

const store = await open();
const baton = createBaton(store);
/** The lease's local deadline, where reading `lease.signal` reports the loss (`expiresAt` includes a session-scoped store's session deadline). */
const localDeadline = (lease: { expiresAt: number }): number => monotonicNow() + (lease.expiresAt - Date.now());
baton.on('lost', (event) => log({ e: 'lost', token: event.token === null ? null : String(event.token), owner: event.owner, reason: event.reason }));
let stopping = false;
process.on('SIGTERM', () => {
  stopping = true;
  const started = monotonicNow();
  baton.close().then(() => {
    log({ e: 'closed', closeMs: monotonicNow() - started });
    process.exit(0);
  }, (error: unknown) => {
    log({ e: 'close-failed', error: String(error) });
    process.exit(1);
  });
});
log({ e: 'started', pid: process.pid });

while (!stopping) {
  log({ e: 'invoke' });
  let lease;
  try {
    lease = await baton.mutex(config.name).acquire({ ttlMs: config.ttlMs, autoRenew: true, timeoutMs: 60_000 });
  } catch (error) {
    if (stopping) break;
    log({ e: 'acquire-failed', code: (error as { code?: string }).code, name: (error as Error).name });
    // A store out of reach fails at once: try again a little later, as a client would, not in a tight loop.
    await new Promise((resolve) => setTimeout(resolve, 50));
    continue;
  }
  const token = lease.token === null ? null : String(lease.token);
  log({ e: 'grant', token, owner: lease.owner, deadline: localDeadline(lease) });
  try {
    const state = await call('GET', token === null ? '/state' : `/state?token=${token}`);
    await new Promise((resolve) => setTimeout(resolve, config.holdMs));
    if (block > 0) {
      const until = monotonicNow() + block;
      log({ e: 'block', ms: block });
      block = 0;
      while (monotonicNow() < until);
    }
    // A refused read means a newer holder has been here: a careful client stops, this one writes anyway.
    // Without a token (a quorum) there is nothing to fence with: the unfenced register only.
    const fenced = token === null ? { accepted: null } : await call('POST', '/write', { register: 'fenced', worker: config.id, token, value: state.fenced.value + 1 });
    const unfenced = await call('POST', '/write', { register: 'unfenced', worker: config.id, token: token ?? '0', value: state.unfenced.value + 1 });
    log({ e: 'write', token, fenced: fenced.accepted, unfenced: unfenced.accepted });
  } catch (error) {
    log({ e: 'write-failed', error: String(error) });
  }
  const deadline = localDeadline(lease);
  log({ e: 'release-call', token, held: lease.held, deadline });
  try {
    await lease.release();
    log({ e: 'released', token });
  } catch (error) {
    log({ e: 'release-failed', token, code: (error as { code?: string }).code });
  }
}
