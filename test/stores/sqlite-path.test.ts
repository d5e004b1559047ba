/**
 * Where the SQLite store's file is: `path`, else `$BATON_SQLITE_PATH`, else a file of the
 * user's own; and the modes that let several users share a file in a setgid folder.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, afterEach, describe, it } from 'node:test';
import { InvalidArgumentError, createBaton } from '../../src/index.js';
import { createSqliteStore, defaultSqlitePath } from '../../src/stores/sqlite/index.js';

const MAIN = resolve('build/src/cli/main.js');
const dir = mkdtempSync(join(tmpdir(), 'baton-sqlite-path-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Cli {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** baton runs the CLI in its own process with exactly `env` (and PATH), within 15 s. */
function baton(args: string[], env: NodeJS.ProcessEnv, user?: { uid: number; gid: number }): Promise<Cli> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: 15_000, ...(user ?? {}) }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === 'number' ? error.code : null) : 0, stdout, stderr });
    });
  });
}

const invalid = (error: unknown): boolean => {
  assert.ok(error instanceof InvalidArgumentError, String(error));
  assert.equal(error.argument, 'BATON_SQLITE_PATH');
  assert.match(error.message, /Expected `BATON_SQLITE_PATH` to be the absolute path of a file/);
  return true;
};

describe('the SQLite file: path, BATON_SQLITE_PATH, or the user\'s own', { timeout: 60_000 }, () => {
  const saved = process.env.BATON_SQLITE_PATH;
  afterEach(() => {
    if (saved === undefined) delete process.env.BATON_SQLITE_PATH;
    else process.env.BATON_SQLITE_PATH = saved;
  });

  it('defaultSqlitePath: BATON_SQLITE_PATH when set and not empty, else the per-user file', () => {
    assert.equal(defaultSqlitePath({ BATON_SQLITE_PATH: '/var/lib/baton/locks.db', XDG_STATE_HOME: '/state' }), '/var/lib/baton/locks.db');
    assert.equal(defaultSqlitePath({ BATON_SQLITE_PATH: '', XDG_STATE_HOME: '/state' }), '/state/baton/locks.db');
    assert.equal(defaultSqlitePath({ XDG_STATE_HOME: '/state' }), '/state/baton/locks.db');
  });

  it('an invalid BATON_SQLITE_PATH is an InvalidArgumentError, from defaultSqlitePath and createSqliteStore()', () => {
    for (const value of ['locks.db', './locks.db', '/var/lib/baton/']) {
      assert.throws(() => defaultSqlitePath({ BATON_SQLITE_PATH: value }), invalid, value);
      process.env.BATON_SQLITE_PATH = value;
      assert.throws(() => createSqliteStore(), invalid, value);
    }
    // `path` wins: the variable is not read.
    assert.equal(createSqliteStore({ path: join(dir, 'given.db') }).path, join(dir, 'given.db'));
  });

  it('the CLI\'s default store: an invalid BATON_SQLITE_PATH is a usage error (64) that names it', async () => {
    const result = await baton(['ls'], { HOME: dir, BATON_SQLITE_PATH: 'locks.db' });
    assert.equal(result.code, 64, result.stderr);
    assert.match(result.stderr, /BATON_SQLITE_PATH/);
  });

  it('processes of different users\' HOMEs share locks through BATON_SQLITE_PATH, and do not without it', async () => {
    const shared = join(dir, 'shared', 'locks.db');
    process.env.BATON_SQLITE_PATH = shared;
    const store = createSqliteStore();
    assert.equal(store.path, shared);
    const holder = createBaton(store);
    const lease = await holder.mutex('job').acquire({ ttlMs: 30_000 });
    try {
      const other = { HOME: join(dir, 'home-other'), BATON_SQLITE_PATH: shared };
      const busy = await baton(['run', 'job', '--no-wait', '--', process.execPath, '-e', ''], other);
      assert.equal(busy.code, 75, `the CLI with BATON_SQLITE_PATH finds the lock held: ${busy.stderr}`);
      // Without the variable each HOME has its own file: the lock is not seen.
      const own = await baton(['run', 'job', '--no-wait', '--', process.execPath, '-e', ''], { HOME: join(dir, 'home-other') });
      assert.equal(own.code, 0, own.stderr);
    } finally {
      await lease.release();
    }
    const free = await baton(['run', 'job', '--no-wait', '--', process.execPath, '-e', 'console.log(process.env.BATON_TOKEN)'], { HOME: join(dir, 'home-other'), BATON_SQLITE_PATH: shared });
    assert.equal(free.code, 0, free.stderr);
    assert.equal(BigInt(free.stdout.trim()), lease.token! + 1n, 'the CLI continues the tokens of the shared file');
    await holder.close();
  });

  it('in a setgid folder the file, its -wal and -shm are group-writable (0660) whatever the umask; elsewhere SQLite\'s 0644 less the umask', async () => {
    const umask = process.umask(0o022);
    try {
      const plain = join(dir, 'plain');
      const group = join(dir, 'group');
      mkdirSync(plain);
      mkdirSync(group);
      chmodSync(group, 0o2770);
      for (const [folder, mode] of [[plain, 0o644], [group, 0o660]] as const) {
        const path = join(folder, 'locks.db');
        const baton = createBaton(createSqliteStore({ path }));
        const lease = await baton.mutex('m').acquire();
        for (const file of [path, `${path}-wal`, `${path}-shm`]) {
          assert.equal((statSync(file).mode & 0o777).toString(8), mode.toString(8), file);
          assert.equal(statSync(file).gid, statSync(folder).gid, `${file} has its folder's group`);
        }
        await lease.release();
        await baton.close();
      }
    } finally {
      process.umask(umask);
    }
  });

  it('another user of the folder\'s group shares the file root made (run as root only)', { skip: process.getuid!() === 0 ? false : 'needs root, to run a process as another user' }, async () => {
    const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.startsWith('nobody:'));
    if (!line) return;
    const [, , uid, gid] = line.split(':').map(Number);
    const nobody = { uid: uid!, gid: gid! };
    const folder = join(dir, 'host');
    mkdirSync(folder);
    chownSync(folder, 0, nobody.gid);
    chmodSync(folder, 0o2770);
    chmodSync(dir, 0o755); // mkdtemp made it 0700: the other user must reach the folder
    const path = join(folder, 'locks.db');
    const holder = createBaton(createSqliteStore({ path }));
    const lease = await holder.mutex('job').acquire({ ttlMs: 30_000 });
    const env = { HOME: folder, BATON_SQLITE_PATH: path };
    const busy = await baton(['run', 'job', '--no-wait', '--', process.execPath, '-e', ''], env, nobody);
    assert.equal(busy.code, 75, busy.stderr);
    await lease.release();
    await holder.close(); // the last connection: SQLite removes -wal and -shm, and the other user makes them anew
    const ran = await baton(['run', 'job', '--no-wait', '--', process.execPath, '-e', ''], env, nobody);
    assert.equal(ran.code, 0, ran.stderr);
    const again = createBaton(createSqliteStore({ path }));
    const last = await again.mutex('job').acquire();
    assert.equal(last.token, lease.token! + 2n, 'root takes it again after the other user');
    await last.release();
    await again.close();
  });
});
