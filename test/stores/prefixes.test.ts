/**
 * Stores that share one backing under different prefixes see only their own locks: `list`
 * and `prune` read a prefix as text, never as a pattern (`%`, `_`, `*`, `?`, `[`, `\`), nor
 * as a count of characters (a prefix with a character outside the BMP), and one prefix that
 * begins with another (`t` and `t;`, etcd's `t/` and `t/mutex/`) shows none of the other's
 * locks. The Redis store's SCAN pattern is tested in redis.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createBaton, type LockStore } from '../../src/index.js';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

/** Takes one lock named after each prefix, then checks what each store lists and prunes. */
async function eachSeesItsOwn(prefixes: readonly string[], open: (prefix: string) => LockStore): Promise<void> {
  const batons = prefixes.map((prefix) => createBaton(open(prefix)));
  try {
    const leases = await Promise.all(batons.map((baton, i) => baton.mutex(`lock of ${prefixes[i]}`).acquire()));
    for (const [i, baton] of batons.entries()) {
      assert.deepEqual((await baton.list()).map((lock) => lock.name), [`lock of ${prefixes[i]}`], `prefix ${JSON.stringify(prefixes[i])}`);
      assert.deepEqual((await baton.list({ kind: 'mutex' })).map((lock) => lock.name), [`lock of ${prefixes[i]}`], `prefix ${JSON.stringify(prefixes[i])}, mutexes`);
    }
    // Released one at a time: each prune removes its own idle lock and nobody else's.
    for (const [i, baton] of batons.entries()) {
      await leases[i]!.release();
      const removed = await baton.prune();
      for (const [j, other] of batons.entries()) {
        const names = (await other.list()).map((lock) => lock.name);
        assert.deepEqual(names, j <= i ? [] : [`lock of ${prefixes[j]}`], `after ${JSON.stringify(prefixes[i])} pruned ${removed}, prefix ${JSON.stringify(prefixes[j])} lists ${JSON.stringify(names)}`);
      }
    }
  } finally {
    for (const baton of batons) await baton.close();
  }
}

describe('prefixes are text, not patterns', { timeout: 120_000 }, () => {
  it('SQLite: stores on one file under prefixes with pattern characters, one inside another and one outside the BMP', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-prefixes-'));
    try {
      const path = join(dir, 'locks.db');
      await eachSeesItsOwn(['t', 't;', 't%', 't_', 't*', 't?', 't[x]', 't\\', '🔒t', 'tt'], (prefix) => createSqliteStore({ path, prefix }));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('etcd', () => {
    let cluster: EtcdCluster;
    before(async () => {
      cluster = await startEtcd();
    });
    after(() => cluster?.stop());

    it('stores on one cluster under prefixes with pattern characters, one nested in another and one outside the BMP', async () => {
      // etcd keeps nothing for an idle lock: its prune removes nothing, and a released lock is no longer listed.
      await eachSeesItsOwn(['t/', 't/mutex/', 't%/', 't*/', '🔒t/', 'tt/'], (prefix) => createEtcdStore(cluster.client(), { prefix }));
    });
  });
});
