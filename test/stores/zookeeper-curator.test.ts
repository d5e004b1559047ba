/**
 * Interop with Apache Curator on the real jars (Debian packages libcurator-recipes-java 5.4
 * and zookeeper 3.8, compiled here by javac): a Curator `InterProcessMutex` and a baton mutex
 * on the same path exclude each other, in both orders and in one FIFO queue, and a Curator
 * `LeaderLatch` and a baton election on the same path elect one leader between them.
 * test/fixtures/curator/CuratorPeer.java is the Curator side, driven one command a line.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { createBaton, type Baton } from '../../src/index.js';
import { createZooKeeperStore, type ZooKeeperStore } from '../../src/stores/zookeeper/index.js';
import { adopt } from '../helpers/children.js';
import { killProcess } from '../helpers/process.js';
import { startZooKeeper, type ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';

const CURATOR = '/usr/share/java/curator-recipes.jar';
const SOURCE = resolve('test/fixtures/curator/CuratorPeer.java');

/** One Curator client in a JVM of its own. */
interface Peer {
  /** ask sends a command and resolves with its answer (the next line that is not a `leader` notice), within 20 s. */
  ask(command: string): Promise<string>;
  /** leads resolves once the peer's LeaderLatch reported that it leads. */
  leads(): Promise<void>;
  stop(): Promise<void>;
}

async function startPeer(classes: string, connectString: string): Promise<Peer> {
  const child: ChildProcess = adopt(spawn('java', ['-Xmx96m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${CURATOR}:/usr/share/java/slf4j-nop.jar:${classes}`, 'CuratorPeer', connectString, '2000'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  }), 'Curator peer');
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const answers: string[] = [];
  const waiting: ((line: string) => void)[] = [];
  let led = false;
  let onLead: (() => void) | null = null;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line === 'leader') {
      led = true;
      onLead?.();
      return;
    }
    const next = waiting.shift();
    if (next) next(line);
    else answers.push(line);
  });
  const nextLine = (what: string): Promise<string> => new Promise((resolve, reject) => {
    if (answers.length > 0) return resolve(answers.shift()!);
    const timer = setTimeout(() => reject(new Error(`the Curator peer did not answer ${what} within 20 s: ${stderr}`)), 20_000);
    waiting.push((line) => {
      clearTimeout(timer);
      resolve(line);
    });
  });
  assert.equal(await nextLine('its start'), 'ready');
  return {
    ask(command) {
      if (command.startsWith('latch-start')) led = false;
      child.stdin!.write(`${command}\n`);
      return nextLine(command);
    },
    leads: () => new Promise<void>((resolve, reject) => {
      if (led) return resolve();
      const timer = setTimeout(() => reject(new Error('the Curator LeaderLatch never led')), 20_000);
      onLead = () => {
        clearTimeout(timer);
        resolve();
      };
    }),
    async stop() {
      child.stdin!.end('quit\n');
      await killProcess(child);
    },
  };
}

describe('interop with Apache Curator', () => {
  let server: ZooKeeperEnsemble;
  let classes: string;
  let peer: Peer;
  const batons: Baton[] = [];
  before(async () => {
    classes = mkdtempSync(join(tmpdir(), 'baton-curator-'));
    const [started] = await Promise.all([startZooKeeper(1), promisify(execFile)('javac', ['-d', classes, '-cp', CURATOR, SOURCE], { timeout: 60_000 })]);
    server = started;
    peer = await startPeer(classes, server.hosts[0]!);
  });
  after(async () => {
    await Promise.allSettled(batons.map((b) => b.close()));
    await peer?.stop();
    await server?.stop();
    rmSync(classes, { recursive: true, force: true });
  });

  /** A baton instance on a store of its own (its own session). */
  const baton = (): { baton: Baton; store: ZooKeeperStore } => {
    const store = createZooKeeperStore(server.client({ sessionTimeout: 2000 }), { root: '/interop', closeClient: true });
    const b = createBaton(store, { queuePollMs: 10_000 });
    batons.push(b);
    return { baton: b, store };
  };

  it('a Curator InterProcessMutex holds: baton waits, and gets the lock when Curator releases', async () => {
    const { baton: a, store } = baton();
    const path = store.resourcePath({ kind: 'mutex', name: 'curator-first' });
    assert.equal(await peer.ask(`mutex-acquire ${path} 5000`), 'acquired');
    assert.equal(await a.mutex('curator-first').tryAcquire(), null, 'baton sees Curator\'s lock');
    const state = await a.inspect('curator-first');
    assert.equal(state.holders.length, 1);
    assert.equal(state.holders[0]!.foreign, true, 'Curator\'s node is not baton\'s');
    const waiting = a.mutex('curator-first').acquire({ ttlMs: 5000, timeoutMs: 15_000 });
    while ((await a.inspect('curator-first')).waiters.length < 1) await new Promise((r) => setTimeout(r, 10));
    assert.equal(await peer.ask('mutex-release'), 'released');
    const lease = await waiting;
    assert.ok(lease.token > state.fence, `token ${lease.token} after Curator's czxid ${state.fence}`);
    await lease.release();
  });

  it('baton holds: Curator\'s acquire(1 s) fails, and succeeds once baton released', async () => {
    const { baton: a, store } = baton();
    const path = store.resourcePath({ kind: 'mutex', name: 'baton-first' });
    const lease = await a.mutex('baton-first').acquire({ ttlMs: 10_000 });
    assert.equal(await peer.ask(`mutex-acquire ${path} 1000`), 'busy');
    await lease.release();
    assert.equal(await peer.ask(`mutex-acquire ${path} 5000`), 'acquired');
    assert.equal(await a.mutex('baton-first').tryAcquire(), null);
    assert.equal(await peer.ask('mutex-release'), 'released');
    assert.ok(await a.mutex('baton-first').tryAcquire({ ttlMs: 5000 }));
  });

  it('baton and Curator waiters share one FIFO queue', async () => {
    const { baton: a, store } = baton();
    const { baton: b } = baton();
    const path = store.resourcePath({ kind: 'mutex', name: 'fifo' });
    const first = await a.mutex('fifo').acquire({ ttlMs: 20_000 });
    // Curator queues second (its acquire blocks the peer until it gets the lock), baton third.
    const curator = peer.ask(`mutex-acquire ${path} 15000`);
    while ((await a.inspect('fifo')).waiters.length < 1) await new Promise((r) => setTimeout(r, 10));
    let third = false;
    const later = b.mutex('fifo').acquire({ ttlMs: 5000, timeoutMs: 15_000 }).then((lease) => {
      third = true;
      return lease;
    });
    while ((await a.inspect('fifo')).waiters.length < 2) await new Promise((r) => setTimeout(r, 10));
    await first.release();
    assert.equal(await curator, 'acquired');
    assert.equal(third, false, 'the baton waiter behind Curator\'s did not overtake it');
    assert.equal(await peer.ask('mutex-release'), 'released');
    await (await later).release();
  });

  it('a Curator LeaderLatch and a baton election elect one leader between them, in both orders', async () => {
    const { baton: a, store } = baton();
    const path = store.resourcePath({ kind: 'election', name: 'leader' });
    assert.equal(await peer.ask(`latch-start ${path} curator-1`), 'started');
    await peer.leads();
    const leader = await a.election('leader').leader();
    assert.equal(leader?.value, 'curator-1', 'baton reads the latch\'s participant id as the leader\'s value');
    const campaign = a.election('leader').campaign('baton-1', { ttlMs: 10_000, timeoutMs: 15_000 });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await peer.ask('latch-leader'), 'curator-1');
    assert.equal(await peer.ask('latch-close'), 'closed');
    const led = await campaign;
    assert.equal((await a.election('leader').leader())?.value, 'baton-1');

    // Now baton leads and a new latch waits behind it.
    assert.equal(await peer.ask(`latch-start ${path} curator-2`), 'started');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await peer.ask('latch-leader'), 'baton-1', 'Curator reads baton\'s value as the leader\'s participant id');
    await a.election('leader').resign(led);
    await peer.leads();
    assert.equal(await peer.ask('latch-leader'), 'curator-2');
    assert.equal(await peer.ask('latch-close'), 'closed');
  });
});
