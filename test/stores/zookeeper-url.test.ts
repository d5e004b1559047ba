/**
 * zk:// URLs: how they read, and stores opened by them on a real server: a chroot, digest
 * auth with the creator-only ACL, a session timeout the server negotiates, and the error when
 * no server answers.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createBaton, InvalidArgumentError, StoreUnavailableError } from '../../src/index.js';
import { openStore, parseStoreUrl } from '../../src/url.js';
import { ZooKeeperStore } from '../../src/stores/zookeeper/index.js';
import { freePort } from '../helpers/process.js';
import { startZooKeeper, zookeeper, type ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';

const invalidUrl = (pattern?: RegExp) => (error: unknown): boolean => error instanceof InvalidArgumentError && error.argument === 'url' && (!pattern || pattern.test(error.message));

describe('zk:// URLs', () => {
  it('read every server, the chroot, the credentials and the options', () => {
    assert.deepEqual(parseStoreUrl('zk://a:2181,b:2182'), { scheme: 'zk', hosts: ['a:2181', 'b:2182'] });
    assert.deepEqual(parseStoreUrl('zookeeper://u:p%40ss@a:2181/apps/x?root=/locks&sessionTimeoutMs=4000'), {
      scheme: 'zk', hosts: ['a:2181'], chroot: '/apps/x', username: 'u', password: 'p@ss', root: '/locks', sessionTimeoutMs: 4000,
    });
    assert.deepEqual(parseStoreUrl('zk://[::1]:2181/'), { scheme: 'zk', hosts: ['[::1]:2181'] });
    assert.throws(() => parseStoreUrl('zk://a'), invalidUrl(/needs a host and a port/));
    assert.throws(() => parseStoreUrl('zk:a:1'), invalidUrl(/Malformed ZooKeeper URL/));
    assert.throws(() => parseStoreUrl('zk://a:1?root=locks'), invalidUrl(/"root" must be an absolute znode path/));
    assert.throws(() => parseStoreUrl('zk://a:1?sessionTimeoutMs=10s'), invalidUrl(/sessionTimeoutMs=10000/));
    assert.throws(() => parseStoreUrl('zk://a:1?prefix=x'), invalidUrl(/Unknown store URL option "prefix" for zk:\/\//));
    assert.throws(() => parseStoreUrl('zk://u:secret@a:1?x=1'), (error: unknown) => error instanceof InvalidArgumentError && !error.message.includes('secret'));
  });
});

describe('zk:// stores on a real server', () => {
  let server: ZooKeeperEnsemble;
  before(async () => {
    server = await startZooKeeper(1);
  });
  after(() => server.stop());

  it('keep their locks under the chroot, with the session timeout the server negotiated', async () => {
    const url = `zk://${server.hosts[0]}/chrooted/app?root=/locks&sessionTimeoutMs=1500`;
    // The chroot must exist, as with any ZooKeeper client.
    const admin = server.client();
    await new Promise<void>((resolve, reject) => admin.create('/chrooted', undefined, undefined, 0, (e) => (e ? reject(e) : resolve())));
    await new Promise<void>((resolve, reject) => admin.create('/chrooted/app', undefined, undefined, 0, (e) => (e ? reject(e) : resolve())));
    const store = await openStore(url);
    assert.ok(store instanceof ZooKeeperStore);
    const baton = createBaton(store);
    try {
      const lease = await baton.mutex('job').acquire({ ttlMs: 5000 });
      const children = await new Promise<string[]>((resolve, reject) => admin.getChildren('/chrooted/app/locks/mutex/job', undefined, (e, c) => (e ? reject(e) : resolve(c))));
      assert.equal(children.length, 1);
      assert.match(children[0]!, /^_c_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-lock-\d{10}$/);
      const [holder] = (await baton.inspect('job')).holders;
      assert.equal(holder?.ttlMs, 1500);
      await lease.release();
    } finally {
      await baton.close();
    }
  });

  it('with credentials, create znodes only their user can touch', async () => {
    const store = await openStore(`zk://alice:secret@${server.hosts[0]}?root=/private`);
    const baton = createBaton(store);
    try {
      const lease = await baton.mutex('p').acquire({ ttlMs: 5000 });
      const other = zookeeper.createClient(server.hosts[0]!, { sessionTimeout: 1000 });
      other.connect();
      try {
        const refused = await new Promise<Error | null>((resolve) => other.remove((store as ZooKeeperStore).nodeOf(lease.owner)!, -1, (e) => resolve(e)));
        assert.equal((refused as { name?: string } | null)?.name, 'NO_AUTH');
      } finally {
        other.close();
      }
      assert.equal(lease.held, true);
      await lease.release();
    } finally {
      await baton.close();
    }
  });

  it('fail to open with StoreUnavailableError naming the servers when none answers', async () => {
    const port = await freePort();
    await assert.rejects(openStore(`zk://u:pw@127.0.0.1:${port}`), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError);
      assert.match(error.message, new RegExp(`Cannot reach ZooKeeper at zk://127\\.0\\.0\\.1:${port}: connect ECONNREFUSED 127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(error.message, /pw/);
      return true;
    });
  });
});
