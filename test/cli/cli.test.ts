/**
 * The `baton` CLI, run as real processes on a SQLite file of each test's own. Holders are
 * commands that print a line once they run (`echo ready`), so the tests wait on output, not
 * on guessed delays; shell commands `exec` their last step so that a signal to the command
 * reaches the process that matters and nothing is left behind.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { STORE_SCHEMES, SUPPORTED_SCHEMES } from '../../src/url.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';

const MAIN = resolve('build/src/cli/main.js');

interface Result {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Wall time from start to exit. */
  ms: number;
}

const running = new Set<Cli>();
const dirs: string[] = [];
let env: NodeJS.ProcessEnv = {};
let dir = '';

/** Cli is one `baton` process with its output collected. */
class Cli {
  readonly child: ChildProcess;
  readonly done: Promise<Result>;
  readonly startedAt = Date.now();
  stdout = '';
  stderr = '';

  constructor(args: readonly string[], extraEnv: NodeJS.ProcessEnv = {}) {
    this.child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env, ...extraEnv } });
    this.child.stdout!.on('data', (chunk: Buffer) => (this.stdout += chunk.toString()));
    this.child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    running.add(this);
    this.done = new Promise((done) => {
      this.child.once('exit', (code, signal) => {
        const ms = Date.now() - this.startedAt;
        running.delete(this);
        // Let the pipes drain, but do not wait on a grandchild that might still hold them.
        const finish = (): void => done({ code, signal, stdout: this.stdout, stderr: this.stderr, ms });
        const timer = setTimeout(finish, 300);
        this.child.once('close', () => {
          clearTimeout(timer);
          finish();
        });
      });
    });
  }

  get exited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  /** waitFor resolves once stdout contains `text`. */
  async waitFor(text: string, timeoutMs = 8000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.stdout.includes(text)) {
      if (this.exited) throw new Error(`baton exited (${this.child.exitCode ?? this.child.signalCode}) before printing ${JSON.stringify(text)}; stderr: ${this.stderr}`);
      if (Date.now() > deadline) throw new Error(`baton did not print ${JSON.stringify(text)} within ${timeoutMs} ms; stdout: ${this.stdout}; stderr: ${this.stderr}`);
      await sleep(20);
    }
  }

  /** stop ends the process: SIGTERM (which baton passes to its command), then SIGKILL. */
  async stop(): Promise<void> {
    if (!this.exited) {
      this.child.kill('SIGTERM');
      const killer = setTimeout(() => this.child.kill('SIGKILL'), 3000);
      await this.done;
      clearTimeout(killer);
    }
    this.child.stdout!.destroy();
    this.child.stderr!.destroy();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** baton runs one command line to its end, killing it if it takes longer than `timeoutMs`. */
async function baton(args: readonly string[], extraEnv?: NodeJS.ProcessEnv, timeoutMs = 15_000): Promise<Result> {
  const cli = new Cli(args, extraEnv);
  const killer = setTimeout(() => cli.child.kill('SIGKILL'), timeoutMs);
  try {
    return await cli.done;
  } finally {
    clearTimeout(killer);
  }
}

/** A user error: its exit code, a `baton: ` line, and no stack trace. */
function assertUserError(result: Result, code: number, pattern?: RegExp): void {
  assert.equal(result.code, code, `exit code; stderr: ${result.stderr}`);
  assert.match(result.stderr, /^baton: /);
  assert.doesNotMatch(result.stderr, / {4}at /);
  if (pattern) assert.match(result.stderr, pattern);
}

/** inspectJson reads `inspect --json`. */
async function inspectJson(name: string, ...flags: string[]): Promise<{ fence: string; holders: { owner: string; token: string; mode: string; expiresInMs: number; holder?: unknown }[]; waiters: { owner: string; position: number }[] }> {
  const result = await baton(['inspect', name, '--json', ...flags]);
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

/** waitUntil polls `check` until it is true. */
async function waitUntil(what: string, check: () => Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await sleep(50);
  }
}

/** The env line a command prints: `sh -c 'echo "$PRINT_ENV"'`. */
const PRINT_ENV = 'echo "lock=$BATON_LOCK token=$BATON_TOKEN owner=$BATON_OWNER"';
const ENV_LINE = /lock=(.*) token=(\d+) owner=([0-9a-f]{32})/;

function tokenOf(output: string): bigint {
  const match = ENV_LINE.exec(output);
  assert.ok(match, `no env line in ${JSON.stringify(output)}`);
  return BigInt(match[2]!);
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'baton-cli-'));
  dirs.push(dir);
  env = { BATON_STORE: `sqlite:${join(dir, 'locks.db')}`, BATON_DEBUG: '' };
});

afterEach(async () => {
  await Promise.all([...running].map((cli) => cli.stop()));
});

after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('baton run', () => {
  it('passes BATON_LOCK, BATON_TOKEN and BATON_OWNER and exits with the command\'s code', async () => {
    const result = await baton(['run', 'job', '--', 'sh', '-c', `${PRINT_ENV}; exit 3`]);
    assert.equal(result.code, 3, result.stderr);
    const match = ENV_LINE.exec(result.stdout);
    assert.ok(match, result.stdout);
    assert.equal(match[1], 'job');
    assert.ok(BigInt(match[2]!) > 0n);
    assert.equal(result.stderr, '');
  });

  it('gives strictly increasing tokens to consecutive runs', async () => {
    const tokens: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const result = await baton(['run', 'job', '--', 'sh', '-c', PRINT_ENV]);
      assert.equal(result.code, 0, result.stderr);
      tokens.push(tokenOf(result.stdout));
    }
    assert.ok(tokens[0]! < tokens[1]! && tokens[1]! < tokens[2]!, tokens.join(' '));
  });

  it('passes arguments through verbatim, without a shell', async () => {
    const result = await baton(['run', 'job', '--', 'printf', '%s|', 'a b', '$HOME', '--ttl', '--']);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, 'a b|$HOME|--ttl|--|');
  });

  it('exits 75 at once with --no-wait while the lock is held', async () => {
    const holder = new Cli(['run', 'busy', '--', 'sh', '-c', 'echo ready; exec sleep 5']);
    await holder.waitFor('ready');
    const result = await baton(['run', 'busy', '--no-wait', '--', 'echo', 'never']);
    assertUserError(result, 75, /lock "busy" is busy/);
    assert.equal(result.stdout, '');
    assert.ok(result.ms < 5000, `took ${result.ms} ms`);
    const zero = await baton(['run', 'busy', '--wait', '0', '--', 'echo', 'never']);
    assertUserError(zero, 75, /is busy/);
  });

  it('exits 75 when --wait runs out', async () => {
    const holder = new Cli(['run', 'busy', '--', 'sh', '-c', 'echo ready; exec sleep 5']);
    await holder.waitFor('ready');
    const result = await baton(['run', 'busy', '--wait', '200ms', '--', 'echo', 'never']);
    assertUserError(result, 75, /lock "busy" is busy: gave up after 200ms/);
    assert.equal(result.stdout, '');
    assert.ok(result.ms >= 150 && result.ms < 8000, `took ${result.ms} ms`);
  });

  it('lets a waiting run take the lock once the holder finishes', async () => {
    const holder = new Cli(['run', 'turns', '--', 'sh', '-c', `${PRINT_ENV}; echo ready; sleep 1`]);
    await holder.waitFor('ready');
    const waiter = await baton(['run', 'turns', '--wait', '10s', '--', 'sh', '-c', PRINT_ENV]);
    const held = await holder.done;
    assert.equal(held.code, 0, held.stderr);
    assert.equal(waiter.code, 0, waiter.stderr);
    assert.ok(tokenOf(waiter.stdout) > tokenOf(held.stdout));
  });

  it('stops the command and exits 76 when the lock is released by force', async () => {
    const holder = new Cli(['run', 'lost', '--ttl', '1s', '--', 'sh', '-c', 'echo ready; exec sleep 30']);
    await holder.waitFor('ready');
    const released = await baton(['release', 'lost', '--force']);
    assert.equal(released.code, 0, released.stderr);
    const releasedAt = Date.now();
    const result = await holder.done;
    assert.equal(result.code, 76, result.stderr);
    assert.match(result.stderr, /^baton: lock "lost" was lost \(revoked\); stopping the command\n$/);
    assert.ok(Date.now() - releasedAt < 5000, 'noticed within a few renewals');
  });

  it('SIGKILLs a command that ignores SIGTERM after --grace', async () => {
    const holder = new Cli(['run', 'stubborn', '--ttl', '1s', '--grace', '300ms', '--', 'sh', '-c', 'trap "" TERM; echo ready; exec sleep 30']);
    await holder.waitFor('ready');
    assert.equal((await baton(['release', 'stubborn', '--force'])).code, 0);
    await waitUntil('the holder reports the loss', async () => holder.stderr.includes('was lost (revoked); stopping the command'));
    const lostAt = Date.now();
    const result = await holder.done;
    assert.equal(result.code, 76, result.stderr);
    // SIGTERM was ignored, so the command lived on until SIGKILL, a grace period later.
    const took = Date.now() - lostAt;
    assert.ok(took >= 250 && took < 8000, `took ${took} ms`);
  });

  for (const [signal, code, title] of [
    ['SIGTERM', 143, 'passes SIGTERM on to the command and exits 128+15 when it dies of it'],
    ['SIGINT', 130, 'passes a SIGINT sent to baton alone on to the command and exits 128+2 when it dies of it'],
  ] as const) {
    it(title, async () => {
      const name = `sig-${signal}`;
      const holder = new Cli(['run', name, '--', 'sh', '-c', 'echo ready; exec sleep 30']);
      await holder.waitFor('ready');
      holder.child.kill(signal);
      const result = await holder.done;
      assert.equal(result.code, code, result.stderr);
      assert.equal(result.signal, null);
      // The lock was released on the way out.
      assert.equal((await inspectJson(name)).holders.length, 0);
    });
  }

  it('lets Ctrl-C in a terminal reach the command once, not a second time through baton', async () => {
    // `script` (util-linux) runs baton on a pseudo-terminal, in its foreground process group,
    // with the command in the same group; a ^C written to the terminal is a SIGINT to every
    // process of that group, the command included. The command counts the SIGINTs it gets.
    const counter = join(dir, 'count-sigints.cjs');
    writeFileSync(counter, [
      'let n = 0;',
      "process.on('SIGINT', () => { if (n++ === 0) setTimeout(() => { console.log('sigints=' + n); process.exit(0); }, 500); });",
      "console.log('ready');",
      'setInterval(() => undefined, 1000);',
    ].join('\n'));
    // script runs the line through $SHELL -c. The shell is replaced by baton (`exec`): a shell
    // left waiting in the same group would get the ^C too, and dash then dies of it (exit 130).
    const line = ['exec', ...[process.execPath, MAIN, 'run', 'tty', '--', process.execPath, counter].map((word) => `'${word}'`)].join(' ');
    const terminal = spawn('script', ['-qefc', line, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, ...env, SHELL: '/bin/sh' } });
    let output = '';
    terminal.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    terminal.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((done) => terminal.once('exit', (code) => done(code)));
    const killer = setTimeout(() => terminal.kill('SIGKILL'), 15_000);
    try {
      for (const deadline = Date.now() + 8000; !output.includes('ready'); await sleep(20)) {
        if (Date.now() > deadline || terminal.exitCode !== null) throw new Error(`the command did not start: ${output}`);
      }
      terminal.stdin!.write('\x03');
      assert.equal(await exited, 0, output);
    } finally {
      clearTimeout(killer);
    }
    assert.match(output, /sigints=1\b/);
    assert.equal((await inspectJson('tty')).holders.length, 0);
  });

  it('leaves the queue and exits 130 on SIGINT while waiting', async () => {
    const holder = new Cli(['run', 'queue', '--', 'sh', '-c', 'echo ready; exec sleep 30']);
    await holder.waitFor('ready');
    const waiter = new Cli(['run', 'queue', '--', 'echo', 'never']);
    await waitUntil('the waiter is queued', async () => (await inspectJson('queue')).waiters.length === 1);
    waiter.child.kill('SIGINT');
    const result = await waiter.done;
    assertUserError(result, 130, /SIGINT while waiting for lock "queue"/);
    assert.equal(result.stdout, '');
    assert.equal((await inspectJson('queue')).waiters.length, 0);
  });

  it('shares a semaphore between --permits holders', async () => {
    const first = new Cli(['run', 'pool', '--permits', '2', '--', 'sh', '-c', 'echo ready; exec sleep 5']);
    const second = new Cli(['run', 'pool', '--permits', '2', '--', 'sh', '-c', 'echo ready; exec sleep 5']);
    await Promise.all([first.waitFor('ready'), second.waitFor('ready')]);
    const third = await baton(['run', 'pool', '--permits', '2', '--no-wait', '--', 'echo', 'never']);
    assertUserError(third, 75, /lock "pool" is busy/);
    // Other permits than the holders use: a usage error, at once, with nothing taken.
    const other = await baton(['run', 'pool', '--permits', '3', '--', 'echo', 'never']);
    assertUserError(other, 64, /semaphore "pool" was asked with 3 permits, but its current holders and waiters use 2/);
    // A semaphore and a mutex of one name are different locks.
    const mutex = await baton(['run', 'pool', '--no-wait', '--', 'echo', 'mutex']);
    assert.equal(mutex.code, 0, mutex.stderr);
    const state = await inspectJson('pool', '--kind', 'semaphore');
    assert.equal(state.holders.length, 2);
    assert.ok(state.holders.every((h) => h.mode === 'shared'));
  });

  it('exits 127 when the command is not found, and 126 when it cannot be executed', async () => {
    const missing = await baton(['run', 'job', '--', 'baton-test-no-such-command']);
    assertUserError(missing, 127, /command not found: baton-test-no-such-command/);
    const script = join(dir, 'not-executable.sh');
    writeFileSync(script, 'echo hi\n');
    chmodSync(script, 0o644);
    const denied = await baton(['run', 'job', '--', script]);
    assertUserError(denied, 126, /permission denied/);
    // The lock was given back each time.
    const state = await inspectJson('job');
    assert.equal(state.holders.length, 0);
    assert.equal(state.fence, '2');
  });
});

describe('baton ls, inspect and release', () => {
  it('lists and inspects holders and waiters, as text and JSON', async () => {
    const holder = new Cli(['run', 'deploy', '--label', 'deploy 381', '--', 'sh', '-c', `${PRINT_ENV}; echo ready; exec sleep 30`]);
    await holder.waitFor('ready');
    const [, , token, owner] = ENV_LINE.exec(holder.stdout)!;
    const where = `${hostname()}:${holder.child.pid}`;
    const waiter = new Cli(['run', 'deploy', '--', 'echo', 'waited']);
    await waitUntil('the waiter is queued', async () => (await inspectJson('deploy')).waiters.length === 1);
    assert.equal((await baton(['run', 'pool', '--permits', '3', '--', 'true'])).code, 0);

    const json = await inspectJson('deploy');
    assert.equal(json.fence, token);
    assert.equal(json.holders.length, 1);
    assert.equal(json.holders[0]!.owner, owner);
    assert.equal(json.holders[0]!.token, token);
    assert.equal(json.holders[0]!.mode, 'exclusive');
    assert.deepEqual(json.holders[0]!.holder, { host: hostname(), pid: holder.child.pid, command: `sh -c '${PRINT_ENV}; echo ready; exec sleep 30'`, label: 'deploy 381' });
    assert.ok(json.holders[0]!.expiresInMs > 0 && json.holders[0]!.expiresInMs <= 30_000);
    assert.equal(json.waiters[0]!.position, 0);

    const text = await baton(['inspect', 'deploy']);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, new RegExp(`^mutex "deploy": last token ${token}$`, 'm'));
    assert.match(text.stdout, new RegExp(`${owner} +${token} +\\d+\\.\\ds +exclusive +${where} "deploy 381" sh -c 'echo `));
    assert.match(text.stdout, /Waiters \(1\):\n.*OWNER +POSITION +MODE\n +[0-9a-f]{32} +0 +exclusive/);

    const list = await baton(['ls']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^KIND +NAME +HOLDERS +WAITERS +LAST TOKEN +HELD BY$/m);
    assert.match(list.stdout, new RegExp(`^mutex +deploy +1 +1 +${token} +${where} "deploy 381" sh -c .*…$`, 'm'));
    assert.match(list.stdout, /^semaphore +pool +0 +0 +1 +-$/m);

    const listJson = await baton(['ls', '--json']);
    const locks = JSON.parse(listJson.stdout) as { kind: string; name: string; fence: string; holders: unknown[] }[];
    assert.deepEqual(locks.map((l) => `${l.kind}:${l.name}:${l.fence}:${l.holders.length}`).sort(), [`mutex:deploy:${token}:1`, 'semaphore:pool:1:0']);
    const semaphores = JSON.parse((await baton(['ls', '--kind', 'semaphore', '--json'])).stdout) as unknown[];
    assert.equal(semaphores.length, 1);

    // Without --kind, inspect finds the one kind the store has for a name.
    assert.match((await baton(['inspect', 'pool'])).stdout, /^semaphore "pool": last token 1$/m);

    await holder.stop();
    const waited = await waiter.done;
    assert.equal(waited.code, 0, waited.stderr);
    assert.equal(waited.stdout, 'waited\n');
  });

  it('lists and inspects a read-write lock: its readers, and a writer waiting for them', async () => {
    const store = createSqliteStore({ path: join(dir, 'locks.db') });
    const lib = createBaton(store);
    try {
      const readers = await Promise.all([lib.rwlock('catalog').read({ ttlMs: 30_000 }), lib.rwlock('catalog').read({ ttlMs: 30_000 })]);
      const writer = lib.rwlock('catalog').write({ ttlMs: 30_000 });
      await waitUntil('the writer is queued', async () => (await inspectJson('catalog', '--kind', 'rwlock')).waiters.length === 1);
      const list = await baton(['ls']);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`^rwlock +catalog +2 +1 +${readers[1]!.token} +`, 'm'));
      const text = await baton(['inspect', 'catalog']);
      assert.equal(text.code, 0, text.stderr);
      assert.match(text.stdout, /^rwlock "catalog": last token 2$/m);
      for (const r of readers) assert.match(text.stdout, new RegExp(`${r.owner} +${r.token} +\\d+\\.\\ds +read `));
      assert.match(text.stdout, /Waiters \(1\):\n.*OWNER +POSITION +MODE\n +[0-9a-f]{32} +0 +write/);
      const json = await inspectJson('catalog');
      assert.deepEqual(json.holders.map((h) => h.mode), ['shared', 'shared']);
      for (const r of readers) await r.release();
      await (await writer).release();
    } finally {
      await lib.close();
    }
  });

  it('prints an empty list and a never-used lock', async () => {
    assert.equal((await baton(['ls'])).stdout, 'No locks.\n');
    assert.equal((await baton(['ls', '--json'])).stdout, '[]\n');
    const json = await inspectJson('nothing');
    assert.deepEqual(json, { kind: 'mutex', name: 'nothing', fence: '0', holders: [], waiters: [] });
  });

  it('run --verbose reports a wait longer than a second on stderr: its place in the queue and the holder; without it, a wait off a terminal is silent', async () => {
    const holder = new Cli(['run', 'slow', '--label', 'first', '--', 'sh', '-c', 'echo ready; exec sleep 30']);
    await holder.waitFor('ready');
    const verbose = new Cli(['run', 'slow', '--verbose', '--', 'echo', 'second']);
    await waitUntil('the verbose waiter is queued', async () => (await inspectJson('slow')).waiters.length === 1);
    const quiet = new Cli(['run', 'slow', '--', 'echo', 'third']);
    await waitUntil('the waiter reported', async () => verbose.stderr.includes('held by'));
    assert.match(verbose.stderr, new RegExp(`^baton: waiting for mutex "slow", position 1 of [12] in the queue; held by ${hostname()}:${holder.child.pid} "first" sh -c 'echo ready; exec sleep 30' \\(\\d+s\\)$`, 'm'));
    await holder.stop();
    const [second, third] = [await verbose.done, await quiet.done];
    assert.deepEqual([second.code, second.stdout, third.code, third.stdout, third.stderr], [0, 'second\n', 0, 'third\n', '']);
  });

  it('ls --watch lists again every interval, showing locks as they come and go, until SIGINT (exit 0)', async () => {
    const watching = new Cli(['ls', '--watch', '--interval', '200ms']);
    await watching.waitFor('No locks.');
    const holder = new Cli(['run', 'watched', '--label', 'seen', '--', 'sh', '-c', 'echo ready; exec sleep 30']);
    await holder.waitFor('ready');
    await watching.waitFor('"seen"');
    assert.match(watching.stdout, /^\d\d:\d\d:\d\d  every 200ms\nKIND +NAME +HOLDERS +WAITERS +LAST TOKEN +HELD BY\nmutex +watched +1 +0 +\d+ +\S+:\d+ "seen" sh -c/m);
    await holder.stop();
    const shown = watching.stdout.length;
    await waitUntil('the released lock shows as idle', async () => /^mutex +watched +0 +0 +\d+ +-$/m.test(watching.stdout.slice(shown)));
    watching.child.kill('SIGINT');
    const done = await watching.done;
    assert.deepEqual([done.code, done.signal, done.stderr], [0, null, '']);
    assertUserError(await baton(['ls', '--watch', '--json']), 64, /--watch and --json/);
    assertUserError(await baton(['ls', '--interval', '1s']), 64, /--interval goes with --watch/);
  });

  it('prune removes the idle locks (a dry run lists them first), keeps a held one, and a pruned name gets a higher token', async () => {
    const used = await baton(['run', 'job:1', '--', 'sh', '-c', PRINT_ENV]);
    assert.equal((await baton(['run', 'job:2', '--', 'true'])).code, 0);
    const holder = new Cli(['run', 'job:3', '--ttl', '2s', '--', 'sh', '-c', 'echo ready; exec sleep 30']);
    await holder.waitFor('ready');

    const dry = await baton(['prune', '--dry-run']);
    assert.equal(dry.code, 0, dry.stderr);
    assert.equal(dry.stdout, 'mutex "job:1"\nmutex "job:2"\n2 idle locks would be pruned.\n');
    assert.equal((await baton(['prune', '--kind', 'semaphore'])).stdout, 'Pruned 0 idle locks.\n');
    const pruned = await baton(['prune']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.equal(pruned.stdout, 'Pruned 2 idle locks.\n');
    assert.deepEqual(JSON.parse((await baton(['ls', '--json'])).stdout).map((lock: { name: string }) => lock.name), ['job:3']);
    assertUserError(await baton(['prune', 'job:1']), 64, /baton prune \[--kind KIND\] \[--dry-run\]/);

    const again = await baton(['run', 'job:1', '--', 'sh', '-c', PRINT_ENV]);
    assert.equal(again.code, 0, again.stderr);
    assert.ok(tokenOf(again.stdout) > tokenOf(used.stdout), `token ${tokenOf(again.stdout)} after ${tokenOf(used.stdout)}`);
    await holder.stop();
  });

  it('release --force frees a held lock and the next token is still higher', async () => {
    const first = await baton(['run', 'admin', '--', 'sh', '-c', PRINT_ENV]);
    const holder = new Cli(['run', 'admin', '--ttl', '2s', '--', 'sh', '-c', `${PRINT_ENV}; echo ready; exec sleep 30`]);
    await holder.waitFor('ready');

    const refused = await baton(['release', 'admin']);
    assertUserError(refused, 64, /--force/);
    assert.equal((await inspectJson('admin')).holders.length, 1);

    const released = await baton(['release', 'admin', '--force']);
    assert.equal(released.code, 0, released.stderr);
    assert.equal(released.stdout, 'Removed 1 holder of mutex "admin".\n');
    assert.equal((await inspectJson('admin')).holders.length, 0);

    const next = await baton(['run', 'admin', '--no-wait', '--', 'sh', '-c', PRINT_ENV]);
    assert.equal(next.code, 0, next.stderr);
    assert.ok(tokenOf(next.stdout) > tokenOf(holder.stdout));
    assert.ok(tokenOf(holder.stdout) > tokenOf(first.stdout));
    assert.equal((await holder.done).code, 76);

    const again = await baton(['release', 'admin', '--force']);
    assert.equal(again.stdout, 'Removed 0 holders of mutex "admin" (it was not held).\n');
  });
});

describe('baton on a Redlock quorum, which issues no fencing token', () => {
  const servers: RedisServer[] = [];
  before(async () => {
    for (let i = 0; i < 3; i++) servers.push(await startRedis());
  });
  after(async () => {
    for (const server of servers) await server.stop();
  });

  it('shows no token: - in the tables, null in JSON, and no BATON_TOKEN', async () => {
    const store = `redis+quorum://${servers.map((s) => `127.0.0.1:${s.port}`).join(',')}`;
    const holder = new Cli(['run', 'unfenced', '--store', store, '--', 'sh', '-c', 'echo "token=${BATON_TOKEN-unset}"; echo ready; exec sleep 30']);
    await holder.waitFor('ready');
    assert.match(holder.stdout, /^token=unset$/m);

    const text = await baton(['inspect', 'unfenced', '--store', store]);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^mutex "unfenced": no fencing tokens \(the store issues none\)$/m);
    assert.match(text.stdout, /^ +OWNER +TOKEN +TIME LEFT +MODE +HELD BY\n +[0-9a-f]{32} +- +\d+\.\ds +exclusive +\S+:\d+ \S.*$/m);
    assert.doesNotMatch(text.stdout, / 0 /);

    const json = JSON.parse((await baton(['inspect', 'unfenced', '--json', '--store', store])).stdout) as { fence: unknown; holders: { token: unknown }[] };
    assert.deepEqual([json.fence, json.holders.map((h) => h.token)], [null, [null]]);

    const list = await baton(['ls', '--store', store]);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^KIND +NAME +HOLDERS +WAITERS +LAST TOKEN +HELD BY\nmutex +unfenced +1 +0 +- +\S+:\d+ \S.*$/m);
    const listJson = JSON.parse((await baton(['ls', '--json', '--store', store])).stdout) as { fence: unknown; holders: { token: unknown }[] }[];
    assert.deepEqual(listJson.map((l) => [l.fence, l.holders.map((h) => h.token)]), [[null, [null]]]);
    await holder.stop();
  });
});

describe('baton cron', () => {
  it('3 processes started at staggered times run each slot once, pass BATON_SLOT and the token, exit 0 on SIGTERM; ls shows the last run', async () => {
    const log = join(dir, 'slots.log');
    writeFileSync(log, '');
    const line = `echo "slot=$BATON_SLOT token=$BATON_TOKEN lock=$BATON_LOCK" >> '${log}'`;
    const crons: Cli[] = [];
    for (let i = 0; i < 3; i++) {
      crons.push(new Cli(['cron', 'every 1s', 'tick', '--ttl', '5s', '--', 'sh', '-c', line]));
      await sleep(700);
    }
    await sleep(4000);
    for (const c of crons) c.child.kill('SIGTERM');
    for (const c of crons) {
      const result = await c.done;
      assert.equal(result.code, 0, result.stderr);
    }
    const lines = readFileSync(log, 'utf8').trim().split('\n');
    const slots = lines.map((l) => /slot=(\S+)/.exec(l)![1]!);
    assert.ok(slots.length >= 4, `${slots.length} runs: ${lines.join('; ')}`);
    assert.equal(new Set(slots).size, slots.length, `each slot once: ${lines.join('; ')}`);
    for (const slot of slots) assert.match(slot, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    const tokens = lines.map((l) => BigInt(/token=(\d+)/.exec(l)![1]!));
    for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, 'tokens grow');
    assert.ok(lines.every((l) => l.endsWith('lock=tick')));
    const list = await baton(['ls']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /Scheduled jobs, last slot:\n.*JOB +LAST SLOT +OUTCOME +STARTED +TOOK +BY\ntick +\S+ +ok +\S+ +\d+\.\ds +/);
    assert.ok(list.stdout.includes(slots.sort().at(-1)!), 'the last slot run is the one shown');
  });

  it('refuses a bad SPEC or time zone with a usage error', async () => {
    assertUserError(await baton(['cron', 'not a cron', 'x', '--', 'true']), 64, /cron expression/);
    assertUserError(await baton(['cron', '0 * * * *', 'x', '--timezone', 'Nowhere/Atlantis', '--', 'true']), 64, /time zone/);
    assertUserError(await baton(['cron', 'every 10ms', 'x', '--', 'true']), 64);
    assertUserError(await baton(['cron', '0 * * * *', 'x']), 64, /expected -- and a command/);
  });
});

describe('baton usage and errors', () => {
  it('prints help and version', async () => {
    const help = await baton(['--help']);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /^Usage: baton/);
    for (const code of ['64', '69', '70', '75', '76', '126', '127']) assert.match(help.stdout, new RegExp(`^ {2}${code} `, 'm'));
    assert.equal((await baton(['help'])).stdout, help.stdout);
    const runHelp = await baton(['run', '--help']);
    assert.equal(runHelp.code, 0);
    assert.match(runHelp.stdout, /^Usage: baton run NAME/);
    assert.match(runHelp.stdout, /BATON_TOKEN/);
    assert.equal((await baton(['help', 'run'])).stdout, runHelp.stdout);
    const version = await baton(['--version']);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+\S*\n$/);
    const bare = await baton([]);
    assert.equal(bare.code, 64);
    assert.match(bare.stderr, /^Usage: baton/);
  });

  it('lists every registered store URL scheme in every help that has --store', async () => {
    for (const args of [['--help'], ['run', '--help'], ['ls', '--help'], ['inspect', '--help'], ['release', '--help']]) {
      const { stdout } = await baton(args);
      for (const scheme of STORE_SCHEMES) assert.ok(stdout.includes(scheme.form), `${args.join(' ')} lacks ${scheme.form}`);
      for (const name of SUPPORTED_SCHEMES) {
        assert.match(stdout, new RegExp(`(?<![\\w+.-])${name.replace(/[+.]/g, '\\$&')}:`), `${args.join(' ')} lacks ${name}:`);
      }
    }
  });

  it('exits 64 with one message and no stack trace for usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['run', 'job', '--ttl', '1.5x', '--', 'true'], /invalid duration for --ttl: "1\.5x"/],
      [['run', 'job', '--ttl', '0', '--', 'true'], /--ttl must be from 1ms/],
      [['run', 'job', '--ttl', '30', '--', 'true'], /^baton: --ttl 30 has no unit: write 30s, 30ms or 30m\n/],
      [['run', 'job', '--wait=5', '--', 'true'], /--wait 5 has no unit: write 5s, 5ms or 5m/],
      [['run', 'job', '--grace', '10', '--', 'true'], /--grace 10 has no unit/],
      [['run', 'job', 'true'], /expected -- and a command/],
      [['run', 'job', '--'], /expected a command after --/],
      [['run', '--', 'true'], /missing NAME/],
      [['run', '', '--', 'true'], /non-empty/],
      [['run', 'job', '--wait', '1s', '--no-wait', '--', 'true'], /cannot be used together/],
      [['run', 'job', '--permits', '0', '--', 'true'], /--permits must be a whole number/],
      [['run', 'job', '--bogus', '--', 'true'], /unknown option --bogus/],
      [['run', 'job', '--ttl'], /--ttl needs a value/],
      [['ls', '--kind', 'queue'], /--kind must be one of/],
      [['inspect'], /missing NAME/],
      [['--store', 'nope://x', 'ls'], /Unknown store URL scheme "nope:"; baton supports sqlite:.*memory:/],
      [['ls', '--store', 'postgres://user:hunter2@db:5432/app?bogus=1'], /Unknown store URL option "bogus" for postgres:\/\//],
      [['--store', 'memory:', 'ls', '--store', 'memory:'], /--store is given twice/],
    ];
    for (const [args, pattern] of cases) {
      const result = await baton(args);
      assertUserError(result, 64, pattern);
      assert.doesNotMatch(result.stderr, /hunter2/);
      assert.equal(result.stdout, '', args.join(' '));
    }
  });

  it('exits 69 when the store cannot be opened', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, '');
    const result = await baton(['ls'], { BATON_STORE: `sqlite:${file}/locks.db` });
    assertUserError(result, 69, /Cannot open the SQLite database/);
    const run = await baton(['run', 'job', '--', 'echo', 'never'], { BATON_STORE: `sqlite:${file}/locks.db` });
    assertUserError(run, 69);
    assert.equal(run.stdout, '');
  });

  it('takes the store from --store over BATON_STORE', async () => {
    const other = `sqlite:${join(dir, 'other.db')}`;
    assert.equal((await baton(['--store', other, 'run', 'here', '--', 'true'])).code, 0);
    assert.equal((await baton(['ls'])).stdout, 'No locks.\n');
    assert.match((await baton(['ls', '--store', other])).stdout, /^mutex +here +0 +0 +1 +-$/m);
    assert.equal((await baton(['ls', '--store', 'memory:'])).stdout, 'No locks.\n');
  });
});
