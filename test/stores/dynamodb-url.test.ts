/** dynamodb:// URLs: parsing, opening a real endpoint (dynalite), making the table, the CLI, and no credentials anywhere. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, StoreUnavailableError, createBaton, monotonicNow } from '../../src/index.js';
import { openStore, parseStoreUrl } from '../../src/url.js';
import { DYNALITE_CREDENTIALS, DYNALITE_REGION, startDynalite, type DynaliteServer } from '../helpers/dynalite-server.js';
import { freePort } from '../helpers/process.js';

const run = promisify(execFile);
/** The SDK's credential chain reads these; dynalite checks none. */
const AWS_ENV = { AWS_ACCESS_KEY_ID: DYNALITE_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: DYNALITE_CREDENTIALS.secretAccessKey };
let server: DynaliteServer;
before(async () => {
  Object.assign(process.env, AWS_ENV);
  server = await startDynalite();
});
after(() => server.stop());

const invalid = (pattern: RegExp) => (error: unknown): boolean => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.argument, 'url');
  assert.match(error.message, pattern);
  return true;
};

describe('dynamodb:// store URLs', () => {
  it('parses an endpoint of your own, the default endpoint, and the options', () => {
    assert.deepEqual(parseStoreUrl('dynamodb://127.0.0.1:8000/locks?region=eu-west-1'), { scheme: 'dynamodb', endpoint: 'http://127.0.0.1:8000', table: 'locks', region: 'eu-west-1' });
    assert.deepEqual(parseStoreUrl('dynamodb:///locks?region=us-east-1&create=true&prefix=app'), { scheme: 'dynamodb', table: 'locks', region: 'us-east-1', create: true, prefix: 'app' });
    assert.deepEqual(parseStoreUrl('DynamoDB:///my.locks_1'), { scheme: 'dynamodb', table: 'my.locks_1' });
    assert.deepEqual(parseStoreUrl('dynamodb://[::1]:8000/locks'), { scheme: 'dynamodb', endpoint: 'http://[::1]:8000', table: 'locks' });
  });

  it('refuses a malformed URL with InvalidArgumentError, and never repeats credentials', () => {
    assert.throws(() => parseStoreUrl('dynamodb:locks'), invalid(/Expected a DynamoDB URL/));
    assert.throws(() => parseStoreUrl('dynamodb:///'), invalid(/names its table/));
    assert.throws(() => parseStoreUrl('dynamodb:///ab'), invalid(/names its table/));
    assert.throws(() => parseStoreUrl('dynamodb://host/locks'), invalid(/needs a port/));
    assert.throws(() => parseStoreUrl('dynamodb:///locks?region=Mars%201'), invalid(/"region" must be an AWS region/));
    assert.throws(() => parseStoreUrl('dynamodb:///locks?create=yes'), invalid(/"create" must be true or false/));
    assert.throws(() => parseStoreUrl('dynamodb:///locks?prefix=a:b'), invalid(/"prefix" must be/));
    assert.throws(() => parseStoreUrl('dynamodb:///locks?ttl=1'), invalid(/Unknown store URL option "ttl" for dynamodb:\/\//));
    assert.throws(() => parseStoreUrl('dynamodb:///locks?region=a&region=b'), invalid(/given twice/));
    assert.throws(() => parseStoreUrl('dynamodb://AKIAEXAMPLE:hunter2@127.0.0.1:8000/locks'), (error: unknown) => {
      invalid(/takes no credentials.*AWS_ACCESS_KEY_ID/)(error);
      assert.doesNotMatch((error as Error).message, /hunter2|AKIAEXAMPLE/);
      return true;
    });
  });

  it('opens a store on a real endpoint with create=true, which makes the table once; close destroys the client it made', async () => {
    const url = `dynamodb://127.0.0.1:${server.port}/url-made?region=${DYNALITE_REGION}&create=true&prefix=app`;
    const baton = createBaton(await openStore(url));
    const lease = await baton.mutex('u').acquire({ ttlMs: 5000 });
    assert.equal(typeof lease.token, 'bigint');
    assert.deepEqual((await baton.list()).map((lock) => lock.name), ['u']);
    await baton.close();
    // The table is there now: opening without create finds it, and sees the lock's fence.
    const again = createBaton(await openStore(`dynamodb://127.0.0.1:${server.port}/url-made?region=${DYNALITE_REGION}&prefix=app`));
    assert.equal((await again.inspect('u')).fence, lease.token);
    await again.close();
  });

  it('fails with StoreUnavailableError when the table is missing, saying how to make it', async () => {
    await assert.rejects(openStore(`dynamodb://127.0.0.1:${server.port}/no-such-table?region=${DYNALITE_REGION}`), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(error.message, /The DynamoDB table "no-such-table" does not exist at http:\/\/127\.0\.0\.1:\d+: add &create=true/);
      return true;
    });
  });

  it('fails with StoreUnavailableError naming the endpoint when nothing listens there', async () => {
    const port = await freePort();
    const started = monotonicNow();
    await assert.rejects(openStore(`dynamodb://127.0.0.1:${port}/locks?region=${DYNALITE_REGION}`), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.match(error.message, new RegExp(`Cannot reach DynamoDB at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`));
      return true;
    });
    assert.ok(monotonicNow() - started < 10_000, `failed after ${Math.round(monotonicNow() - started)} ms`);
  });

  it('the CLI runs a command under a DynamoDB lock, and lists it', async () => {
    const url = `dynamodb://127.0.0.1:${server.port}/cli-locks?region=${DYNALITE_REGION}&create=true`;
    const env = { ...process.env, ...AWS_ENV };
    const { stdout } = await run(process.execPath, [resolve('build/src/cli/main.js'), '--store', url, 'run', 'job', '--', 'sh', '-c', 'echo "$BATON_LOCK $BATON_TOKEN"'], { env, timeout: 30_000 });
    assert.match(stdout, /^job \d+\n$/);
    const { stdout: listed } = await run(process.execPath, [resolve('build/src/cli/main.js'), '--store', url, 'ls', '--json'], { env, timeout: 30_000 });
    assert.equal((JSON.parse(listed) as { name: string }[])[0]!.name, 'job');
  });
});
