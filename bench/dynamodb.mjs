// Benchmarks of the DynamoDB store against the raw recipe a Node user of DynamoDB would write
// instead, in one run, on dynalite (DynamoDB's API, in a process of its own on loopback, data in
// memory) that this script starts:
//   - raw: a conditional PutItem (attribute_not_exists) to take, a conditional DeleteItem (owner
//     matches) to give back; retried every 20 ms when busy: no queue, no token, no renewal, no
//     expiry of a dead holder (its item stays forever);
//   - baton's DynamoDB mutex: one item per lock, a fencing token, FIFO queue, expiry by observation.
// Besides cycles per second, it counts requests (what a DynamoDB bill counts) per cycle and, on
// the hot key, per grant.
// Usage: npm run bench:dynamodb  (= npm run build && node bench/dynamodb.mjs [--seconds 3] [--workers 8])
// Prints tables with ratios; nothing here is asserted. See docs/benchmarks.md and docs/dynamodb.md.
import { fork, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { DeleteItemCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { createBaton, monotonicNow } from 'baton-lock';
import { createDynamoDbStore, ensureTable } from 'baton-lock/dynamodb';
import { fmt, freePort, hotKeyStats, rate, table } from './lib.mjs';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '3' }, workers: { type: 'string', default: '8' }, role: { type: 'string' }, target: { type: 'string' }, endpoint: { type: 'string' } } });
const seconds = Number(values.seconds);
const TABLE = 'bench-locks';
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client on `endpoint` that counts the requests it sends. */
function countingClient(endpoint) {
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const counter = { requests: 0 };
  const send = client.send.bind(client);
  client.send = (command, options) => {
    counter.requests++;
    return send(command, options);
  };
  return { client, counter };
}

// ---- The contenders: each makes `{ take(key), give(handle), close(), counter }`.
async function contender(target, endpoint) {
  const { client, counter } = countingClient(endpoint);
  if (target === 'raw') {
    const owner = `${process.pid}-${Math.random().toString(36).slice(2)}`;
    return {
      counter,
      async take(key) {
        for (;;) {
          try {
            await client.send(new PutItemCommand({ TableName: TABLE, Item: { pk: { S: `raw:${key}` }, owner: { S: owner } }, ConditionExpression: 'attribute_not_exists(pk)' }));
            return key;
          } catch (error) {
            if (error.name !== 'ConditionalCheckFailedException') throw error;
            await sleep(20);
          }
        }
      },
      give: (key) => client.send(new DeleteItemCommand({ TableName: TABLE, Key: { pk: { S: `raw:${key}` } }, ConditionExpression: '#o = :o', ExpressionAttributeNames: { '#o': 'owner' }, ExpressionAttributeValues: { ':o': { S: owner } } })),
      close: async () => client.destroy(),
    };
  }
  const baton = createBaton(createDynamoDbStore(client, { table: TABLE, closeClient: true }));
  return {
    counter,
    take: (key) => baton.mutex(key).acquire({ ttlMs: 10_000 }),
    give: (lease) => lease.release(),
    close: () => baton.close(),
  };
}

// ---- Worker processes for the hot-key scenario ----------------------------------------------
async function worker(target, endpoint, ms) {
  const c = await contender(target, endpoint);
  const times = [];
  process.send('ready');
  await new Promise((resolve) => process.once('message', resolve));
  const before = c.counter.requests;
  const end = monotonicNow() + ms;
  while (monotonicNow() < end) {
    const asked = monotonicNow();
    const handle = await c.take(`hot-${target}`);
    const granted = monotonicNow();
    await c.give(handle);
    times.push([asked, granted, monotonicNow()]);
  }
  process.send({ times, requests: c.counter.requests - before });
  await c.close();
  process.exit(0);
}

async function hotKey(target, endpoint, workers, ms) {
  const children = Array.from({ length: workers }, () => fork(fileURLToPath(import.meta.url), ['--role', 'worker', '--target', target, '--endpoint', endpoint, '--seconds', String(ms / 1000)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] }));
  const next = () => children.map((child) => new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`a ${target} worker exited with code ${code}`)));
  }));
  await Promise.all(next());
  const results = next();
  for (const child of children) child.send('go');
  const answers = await Promise.all(results);
  await Promise.all(children.map((child) => new Promise((resolve) => (child.exitCode !== null ? resolve() : child.once('exit', resolve)))));
  return { stats: hotKeyStats(answers.map((a) => a.times), ms), requests: answers.reduce((sum, a) => sum + a.requests, 0) };
}

async function startDynalite() {
  const port = await freePort();
  const script = `const s = require('dynalite')({ createTableMs: 0 }); s.listen(${port}, '127.0.0.1', () => process.stdout.write('listening\\n'));`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('exit', (code) => reject(new Error(`dynalite exited with code ${code}`)));
  });
  return { endpoint: `http://127.0.0.1:${port}`, stop: () => child.kill('SIGKILL') };
}

const NAMES = { raw: 'raw conditional PutItem / DeleteItem (retry every 20 ms when busy)', baton: 'baton DynamoDB mutex' };

async function main() {
  const dynalite = await startDynalite();
  try {
    const { client } = countingClient(dynalite.endpoint);
    await ensureTable(client, { table: TABLE });
    client.destroy();
    console.log(`node ${process.version}, dynalite in one process (${dynalite.endpoint}, in memory), ${seconds} s per measurement, ${values.workers} worker processes for the hot key`);
    const targets = ['raw', 'baton'];
    const seq = {};
    for (const target of targets) {
      const c = await contender(target, dynalite.endpoint);
      await c.give(await c.take('seq')); // a new lock's first cycle (item and floor reads) is not part of the measurement
      const before = c.counter.requests;
      let cycles = 0;
      const perSecond = await rate(async () => {
        cycles++;
        await c.give(await c.take('seq'));
      }, seconds * 1000);
      seq[target] = { perSecond, requests: (c.counter.requests - before) / cycles };
      await c.close();
    }
    table('Cycles per second (acquire + release), one client, one key', ['lock', 'cycles/s', '÷ raw', 'requests per cycle'],
      targets.map((t) => [NAMES[t], fmt(seq[t].perSecond), `${fmt(seq[t].perSecond / seq.raw.perSecond, 2)}x`, fmt(seq[t].requests, 2)]));

    const workers = Number(values.workers);
    const hot = {};
    for (const target of targets) hot[target] = await hotKey(target, dynalite.endpoint, workers, seconds * 1000);
    table(`One hot lock, ${workers} processes, hold 0 ms, ${seconds} s (times in ms)`, ['lock', 'locks/s', '÷ raw', 'requests per grant', 'handoff p50', 'handoff p99', 'worst wait', 'per worker', 'Jain'],
      targets.map((t) => {
        const { stats, requests } = hot[t];
        const grants = stats.counts.reduce((a, b) => a + b, 0);
        return [NAMES[t], fmt(stats.locksPerSec, 1), `${fmt(stats.locksPerSec / hot.raw.stats.locksPerSec, 2)}x`, fmt(requests / grants, 1), fmt(stats.handoffP50, 1), fmt(stats.handoffP99, 1), fmt(stats.waitMax, 0), stats.counts.join('/'), fmt(stats.jain, 3)];
      }));
  } finally {
    dynalite.stop();
  }
}

if (values.role === 'worker') await worker(values.target, values.endpoint, seconds * 1000);
else {
  await main();
  process.exit(0);
}
