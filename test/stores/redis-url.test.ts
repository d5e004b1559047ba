/** redis:// URLs: parsing, opening a real server, the CLI on Redis, and no credentials in errors. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, StoreUnavailableError, createBaton } from '../../src/index.js';
import { openStore, parseStoreUrl } from '../../src/url.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const run = promisify(execFile);
let server: RedisServer;
before(async () => {
  server = await startRedis();
});
after(() => server.stop());

describe('redis:// store URLs', () => {
  it('parses redis:// and rediss://, keeping baton options out of the connection URL', () => {
    assert.deepEqual(parseStoreUrl('redis://cache:6379/2?prefix=app'), { scheme: 'redis', url: 'redis://cache:6379/2', prefix: 'app' });
    assert.deepEqual(parseStoreUrl('rediss://u:p@cache:6380'), { scheme: 'redis', url: 'rediss://u:p@cache:6380' });
    // As with every other scheme, an option given twice is refused rather than one silently winning.
    assert.throws(() => parseStoreUrl('redis://u:hunter2@cache:6379?prefix=a&prefix=b'), (error: unknown) => {
      assert.ok(error instanceof InvalidArgumentError, String(error));
      assert.match(error.message, /option "prefix" is given twice in "redis:\/\/cache:6379\?prefix=a&prefix=b"/);
      return true;
    });
  });

  it('opens a store on a real server; close quits the client it made', async () => {
    const baton = createBaton(await openStore(`${server.url}?prefix=urltest`));
    const lease = await baton.mutex('u').acquire({ ttlMs: 5000 });
    assert.equal(typeof lease.token, 'bigint');
    assert.equal((await baton.list()).length, 1);
    await baton.close();
  });

  it('fails with StoreUnavailableError, without the password, when the server cannot be reached', async () => {
    await assert.rejects(openStore('redis://admin:hunter2@127.0.0.1:1/0'), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });

  it('the CLI runs a command under a Redis lock', async () => {
    const { stdout } = await run(process.execPath, [resolve('build/src/cli/main.js'), '--store', `${server.url}?prefix=cli`, 'run', 'job', '--', 'sh', '-c', 'echo "$BATON_LOCK $BATON_TOKEN"']);
    assert.match(stdout, /^job \d+\n$/);
    const { stdout: listed } = await run(process.execPath, [resolve('build/src/cli/main.js'), '--store', `${server.url}?prefix=cli`, 'ls', '--json']);
    assert.equal((JSON.parse(listed) as { name: string }[])[0]!.name, 'job');
  });
});
