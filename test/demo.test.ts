/**
 * scripts/demo, run as a stranger runs it: in a fresh clone of HEAD, as a user who is not
 * root (`nobody` when the tests run as root), with a PATH of node, npm and basic shell tools
 * and no apt-get, apt or sudo, and a HOME of its own. The clone gets node_modules from this
 * checkout (a folder of symbolic links, newer than the lockfile, so that the demo does not
 * run npm ci: no network, no compile); the install step is tested with an npm that records
 * its call. Committed code only: the clone is of HEAD.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, lchownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { after, describe, it, type TestContext } from 'node:test';
import { adopt } from './helpers/children.js';

/** What the demo's PATH holds besides node and npm: a shell and the basic tools, never a package manager or sudo. */
const TOOLS = ['sh', 'bash', 'env', 'dirname', 'basename', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'ln', 'touch', 'chmod', 'find', 'grep', 'sed', 'uname', 'id', 'true', 'false'];
const FORBIDDEN = ['apt-get', 'apt', 'sudo'];

const git = (args: string[], cwd?: string): string => execFileSync('git', args, { cwd, encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();

function head(): string | null {
  try {
    return git(['rev-parse', 'HEAD']);
  } catch {
    return null;
  }
}

/** The user the demo runs as: `nobody` when the tests run as root, else the current user (undefined: no switch). */
function stranger(): { uid: number; gid: number } | undefined {
  if (process.getuid!() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.startsWith('nobody:'));
  if (!line) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/** which finds `name` on this process's PATH. */
function which(name: string): string | undefined {
  for (const folder of (process.env.PATH ?? '').split(delimiter)) {
    const path = join(folder, name);
    if (folder !== '' && existsSync(path)) return path;
  }
  return undefined;
}

/** chownTree gives a tree to `user` without following a symbolic link out of it. */
function chownTree(path: string, user: { uid: number; gid: number }): void {
  lchownSync(path, user.uid, user.gid);
  if (lstatSync(path).isDirectory()) for (const name of readdirSync(path)) chownTree(join(path, name), user);
}

/**
 * SEED_NODE_MODULES: a script, run by the test and by the recording npm, that gives the clone a
 * node_modules of links to this checkout's packages, dated after the lockfile as npm ci dates its own.
 */
const SEED_NODE_MODULES = `
const { copyFileSync, existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');
const [from, to] = process.argv.slice(-2);
mkdirSync(to);
for (const name of readdirSync(from)) if (name !== '.package-lock.json') symlinkSync(join(from, name), join(to, name));
if (existsSync(join(from, '.package-lock.json'))) copyFileSync(join(from, '.package-lock.json'), join(to, '.package-lock.json'));
else writeFileSync(join(to, '.package-lock.json'), '{}');
`;

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  ms: number;
}

const commit = head();

describe('scripts/demo on a fresh clone, without root', { skip: commit === null ? 'not a git checkout: nothing to clone' : false, timeout: 330_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'baton-demo-'));
  const repo = join(dir, 'repo');
  const home = join(dir, 'home');
  const user = stranger();
  const running = new Set<number>();

  after(() => {
    for (const pid of running) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // its group is gone
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  /** bin makes a folder of links to the tools the demo may use, with `npm` replaced when given. */
  function bin(name: string, npm?: string): string {
    const folder = join(dir, name);
    mkdirSync(folder);
    for (const tool of ['node', 'npm', ...TOOLS]) {
      const path = tool === 'npm' && npm ? npm : which(tool);
      if (path) symlinkSync(path, join(folder, tool));
      else assert.ok(!['node', 'npm', 'dirname'].includes(tool), `${tool} is not on this machine's PATH`);
    }
    for (const tool of FORBIDDEN) assert.ok(!existsSync(join(folder, tool)), `${tool} is not on the demo's PATH`);
    return folder;
  }

  /** demo runs scripts/demo from outside the clone, as the stranger, within `limitMs`. */
  function demo(path: string, limitMs: number): Promise<Run> {
    const started = Date.now();
    const child = adopt(spawn(join(repo, 'scripts', 'demo'), [], {
      cwd: dir,
      env: { PATH: path, HOME: home, LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      ...(user ?? {}),
    }), 'scripts/demo');
    running.add(child.pid!);
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), limitMs);
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('close', (code, signal) => {
        clearTimeout(timer);
        running.delete(child.pid!);
        resolve({ code, signal, out, ms: Date.now() - started });
      });
    });
  }

  /** turns: the tokens and PIDs of the turns a run printed, checked: several processes, one holder at a time, tokens increasing. */
  function turns(run: Run, label: string): bigint[] {
    assert.equal(run.code, 0, `${label}: scripts/demo exited with ${run.code ?? run.signal}:\n${run.out}`);
    const seen = [...run.out.matchAll(/^worker \d+ \(pid (\d+)\) holds "demo" with token (\d+)$/gm)];
    assert.equal(seen.length, 12, `${label}: 4 processes take 3 turns each:\n${run.out}`);
    assert.equal(new Set(seen.map((match) => match[1])).size, 4, `${label}: 4 processes took turns:\n${run.out}`);
    const tokens = seen.map((match) => BigInt(match[2]!));
    assert.ok(tokens.every((token, i) => i === 0 || token > tokens[i - 1]!), `${label}: tokens increase: ${tokens.join(' ')}`);
    assert.match(run.out, /12 turns, one holder at a time; each token higher than the one before: yes/);
    assert.ok(run.out.includes(join(home, '.local', 'state', 'baton', 'locks.db')), `${label}: the default file is under the user's HOME:\n${run.out}`);
    return tokens;
  }

  /** mtimes of every file under dist, by path. */
  function mtimes(folder: string, into = new Map<string, number>()): Map<string, number> {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      const stat = statSync(path);
      if (stat.isDirectory()) mtimes(path, into);
      else into.set(path, stat.mtimeMs);
    }
    return into;
  }

  it('runs without installing; builds once; the second run neither installs nor builds; a stale node_modules is installed with npm ci', async (t: TestContext) => {
    git(['clone', '--quiet', '--no-checkout', `file://${realpathSync('.')}`, repo]);
    git(['checkout', '--quiet', '--detach', commit!], repo);
    const modules = realpathSync('node_modules');
    execFileSync(process.execPath, ['-e', SEED_NODE_MODULES, modules, join(repo, 'node_modules')], { timeout: 30_000 });
    mkdirSync(home);
    const path = bin('bin');
    // The recording npm: logs its arguments and user, and "installs" by seeding node_modules again.
    const log = join(dir, 'npm.log');
    const fakeNpm = join(dir, 'npm-that-records');
    writeFileSync(fakeNpm, [
      '#!/usr/bin/env node',
      "const { appendFileSync, rmSync } = require('node:fs');",
      `appendFileSync(${JSON.stringify(log)}, JSON.stringify({ args: process.argv.slice(2), uid: process.getuid() }) + '\\n');`,
      "if (process.argv[2] === 'ci') {",
      "  rmSync('node_modules', { recursive: true, force: true });",
      `  require('node:child_process').execFileSync(process.execPath, ['-e', ${JSON.stringify(SEED_NODE_MODULES)}, ${JSON.stringify(modules)}, 'node_modules']);`,
      '}',
      '',
    ].join('\n'), { mode: 0o755 });
    const recordingPath = bin('bin-recording-npm', fakeNpm);
    if (user) chownTree(dir, user);
    t.diagnostic(`running as uid ${user?.uid ?? process.getuid!()}, PATH of ${readdirSync(path).join(' ')}`);

    const first = await demo(path, 240_000);
    t.diagnostic(`first run (builds): ${(first.ms / 1000).toFixed(1)} s`);
    const firstTokens = turns(first, 'first run');
    assert.match(first.out, /^Building baton from src\/ into dist\//m);
    assert.doesNotMatch(first.out, /Installing/);
    const built = mtimes(join(repo, 'dist'));
    assert.ok(built.size > 0);

    const second = await demo(path, 60_000);
    t.diagnostic(`second run: ${(second.ms / 1000).toFixed(1)} s`);
    const secondTokens = turns(second, 'second run');
    assert.ok(second.out.startsWith('4 processes take turns'), `the second run prints nothing before the example:\n${second.out}`);
    assert.deepEqual(mtimes(join(repo, 'dist')), built, 'the second run leaves dist as it was');
    assert.ok(secondTokens[0]! > firstTokens.at(-1)!, 'tokens continue from the first run: both use the same per-user file');

    // A lockfile newer than node_modules (a pull that changed it): npm ci, as the user, and no build.
    const past = new Date(Date.now() - 3_600_000);
    utimesSync(join(repo, 'node_modules', '.package-lock.json'), past, past);
    const third = await demo(recordingPath, 60_000);
    t.diagnostic(`third run (npm ci recorded, not run): ${(third.ms / 1000).toFixed(1)} s`);
    turns(third, 'third run');
    assert.match(third.out, /^Installing the npm dependencies \(npm ci/m);
    assert.doesNotMatch(third.out, /Building/);
    const calls = readFileSync(log, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as { args: string[]; uid: number });
    assert.deepEqual(calls.map((call) => call.args[0]), ['ci'], 'npm is called once, for npm ci');
    assert.equal(calls[0]!.uid, user?.uid ?? process.getuid!(), 'as the user who runs the demo');
    assert.deepEqual(mtimes(join(repo, 'dist')), built, 'no build after an install that changed no source');
  });
});
