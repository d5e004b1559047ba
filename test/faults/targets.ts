/**
 * The stores the fault suite runs on, each with what it needs started and the scenarios
 * that apply to it. The short CI version (`*.test.ts`) and `npm run faults` share them.
 *
 * - SQLite: the client-side scenarios. It is embedded: there is no server to restart and no
 *   network to cut (a process killed in the middle of a transaction is covered by
 *   test/acceptance/sqlite-processes.test.ts and the kill scenarios).
 * - Redis: two real redis-servers on loopback, one without persistence and one with AOF
 *   (`appendfsync always`); every worker reaches them through its own fault proxy. The
 *   client-side scenarios, the network scenarios, and a server restart while a lease is
 *   held on each server.
 * - Redlock: `quorum([...])` over five redis-servers without persistence (redis+quorum://),
 *   every worker reaching each of them through its own fault proxy; see quorumScenarios.
 * - Redis Cluster: three masters (no replicas) on loopback with AOF (`appendfsync always`),
 *   every worker reaching every node through a proxy of its own (its client maps the nodes'
 *   announced addresses to its proxies: ioredis `natMap`). The client-side scenarios, the
 *   network scenarios, and a restart of the master that owns the lock's slot while a lease
 *   is held.
 * - etcd: one real etcd member on loopback, which persists to disk (a restart keeps its data
 *   dir); every worker reaches it through its own fault proxy. The client-side scenarios,
 *   the network scenarios, and a member restart while a lease is held.
 * - PostgreSQL: one real server on loopback (initdb into a temporary folder); a restart
 *   SIGKILLs the postmaster and its backends and starts it on the same data (crash
 *   recovery); every worker reaches it through its own fault proxy, its LISTEN connection
 *   too. The client-side scenarios, the network scenarios, a restart while a lease is held,
 *   and a stalled server (every backend SIGSTOPped).
 * - ZooKeeper: one real standalone server on loopback, which persists its data and sessions
 *   (a restart keeps its data dir); every worker reaches it through its own fault proxy. The
 *   same scenarios as etcd's.
 */
import { createRedisStore } from '../../src/stores/redis/index.js';
import { DYNALITE_CREDENTIALS, DYNALITE_REGION, startDynalite, type DynaliteServer } from '../helpers/dynalite-server.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from '../helpers/redis-server.js';
import { startZooKeeper, type ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';
import type { Scenario, StoreServer } from './harness.js';
import { localScenarios, networkScenarios, quorumScenarios, restartScenario, slotOwnerRestartScenario, stallScenario } from './scenarios.js';

export interface FaultTarget {
  /** The store's name in tables and test names. */
  readonly name: string;
  /** The ε of the liveness bound: re-acquired within TTL + ε after the holder dies. */
  readonly epsilonMs: number;
  /** scenarios starts what the store needs (once) and returns its scenarios, each `durationMs` long. */
  scenarios(durationMs: number): Promise<Scenario[]>;
  stop(): Promise<void>;
}

export function sqliteTarget(): FaultTarget {
  return {
    name: 'sqlite',
    epsilonMs: 200,
    scenarios: async (durationMs) => localScenarios('sqlite:{dir}/locks.db', durationMs, 200),
    stop: async () => undefined,
  };
}

export function redisTarget(): FaultTarget {
  let plain: RedisServer | null = null;
  let durable: RedisServer | null = null;
  const url = 'redis://127.0.0.1:{port}?prefix={run}';
  return {
    name: 'redis',
    epsilonMs: 150,
    scenarios: async (durationMs) => {
      plain ??= await startRedis();
      durable ??= await startRedis(['--appendonly', 'yes', '--appendfsync', 'always']);
      return [
        ...localScenarios(url, durationMs, 150, [plain]),
        ...networkScenarios(url, [plain], durationMs, 150),
        restartScenario('restart-no-persistence', url, plain, durationMs, 150, true),
        restartScenario('restart-aof', url, durable, durationMs, 150, false),
        ...networkScenarios(url, [durable], durationMs, 150, { restarts: true }).filter((s) => s.name === 'random-network-restarts'),
        stallScenario('stall-server', url, [pausable(plain)], 'only', durationMs, 150),
      ];
    },
    stop: async () => {
      await plain?.stop();
      await durable?.stop();
    },
  };
}

/**
 * memory: the client-side scenarios in one process (test/faults/in-process.ts says what a
 * pause, a kill and a block mean there), ε 50 ms. Nothing else applies: no server, no network.
 */
export function memoryTarget(): FaultTarget {
  return {
    name: 'memory',
    epsilonMs: 50,
    scenarios: async (durationMs) => localScenarios('memory:', durationMs, 50),
    stop: async () => undefined,
  };
}

/** A redis-server as the harness sees it for a restart or a stall. */
function pausable(server: RedisServer): StoreServer {
  return { port: server.port, restart: () => server.restart(), pause: () => server.pause(), resume: () => server.resume() };
}

/** A redis-server as the harness sees it: it can be taken down, started, stalled, and asked what it holds. */
function nodeOf(server: RedisServer): StoreServer {
  let client: ReturnType<RedisServer['client']> | null = null;
  const direct = (): ReturnType<RedisServer['client']> => (client ??= server.client());
  return {
    port: server.port,
    restart: () => server.restart(),
    down: () => server.down(),
    up: () => server.up(),
    pause: () => server.pause(),
    resume: () => server.resume(),
    keys: (pattern) => direct().keys(pattern),
    holders: async (prefix, lock) => (await createRedisStore(direct(), { prefix, fencing: false }).inspect({ kind: 'mutex', name: lock })).holders.map((h) => h.owner),
  };
}

/**
 * redlock: five redis-servers without persistence, one Redlock quorum over them, node timeout
 * 150 ms (the nodes are on loopback). ε 150 ms, as for one Redis server.
 */
export function redlockTarget(): FaultTarget {
  const servers: RedisServer[] = [];
  const nodeTimeoutMs = 150;
  const url = `redis+quorum://${[0, 1, 2, 3, 4].map((i) => `127.0.0.1:{port${i}}`).join(',')}?prefix={run}&nodeTimeoutMs=${nodeTimeoutMs}`;
  return {
    name: 'redlock',
    epsilonMs: 150,
    scenarios: async (durationMs) => {
      while (servers.length < 5) servers.push(await startRedis());
      const nodes = servers.map(nodeOf);
      return [...quorumScenarios(url, nodes, durationMs, 150, nodeTimeoutMs), stallScenario('stall-majority', url, nodes, 'majority', durationMs, 150, { unfenced: true })];
    },
    stop: async () => {
      for (const server of servers) await server.stop();
    },
  };
}

/**
 * A master of a Redis Cluster as the harness sees it: it restarts (the whole cluster then
 * serves again before the restart counts as done), lists what it keeps of a run, and the
 * holders of a lock whose slot it owns (none for a lock whose slot is another master's).
 */
function clusterNodeOf(cluster: RedisCluster, index: number): StoreServer {
  const node = cluster.nodes[index]!;
  let client: ReturnType<RedisServer['client']> | null = null;
  const direct = (): ReturnType<RedisServer['client']> => (client ??= node.client());
  return {
    port: node.port,
    restart: () => cluster.restartNode(index),
    pause: () => node.pause(),
    resume: () => node.resume(),
    keys: async (pattern) => {
      const left: string[] = [];
      for (const key of await direct().keys(pattern)) {
        // A lock's fence hash stays, so that tokens keep growing; entries must not.
        if (!key.endsWith('}:s')) left.push(key);
        else for (const field of await direct().hkeys(key)) if (/^[wh]:/.test(field)) left.push(`${key} ${field}`);
      }
      return left;
    },
    holders: async (prefix, lock) => {
      try {
        return (await createRedisStore(direct(), { prefix }).inspect({ kind: 'mutex', name: lock })).holders.map((h) => h.owner);
      } catch (error) {
        if (/MOVED/.test(String((error as Error).message))) return [];
        throw error;
      }
    },
  };
}

/**
 * redis-cluster: three masters, no replicas, with AOF (`appendfsync always`, so that a
 * restarted master keeps its leases and fences); ε 150 ms, as for one Redis server. Each
 * worker reaches each master through its own proxy, seeded with its proxies and mapping the
 * masters' announced addresses to them (`natMap`).
 */
export function redisClusterTarget(): FaultTarget {
  let cluster: RedisCluster | null = null;
  const url = `redis+cluster://${[0, 1, 2].map((i) => `127.0.0.1:{port${i}}`).join(',')}?prefix={run}`;
  const extra: Partial<Scenario> = { natMap: true };
  return {
    name: 'redis-cluster',
    epsilonMs: 150,
    scenarios: async (durationMs) => {
      cluster ??= await startRedisCluster(3, ['--appendonly', 'yes', '--appendfsync', 'always']);
      const masters = cluster.nodes.map((_, i) => clusterNodeOf(cluster!, i));
      return [
        ...localScenarios(url, durationMs, 150, masters, extra),
        ...networkScenarios(url, masters, durationMs, 150, undefined, extra),
        // Twice as long: each restart takes the lock's master out for 2 s (a restarted master
        // refuses commands for its first 2 s), and a run of the others' length would see one
        // restart and a handful of grants.
        slotOwnerRestartScenario('restart-slot-owner-aof', url, masters, durationMs * 2, 150, extra),
        stallScenario('stall-slot-owner', url, masters, 'slot-owner', durationMs, 150, extra),
      ];
    },
    stop: async () => {
      await cluster?.stop();
    },
  };
}

/** The etcd store's session TTL in the fault suite, ms: etcd's smallest with the test member's timings (test/helpers/etcd-server.ts). */
const ETCD_SESSION_TTL_MS = 1000;

/**
 * etcd: one member (`startEtcd(1)`: 50 ms heartbeat, 500 ms election timeout) with its data
 * dir kept across restarts, as etcd runs. etcd leases last whole seconds, and etcd itself
 * enforces only the store's session lease (`sessionTtlMs`): a lock's own shorter TTL is
 * enforced by its holder's process, so a SIGKILLed holder's key goes when its session
 * expires. The scenarios therefore use a lock TTL equal to the session TTL, 1 s (the
 * smallest etcd grants here), and the liveness bound is that session TTL + ε (1 s, as the
 * issue sets for etcd: etcd revokes expired leases on its own 500 ms schedule).
 */
export function etcdTarget(): FaultTarget {
  let cluster: EtcdCluster | null = null;
  const url = `etcd://127.0.0.1:{port}?prefix={run}/&sessionTtlMs=${ETCD_SESSION_TTL_MS}`;
  const extra: Partial<Scenario> = { ttlMs: ETCD_SESSION_TTL_MS, livenessTtlMs: ETCD_SESSION_TTL_MS };
  return {
    name: 'etcd',
    epsilonMs: 1000,
    scenarios: async (durationMs) => {
      cluster ??= await startEtcd(1);
      const member = cluster;
      const server: StoreServer = { port: Number(new URL(member.endpoints[0]!).port), restart: () => member.restart(), pause: () => member.pause(0), resume: () => member.resume(0) };
      return [
        ...localScenarios(url, durationMs, 1000, [server], extra),
        ...networkScenarios(url, [server], durationMs, 1000, undefined, extra).filter((s) => s.name !== 'random-network'),
        restartScenario('restart', url, server, durationMs, 1000, false, extra),
        ...networkScenarios(url, [server], durationMs, 1000, { restarts: true }, extra).filter((s) => s.name === 'random-network-restarts'),
        stallScenario('stall-server', url, [server], 'only', durationMs, 1000, extra),
      ];
    },
    stop: async () => {
      await cluster?.stop();
    },
  };
}

/**
 * dynamodb: dynalite (DynamoDB's API) in a process of its own, its data on disk (a restart
 * keeps the table and its items, as DynamoDB would); every worker reaches it through its own
 * fault proxy. The client-side scenarios, the network scenarios, a restart while a lease is
 * held, and a stalled endpoint. DynamoDB has no clock a condition can use: a dead holder's
 * entry is removed once a waiter has seen its record version unchanged for a whole lease, and
 * waiters poll (backoff up to 500 ms), so ε is one poll + 500 ms: 1 s, as the issue sets.
 */
export function dynamodbTarget(): FaultTarget {
  let server: DynaliteServer | null = null;
  const table = 'baton-faults';
  const url = `dynamodb://127.0.0.1:{port}/${table}?region=${DYNALITE_REGION}&prefix={run}`;
  return {
    name: 'dynamodb',
    epsilonMs: 1000,
    scenarios: async (durationMs) => {
      // The workers' SDK finds its credentials in the environment they inherit.
      process.env.AWS_ACCESS_KEY_ID = DYNALITE_CREDENTIALS.accessKeyId;
      process.env.AWS_SECRET_ACCESS_KEY = DYNALITE_CREDENTIALS.secretAccessKey;
      server ??= await startDynalite();
      await server.table(table);
      const dynalite = server;
      const endpoint: StoreServer = { port: dynalite.port, restart: () => dynalite.restart(), pause: () => dynalite.pause(), resume: () => dynalite.resume() };
      // Holders hold 200 ms: a hand-off waits for the next waiter's poll (up to 500 ms), and
      // with 20 ms holds the lock would be free most of the time, where no fault can hit a holder.
      const extra: Partial<Scenario> = { holdMs: 200 };
      return [
        ...localScenarios(url, durationMs, 1000, [endpoint], extra),
        ...networkScenarios(url, [endpoint], durationMs, 1000, undefined, extra).filter((s) => s.name !== 'random-network'),
        restartScenario('restart', url, endpoint, durationMs, 1000, false),
        stallScenario('stall-server', url, [endpoint], 'only', durationMs, 1000, extra),
      ];
    },
    stop: async () => {
      await server?.stop();
    },
  };
}

/** postgres: one server, ε 150 ms as for Redis (the server's clock decides; a call is one round trip). */
export function postgresTarget(): FaultTarget {
  let server: PostgresServer | null = null;
  const url = 'postgres://postgres@127.0.0.1:{port}/postgres?prefix={run}';
  return {
    name: 'postgres',
    epsilonMs: 150,
    scenarios: async (durationMs) => {
      server ??= await startPostgres();
      const pg = server;
      const target: StoreServer = { port: pg.port, restart: () => pg.restart(), down: () => pg.down(), up: () => pg.up(), pause: () => pg.pause(), resume: () => pg.resume() };
      return [
        ...localScenarios(url, durationMs, 150, [target]),
        ...networkScenarios(url, [target], durationMs, 150),
        restartScenario('restart', url, target, durationMs, 150, false),
        ...networkScenarios(url, [target], durationMs, 150, { restarts: true }).filter((s) => s.name === 'random-network-restarts'),
        stallScenario('stall-server', url, [target], 'only', durationMs, 150),
      ];
    },
    stop: async () => {
      await server?.stop();
    },
  };
}

/** The ZooKeeper store's session timeout in the fault suite, ms (the test server negotiates 200 ms to 60 s). */
const ZOOKEEPER_SESSION_TIMEOUT_MS = 1000;

/**
 * zookeeper: one standalone server (`startZooKeeper(1)`: 100 ms ticks) with its data dir kept
 * across restarts. ZooKeeper enforces only the session (its timeout, after the last request
 * the server received): a lock's own shorter TTL is enforced by its holder's process, so a
 * SIGKILLed holder's znode goes when its session expires. The scenarios use a lock TTL equal
 * to the session timeout, 1 s, and the liveness bound is that timeout + 300 ms (ZooKeeper
 * expires sessions on its tick, 100 ms here, and the waiter's watch and grant take the rest),
 * except after a server restart (`RESTART_EPSILON_MS`).
 */
/**
 * The ε of the scenarios that restart the server: a restarted server sometimes takes a
 * client's reconnection and never answers it (node-zookeeper-client then waits without a
 * bound), and a URL-opened store replaces such a client only once it has been disconnected
 * for a session timeout; requests it had sent then fail, and the lock's znode of the old
 * session goes when the server expires that session. Measured worst re-acquire after a
 * restart: 4.7 s (seeds 2 and 5 of `npm run faults -- --store zookeeper --scenario restart`).
 */
const RESTART_EPSILON_MS = 5000;

export function zookeeperTarget(): FaultTarget {
  let server: ZooKeeperEnsemble | null = null;
  const url = `zk://127.0.0.1:{port}?root=/{run}&sessionTimeoutMs=${ZOOKEEPER_SESSION_TIMEOUT_MS}`;
  const extra: Partial<Scenario> = { ttlMs: ZOOKEEPER_SESSION_TIMEOUT_MS, livenessTtlMs: ZOOKEEPER_SESSION_TIMEOUT_MS };
  const epsilonMs = 300;
  return {
    name: 'zookeeper',
    epsilonMs,
    scenarios: async (durationMs) => {
      server ??= await startZooKeeper(1);
      const zk = server;
      const node: StoreServer = { port: Number(zk.hosts[0]!.split(':')[1]), restart: () => zk.restart(), pause: () => zk.pause(0), resume: () => zk.resume(0) };
      return [
        ...localScenarios(url, durationMs, epsilonMs, [node], extra),
        ...networkScenarios(url, [node], durationMs, epsilonMs, undefined, extra).filter((s) => s.name !== 'random-network'),
        restartScenario('restart', url, node, durationMs, RESTART_EPSILON_MS, false, extra),
        ...networkScenarios(url, [node], durationMs, RESTART_EPSILON_MS, { restarts: true }, extra).filter((s) => s.name === 'random-network-restarts'),
        stallScenario('stall-server', url, [node], 'only', durationMs, epsilonMs, extra),
      ];
    },
    stop: async () => {
      await server?.stop();
    },
  };
}
