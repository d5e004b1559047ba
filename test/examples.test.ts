/**
 * The examples run, against the built package, as a user would run them: each file in
 * examples/ as its own process (`node examples/NAME.mjs`), killed and failed after 20 s, with
 * its SQLite file in a temporary folder and the Redis, etcd and DynamoDB (dynalite) servers it needs started here.
 * Every file in examples/ must have a case below: a new example fails this test until it has one.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { cleanUp } from './helpers/clean-up.js';
import { DYNALITE_CREDENTIALS, DYNALITE_REGION, startDynalite, type DynaliteServer } from './helpers/dynalite-server.js';
import { startEtcd, type EtcdCluster } from './helpers/etcd-server.js';
import { runInGroup } from './helpers/process.js';
import { startRedis, startRedisCluster, type RedisCluster, type RedisServer } from './helpers/redis-server.js';

const LIMIT_MS = 20_000;
const dir = mkdtempSync(join(tmpdir(), 'baton-examples-'));
const redis: RedisServer[] = [];
let etcd: EtcdCluster | undefined;
let cluster: RedisCluster | undefined;
let dynalite: DynaliteServer | undefined;

/** The example's own lock file: a fresh store, so its tokens start at 1. */
const db = (file: string): NodeJS.ProcessEnv => ({ BATON_EXAMPLE_DB: join(dir, file.replace(/\.mjs$/, '.db')) });

/**
 * runExample runs `examples/<file>` and resolves with its stdout once it exits with 0; it
 * rejects, with the example's output, on any other exit, or after LIMIT_MS, when the example
 * and the processes it started are killed (it runs in a process group of its own).
 */
function runExample(file: string, env: NodeJS.ProcessEnv): Promise<string> {
  return runInGroup(process.execPath, [join('examples', file)], { env: { ...process.env, ...env }, timeoutMs: LIMIT_MS, what: `examples/${file}` });
}

/** Every integer in `stdout` that follows `label` (`token 12` for label `token `), in order. */
const numbers = (stdout: string, label: string): bigint[] => [...stdout.matchAll(new RegExp(`${label}(\\d+)`, 'g'))].map((m) => BigInt(m[1]!));

/** What each example must print, by file name. */
const cases: Record<string, (file: string) => Promise<void>> = {
  'basic.mjs': async (file) => {
    assert.match(await runExample(file, db(file)), /running with token 1\ndone: true/);
  },

  'take-turns.mjs': async (file) => {
    const env = { BATON_STORE: `sqlite:${join(dir, 'take-turns.db')}` };
    const first = await runExample(file, env);
    assert.match(first, /12 turns, one holder at a time; each token higher than the one before: yes/);
    const second = await runExample(file, env);
    const lowest = numbers(second, 'token ').reduce((a, b) => (a < b ? a : b));
    assert.equal(lowest, 13n, 'a second run continues the tokens of the first');
  },

  'nightly-job.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    assert.match(stdout, /4 instances started: 1 ran the job \(report written by instance \d\), 3 skipped/);
    assert.equal(stdout.match(/: running the job with token 1\n/g)?.length, 1);
    assert.equal(stdout.match(/: skipped, /g)?.length, 3);
  },

  'read-write-lock.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    assert.match(stdout, /2 readers hold "catalogue" at once \(tokens 1 and 2\)\nreaders release\nwriter holds it alone \(token 3\)\nwriter releases\nlate reader holds it after the writer \(token 4\)\n/);
    assert.match(stdout, /upgrade refused: UPGRADE_REFUSED\n/);
    assert.match(stdout, /writing with token 6\ndowngraded: same token 6, another reader joins: true, a writer gets in: false\n/);
  },

  'transfer.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    assert.match(stdout, /50 transfers done, no deadlock; balances .*; total 500\n/);
    assert.match(stdout, /lockAll order for \["b", "a", "B", "é"\]: \["B","a","b","é"\]\n/);
  },

  'scheduled-job.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    const match = /(\d+) runs, (\d+) distinct slots: each slot ran once\n/.exec(stdout);
    assert.ok(match && match[1] === match[2] && Number(match[1]) >= 3, stdout);
    assert.match(stdout, /last slot \S+: ok in \d+ ms by early\n/);
  },

  'migration.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    assert.equal(stdout.match(/migrating schema 1 to 2/g)?.length, 1);
    assert.equal(stdout.match(/schema is already 2, nothing to do/g)?.length, 2);
    assert.match(stdout, /a late write with instance \d's token 1 was refused\nmigrated once, by instance \d; the database's fence is 3/);
  },

  'leader.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    const leaders = stdout.split('\n').filter((line) => /^leader: node/.test(line));
    assert.deepEqual(leaders, ['leader: node-a (token 1)', 'leader: node-b (token 2)', 'leader: node-a (token 3)']);
    assert.match(stdout, /leaders in turn: node-a, node-b, node-a; each term with a higher token/);
  },

  'rate-limited-api.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    const [, seen] = stdout.match(/24 calls answered; at most (\d+) in flight at once \(limit 3\)/) ?? [];
    assert.ok(seen !== undefined && Number(seen) >= 1 && Number(seen) <= 3, stdout);
  },

  'fencing-ids.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    assert.deepEqual(numbers(stdout, 'invoice '), Array.from({ length: 13 }, (_, i) => BigInt(i + 1)));
    assert.match(stdout, /invoice 13: umbrella\n13 invoices, each number higher than the one booked before: yes/);
  },

  'cache-warming.mjs': async (file) => {
    const stdout = await runExample(file, db(file));
    assert.equal(stdout.match(/: computed it/g)?.length, 1);
    assert.match(stdout, /instance 6: read the warm cache\nthe report was computed once for 6 instances/);
  },

  'redis.mjs': async (file) => {
    const stdout = await runExample(file, { REDIS_URL: redis[0]!.url });
    assert.match(stdout, /instance b tries: busy/);
    const [first, second] = numbers(stdout, 'with token ');
    assert.ok(first !== undefined && second !== undefined && second > first, stdout);
  },

  'redlock.mjs': async (file) => {
    const stdout = await runExample(file, { REDIS_URLS: redis.map((server) => server.url).join(',') });
    assert.match(stdout, /instance a holds "invoice-run" on a majority of 3 servers; token null/);
    assert.match(stdout, /instance b tries: busy\ninstance b holds "invoice-run" after a released it; token null/);
  },

  'redis-cluster.mjs': async (file) => {
    const stdout = await runExample(file, { REDIS_CLUSTER_NODES: cluster!.nodes.map((node) => `127.0.0.1:${node.port}`).join(',') });
    assert.match(stdout, /instance b finds every one busy/);
    const tokens = numbers(stdout, 'with token ');
    assert.equal(tokens.length, 4, stdout);
    assert.ok(tokens[3]! > tokens[0]!, stdout);
  },

  'dynamodb.mjs': async (file) => {
    const stdout = await runExample(file, { DYNAMODB_ENDPOINT: dynalite!.endpoint, AWS_REGION: DYNALITE_REGION, AWS_ACCESS_KEY_ID: DYNALITE_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: DYNALITE_CREDENTIALS.secretAccessKey });
    assert.match(stdout, /instance b waits in line/);
    const [first, second] = numbers(stdout, 'with token ');
    assert.ok(first !== undefined && second !== undefined && second > first, stdout);
  },

  'etcd.mjs': async (file) => {
    const stdout = await runExample(file, { ETCD_URL: etcd!.endpoints.join(',') });
    assert.match(stdout, /instance b waits in line/);
    const [first, second] = numbers(stdout, 'with token ');
    assert.ok(first !== undefined && second !== undefined && second > first, stdout);
  },
};

const files = readdirSync('examples').filter((name) => !name.startsWith('.')).sort();

describe('examples', () => {
  before(async () => {
    // Three Redis servers (the first alone for redis.mjs, all three for redlock.mjs), a Redis Cluster of three masters, one etcd member and dynalite.
    const starting = [
      ...[0, 1, 2].map(async () => void redis.push(await startRedis())),
      (async () => void (etcd = await startEtcd(1)))(),
      (async () => void (cluster = await startRedisCluster(3)))(),
      (async () => void (dynalite = await startDynalite()))(),
    ];
    const started = await Promise.allSettled(starting);
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
  });
  after(() => cleanUp('stop the examples\' servers and remove their files', {
    ...Object.fromEntries(redis.map((server) => [`stop redis-server on port ${server.port}`, () => server.stop()])),
    'stop etcd': () => etcd?.stop(),
    'stop the Redis Cluster': () => cluster?.stop(),
    'stop dynalite': () => dynalite?.stop(),
    'remove the lock files': () => rmSync(dir, { recursive: true, force: true }),
  }));

  it('every file in examples/ has a case here, and every case a file', () => {
    assert.deepEqual(files.filter((name) => !(name in cases)), [], 'examples without a case: add one to `cases` in test/examples.test.ts');
    assert.deepEqual(Object.keys(cases).filter((name) => !files.includes(name)), [], 'cases without an example');
  });

  for (const file of files) {
    it(file, async () => {
      const run = cases[file];
      if (!run) assert.fail(`examples/${file} has no case in test/examples.test.ts, so nothing runs it`);
      await run(file);
    });
  }
});
