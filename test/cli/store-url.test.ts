/** Store URLs (`baton-lock/url`), which the CLI's --store and BATON_STORE use. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { InvalidArgumentError, StoreUnavailableError, createBaton } from '../../src/index.js';
import { SqliteStore } from '../../src/stores/sqlite/index.js';
import { STORE_SCHEMES, SUPPORTED_SCHEMES, openStore, parseStoreUrl, redactUrl } from '../../src/url.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-url-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const invalidUrl = (pattern?: RegExp) => (error: unknown): boolean => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.argument, 'url');
  if (pattern) assert.match(error.message, pattern);
  return true;
};

describe('parseStoreUrl', () => {
  it('reads every form of sqlite: path', () => {
    assert.deepEqual(parseStoreUrl('sqlite:/var/lib/app/locks.db'), { scheme: 'sqlite', path: '/var/lib/app/locks.db' });
    assert.deepEqual(parseStoreUrl('sqlite:///var/lib/app/locks.db'), { scheme: 'sqlite', path: '/var/lib/app/locks.db' });
    assert.deepEqual(parseStoreUrl('sqlite://localhost/var/locks.db'), { scheme: 'sqlite', path: '/var/locks.db' });
    assert.deepEqual(parseStoreUrl('sqlite:locks/x.db'), { scheme: 'sqlite', path: resolve('locks/x.db') });
    assert.deepEqual(parseStoreUrl('sqlite:./x.db'), { scheme: 'sqlite', path: resolve('x.db') });
    assert.deepEqual(parseStoreUrl('SQLite:/a%20b.db'), { scheme: 'sqlite', path: '/a b.db' });
    assert.deepEqual(parseStoreUrl('sqlite:'), { scheme: 'sqlite' });
    assert.deepEqual(parseStoreUrl('sqlite:?prefix=app'), { scheme: 'sqlite', prefix: 'app' });
  });

  it('maps query options onto SqliteStoreOptions', () => {
    assert.deepEqual(parseStoreUrl('sqlite:/x.db?prefix=app&durability=normal&busyTimeoutMs=2000'), {
      scheme: 'sqlite', path: '/x.db', prefix: 'app', durability: 'normal', busyTimeoutMs: 2000,
    });
    assert.throws(() => parseStoreUrl('sqlite:/x.db?durability=fast'), invalidUrl(/"durability" must be "full" or "normal"/));
    assert.throws(() => parseStoreUrl('sqlite:/x.db?busyTimeoutMs=-1'), invalidUrl(/busyTimeoutMs/));
    assert.deepEqual(parseStoreUrl('sqlite:/x.db?busyTimeoutMs=0'), { scheme: 'sqlite', path: '/x.db', busyTimeoutMs: 0 });
    assert.throws(() => parseStoreUrl('sqlite:/x.db?prefix=a:b'), invalidUrl(/prefix/));
    assert.throws(() => parseStoreUrl('sqlite:/x.db?prefix=a&prefix=b'), invalidUrl(/given twice/));
    assert.throws(() => parseStoreUrl('sqlite:/x.db?timeout=5'), invalidUrl(/Unknown store URL option "timeout"/));
  });

  it('reads memory:', () => {
    assert.deepEqual(parseStoreUrl('memory:'), { scheme: 'memory' });
    assert.deepEqual(parseStoreUrl('memory://'), { scheme: 'memory' });
    assert.throws(() => parseStoreUrl('memory:x'), invalidUrl(/takes no path/));
  });

  it('rejects other schemes, naming the supported ones', () => {
    assert.throws(() => parseStoreUrl('nope://x'), invalidUrl(/Unknown store URL scheme "nope:"; baton supports sqlite:.*redis:\/\/.*redis\+cluster:\/\/.*etcd:\/\/.*zk:\/\/.*postgres:\/\/.*dynamodb:\/\/.*memory:/));
    assert.throws(() => parseStoreUrl('sqlite://host/x.db'), invalidUrl(/has no host/));
    assert.throws(() => parseStoreUrl('/tmp/locks.db'), invalidUrl(/write sqlite:\/tmp\/locks\.db/));
    assert.throws(() => parseStoreUrl(''), invalidUrl());
    assert.throws(() => parseStoreUrl('sqlite:/50%.db'), invalidUrl(/%25/));
  });

  it('reads redis+quorum:// as one node URL per host, with the quorum options', () => {
    assert.deepEqual(parseStoreUrl('redis+quorum://a:1,b:2,c:3'), { scheme: 'redis+quorum', urls: ['redis://a:1', 'redis://b:2', 'redis://c:3'] });
    assert.deepEqual(parseStoreUrl('rediss+quorum://u:pw@a:1,b:2,c:3/2?prefix=app&nodeTimeoutMs=100'), {
      scheme: 'redis+quorum', urls: ['rediss://u:pw@a:1/2', 'rediss://u:pw@b:2/2', 'rediss://u:pw@c:3/2'], prefix: 'app', nodeTimeoutMs: 100,
    });
    assert.throws(() => parseStoreUrl('redis+quorum://a:1,,c:3'), invalidUrl(/comma-separated list/));
    assert.throws(() => parseStoreUrl('redis+quorum://a:1,A:1,c:3'), invalidUrl(/lists a node twice/));
    assert.throws(() => parseStoreUrl('redis+quorum://a:1,b:2,c:3?nodeTimeoutMs=0'), invalidUrl(/"nodeTimeoutMs" must be a whole number of milliseconds from 1 to/));
    assert.throws(() => parseStoreUrl('redis+quorum://a:1,b:2,c:3?fence=1'), invalidUrl(/Unknown store URL option "fence" for redis\+quorum/));
  });

  it('reads redis+cluster:// as seed node URLs, with the credentials for every node', () => {
    assert.deepEqual(parseStoreUrl('redis+cluster://a:7001'), { scheme: 'redis+cluster', urls: ['redis://a:7001'] });
    assert.deepEqual(parseStoreUrl('redis+cluster://a:7001,b:7002,c:7003?prefix=app'), { scheme: 'redis+cluster', urls: ['redis://a:7001', 'redis://b:7002', 'redis://c:7003'], prefix: 'app' });
    assert.deepEqual(parseStoreUrl('rediss+cluster://u:p%40w@a:1,[::1]:2/0'), { scheme: 'redis+cluster', urls: ['rediss://u:p%40w@a:1', 'rediss://u:p%40w@[::1]:2'] });
    assert.throws(() => parseStoreUrl('redis+cluster:a:1'), invalidUrl(/Malformed Redis Cluster URL.*expected redis\+cluster:\/\//));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1,,b:2'), invalidUrl(/comma-separated list/));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1,A:1'), invalidUrl(/lists a node twice/));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1,b:x:y'), invalidUrl(/Malformed node "b:x:y"/));
    assert.throws(() => parseStoreUrl('redis+cluster://u:%zz@a:1'), invalidUrl(/Malformed percent-escape in the credentials/));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1/2'), invalidUrl(/only database 0, got "\/2"/));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1?prefix=a:b'), invalidUrl(/"prefix" must be/));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1?prefix=a&prefix=b'), invalidUrl(/given twice/));
    assert.throws(() => parseStoreUrl('redis+cluster://a:1?nodeTimeoutMs=100'), invalidUrl(/Unknown store URL option "nodeTimeoutMs" for redis\+cluster/));
  });

  it('reads every duration option as whole milliseconds, with the range of its store option, and no unit', () => {
    const options = [
      { url: 'sqlite:/x.db?busyTimeoutMs=', key: 'busyTimeoutMs', min: 0 },
      { url: 'redis+quorum://a:1,b:2,c:3?nodeTimeoutMs=', key: 'nodeTimeoutMs', min: 1 },
      { url: 'etcd://e1:2379?sessionTtlMs=', key: 'sessionTtlMs', min: 1000 },
      { url: 'postgres://db/app?statementTimeoutMs=', key: 'statementTimeoutMs', min: 1 },
      { url: 'zk://z1:2181?sessionTimeoutMs=', key: 'sessionTimeoutMs', min: 200 },
    ];
    // Every scheme's duration options are here: the names that end in Ms.
    assert.deepEqual(STORE_SCHEMES.flatMap((scheme) => scheme.options.filter((o) => o.endsWith('Ms'))).sort(), options.map((o) => o.key).sort());
    for (const { url, key, min } of options) {
      const value = (text: string) => (parseStoreUrl(url + text) as unknown as Record<string, number>)[key];
      assert.equal(value(String(min)), min, key);
      assert.equal(value('2147483647'), 2 ** 31 - 1, key);
      for (const bad of [String(min - 1), '2147483648', '1.5', '', 'x']) {
        assert.throws(() => parseStoreUrl(url + bad), invalidUrl(new RegExp(`^The store URL option "${key}" must be a whole number of milliseconds from ${min} to 2147483647, got "${bad.replace('.', '\\.')}"$`)), `${key}=${bad}`);
      }
      // A unit is refused, with the number of milliseconds it meant.
      assert.throws(() => parseStoreUrl(`${url}10s`), invalidUrl(new RegExp(`got "10s": the option is in milliseconds, write ${key}=10000$`)), key);
    }
  });

  it('never repeats credentials', () => {
    for (const url of ['redis://admin:hunter2@cache:6379/0?prefix=a:b', 'redis+quorum://admin:hunter2@a:1,a:1', 'redis+quorum://admin:hunter2@a:1,b:x:y?prefix=a:b', 'redis+cluster://admin:hunter2@a:1,b:x:y', 'rediss+cluster://admin:hunter2@a:1/3', 'redis+cluster://admin:hunter2@a:1?prefix=a:b', 'redis+cluster:admin:hunter2@a:1', 'redis+cluster://admin:hunter2%zz@a:1', 'redis+cluster://admin:hunter2@a:1,a:1', 'etcd://root:hunter2@e1:2379?prefix=nope', 'etcd://root:hunter2@e1', 'postgres://app:hunter2@db/app?schema=no-pe', 'postgres://app:hunter2@db/app?listen=nope%3A%2F%2Fapp%3Ahunter2%40db', 'nope://u:hunter2@h', 'u:hunter2@host', 'hunter2@host', 'zk://root:hunter2@z1', 'zk://root:hunter2@z1:2181?root=x']) {
      assert.throws(() => parseStoreUrl(url), (error: Error) => {
        assert.ok(error instanceof InvalidArgumentError);
        assert.doesNotMatch(error.message, /hunter2/, url);
        return true;
      });
    }
    assert.equal(redactUrl('redis://admin:hunter2@cache:6379/0'), 'redis://cache:6379/0');
    assert.equal(redactUrl('redis+quorum://admin:hunter2@a:1,b:2,c:3/0'), 'redis+quorum://a:1,b:2,c:3/0');
    assert.equal(redactUrl('rediss+cluster://admin:hunter2@a:1,b:2'), 'rediss+cluster://a:1,b:2');
    assert.equal(redactUrl('sqlite:/x@y.db'), 'sqlite:/x@y.db');
  });
});

describe('STORE_SCHEMES', () => {
  it('is the list of schemes parseStoreUrl accepts, and no other', () => {
    assert.deepEqual(SUPPORTED_SCHEMES, STORE_SCHEMES.flatMap((scheme) => scheme.names));
    assert.equal(new Set(SUPPORTED_SCHEMES).size, SUPPORTED_SCHEMES.length, 'two stores claim one scheme');
    // A registered name reaches its store's parser: "name:" alone is read or refused as malformed, never as an unknown scheme.
    for (const scheme of STORE_SCHEMES) {
      for (const url of scheme.names.flatMap((name) => [`${name}:`, `${name.toUpperCase()}://`])) {
        try {
          assert.equal(parseStoreUrl(url).scheme, scheme.names[0], url);
        } catch (error) {
          assert.ok(error instanceof InvalidArgumentError, String(error));
          assert.doesNotMatch(error.message, /Unknown store URL scheme|not supported yet/, url);
        }
      }
    }
    // The schemes an unknown scheme's message offers are exactly the registered ones.
    const message = (() => {
      try {
        parseStoreUrl('nope://x');
      } catch (error) {
        return (error as Error).message;
      }
      assert.fail('nope:// was accepted');
    })();
    const offered = message.slice(message.indexOf('baton supports ')).matchAll(/(?<![\w+.-])([a-z][a-z0-9+.-]*):/g);
    assert.deepEqual(new Set([...offered].map((m) => m[1])), new Set(SUPPORTED_SCHEMES));
    for (const url of ['redis+sentinel://a:1', 'sqlite3:x.db', 'mem:', 'etcd3://a:1', 'rediss+quorum+cluster://a:1']) {
      assert.throws(() => parseStoreUrl(url), invalidUrl(/Unknown store URL scheme/), url);
    }
  });
});

describe('openStore', () => {
  it('opens a memory store', async () => {
    const store = await openStore('memory:');
    assert.equal(store.name, 'memory');
    const baton = createBaton(store);
    const lease = await baton.mutex('m').acquire();
    assert.equal(lease.token, 1n);
    await baton.close();
  });

  it('opens a SQLite file with the URL options', async () => {
    const path = join(dir, 'sub', 'locks.db');
    const store = await openStore(`sqlite:${path}?prefix=app&durability=normal`);
    assert.ok(store instanceof SqliteStore);
    assert.equal(store.path, path);
    const baton = createBaton(store);
    await baton.mutex('m').withLock(() => undefined);
    await baton.close();
    // The prefix keeps apps apart in one file.
    const other = createBaton(await openStore(`sqlite:${path}`));
    assert.deepEqual(await other.list(), []);
    await other.close();
  });

  it('fails early with StoreUnavailableError when the file cannot be opened', async () => {
    await assert.rejects(openStore(`sqlite:${join(dir, 'sub', 'locks.db', 'x.db')}`), StoreUnavailableError);
  });
});
