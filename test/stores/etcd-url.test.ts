/** etcd:// URLs: parsing, opening a real member, the CLI on etcd, and no credentials in errors. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { InvalidArgumentError, StoreUnavailableError, createBaton } from '../../src/index.js';
import { openStore, parseStoreUrl } from '../../src/url.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

const run = promisify(execFile);
let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

describe('etcd:// store URLs', () => {
  it('parses every member, the credentials and the options', () => {
    assert.deepEqual(parseStoreUrl('etcd://e1:2379,e2:2379,10.0.0.3:2379?prefix=app/&sessionTtlMs=5000'), {
      scheme: 'etcd', hosts: ['http://e1:2379', 'http://e2:2379', 'http://10.0.0.3:2379'], prefix: 'app/', sessionTtlMs: 5000,
    });
    assert.deepEqual(parseStoreUrl('etcds://root:p%40ss@e1:2379?ca=/etc/etcd/ca.pem'), {
      scheme: 'etcd', hosts: ['https://e1:2379'], username: 'root', password: 'p@ss', ca: '/etc/etcd/ca.pem',
    });
    assert.deepEqual(parseStoreUrl('etcds://e1:2379?ca=/pki/ca.pem&cert=/pki/app.pem&key=/pki/app.key'), {
      scheme: 'etcd', hosts: ['https://e1:2379'], ca: '/pki/ca.pem', cert: '/pki/app.pem', key: '/pki/app.key',
    });
    for (const url of ['etcd://e1', 'etcd:e1:2379', 'etcd://e1:2379?prefix=app', 'etcd://e1:2379?sessionTtlMs=500', 'etcd://e1:2379?ca=/x.pem', 'etcd://e1:2379?ttl=1',
      'etcd://e1:2379?cert=/a.pem&key=/a.key', 'etcds://e1:2379?cert=/a.pem', 'etcds://u:secret@e1:2379?key=/a.key', 'etcds://e1:2379?cert=']) {
      assert.throws(() => parseStoreUrl(url), (error: unknown) => error instanceof InvalidArgumentError && !error.message.includes('secret'), url);
    }
  });

  it('opens a store on a real member; close closes the client it made', async () => {
    const baton = createBaton(await openStore(`etcd://${cluster.endpoints[0]!.slice('http://'.length)}?prefix=urltest/&sessionTtlMs=2000`));
    const lease = await baton.mutex('u').acquire({ ttlMs: 5000 });
    assert.equal(typeof lease.token, 'bigint');
    assert.deepEqual((await baton.list()).map((lock) => lock.name), ['u']);
    await baton.close();
  });

  it('fails with StoreUnavailableError, without the password, when no member can be reached', async () => {
    await assert.rejects(openStore('etcd://root:hunter2@127.0.0.1:1,127.0.0.1:2'), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.doesNotMatch(error.message, /hunter2/);
      return true;
    });
  });

  it('the CLI runs a command under an etcd lock, which etcdctl sees', async () => {
    const url = `etcd://${cluster.endpoints[0]!.slice('http://'.length)}`;
    const { stdout } = await run(process.execPath, [resolve('build/src/cli/main.js'), '--store', url, 'run', 'job', '--', 'sh', '-c',
      `echo "$BATON_LOCK $BATON_TOKEN"; etcdctl --endpoints=${cluster.endpoints[0]} get --prefix --keys-only baton/mutex/job/`]);
    const [line, key] = stdout.trim().split('\n');
    assert.match(line!, /^job \d+$/);
    assert.match(key!, /^baton\/mutex\/job\/[0-9a-f]+$/, 'etcdctl sees the key, named by the session lease as etcd\'s own recipe names it, while the command runs');
    const { stdout: listed } = await run(process.execPath, [resolve('build/src/cli/main.js'), '--store', url, 'ls', '--json']);
    assert.deepEqual(JSON.parse(listed), [], 'released when the command ended');
  });
});
