/**
 * The package as a stranger gets it: `npm pack` in a fresh clone of this repository at HEAD
 * (uncommitted changes are not in it), whose prepack script builds dist; the tarball
 * installed offline into a new app; the app taking locks from ESM and from CommonJS, on the
 * memory and SQLite stores, and type-checked as strict TypeScript under the node16, bundler
 * and node10 module resolutions.
 *
 * Nothing is downloaded: the clone's node_modules is a link to this checkout's, so its build
 * needs no install, and the app gets better-sqlite3, etcd3 and @types/node as links to the
 * same folder (npm would install them; baton-lock itself comes from the tarball only).
 * Every command has a limit, and all of them together stay within DEADLINE_MS.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runInGroup } from './helpers/process.js';

/** DEADLINE_MS: the whole file's commands, well within the runner's 6 minutes a file. */
const DEADLINE_MS = 5 * 60_000;
const deadline = Date.now() + DEADLINE_MS;

const root = process.cwd();
const modules = realpathSync(join(root, 'node_modules'));
const tsc = join(modules, 'typescript/bin/tsc');
const dir = mkdtempSync(join(tmpdir(), 'baton-pack-'));
const clone = join(dir, 'clone');
const app = join(dir, 'app');
const installed = join(app, 'node_modules/baton-lock');

/** npm's settings from an npm that may have started this run (`npm_config_ignore_scripts`, ...) stay out of the npm run here. */
const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));

/**
 * run: a command's output once it exits with 0; it rejects on any other exit, or after
 * `limitMs` (or at the deadline, if sooner), when the command and whatever it started are killed.
 */
function run(file: string, args: string[], cwd: string, limitMs: number): Promise<string> {
  const timeoutMs = Math.min(limitMs, deadline - Date.now());
  if (timeoutMs <= 0) return Promise.reject(new Error(`${file} ${args.join(' ')}: not started, the file's ${DEADLINE_MS / 1000} s are spent`));
  // Its own process group, so that a timeout kills npm's build and tsc too.
  return runInGroup(file, args, { cwd, env, timeoutMs, what: `${file} ${args.join(' ')} (in ${cwd})` });
}

/** link makes `node_modules/<name>` in the app point at this checkout's copy. */
function link(name: string): void {
  const path = join(app, 'node_modules', name);
  mkdirSync(dirname(path), { recursive: true });
  symlinkSync(join(modules, name), path, 'dir');
}

interface Packed {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  files: { path: string }[];
}

let packed: Packed;

/** A lock taken, found busy, released and taken again on the memory and the SQLite store; `load` brings in the three modules. */
const body = (load: string, db: string): string => `${load}
const out = {};
for (const [name, store] of [['memory', createMemoryStore()], ['sqlite', createSqliteStore({ path: ${JSON.stringify(db)} })]]) {
  const baton = createBaton(store);
  const lease = await baton.mutex('report').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  const busy = (await baton.mutex('report').tryAcquire()) === null;
  await lease.release();
  const next = await baton.mutex('report').tryAcquire();
  await next?.release();
  await baton.close();
  out[name] = { busy, tokens: [String(lease.token), String(next?.token)] };
}
console.log(JSON.stringify(out));`;

/** Every entry point, used so that a missing or `any` type fails the check. */
const typed = `import { createBaton, LockTimeoutError, type Lease } from 'baton-lock';
import { createMemoryStore, type MemoryStore } from 'baton-lock/memory';
import { createSqliteStore, type SqliteStoreOptions } from 'baton-lock/sqlite';
import { createRedisStore, quorum, type RedisClient } from 'baton-lock/redis';
import { createEtcdStore, type EtcdClient } from 'baton-lock/etcd';
import { openStore, parseStoreUrl, type StoreUrl } from 'baton-lock/url';

export async function main(redis: RedisClient, etcd: EtcdClient): Promise<bigint> {
  const memory: MemoryStore = createMemoryStore();
  const baton = createBaton(memory);
  const lease: Lease = await baton.mutex('report').acquire({ ttlMs: 30_000, timeoutMs: 5_000 });
  {
    await using slot = await baton.semaphore('api', { permits: 4 }).acquire({ autoRenew: true });
    slot.signal.throwIfAborted();
  }
  // @ts-expect-error ttlMs is a number of milliseconds
  await baton.mutex('report').tryAcquire({ ttlMs: '30s' });
  const options: SqliteStoreOptions = { path: 'locks.db', durability: 'full' };
  const url: StoreUrl = parseStoreUrl('memory://');
  const fenced = createBaton(createRedisStore(redis));
  const unfenced = createBaton(quorum([createRedisStore(redis, { fencing: false })]));
  const none: bigint | null = (await unfenced.mutex('report').acquire()).token;
  // @ts-expect-error a quorum gives no fencing token
  const token: bigint = (await unfenced.mutex('report').acquire()).token;
  const stores = [createSqliteStore(options), createEtcdStore(etcd), await openStore(url.scheme + '://')];
  await Promise.all([fenced.close(), unfenced.close(), ...stores.map((store) => store.close())]);
  try {
    await baton.mutex('report').acquire({ timeoutMs: 1 });
  } catch (error) {
    if (!(error instanceof LockTimeoutError)) throw error;
  }
  await lease.release();
  return none ?? token;
}
`;

/**
 * tsconfig: strict, nothing emitted. `skipLibCheck: false` holds baton's declarations to strict
 * mode too, but checks all of @types/node and etcd3 along with them (about 15 s more): done once,
 * under node16, as the declarations are the same files under every resolution.
 */
function tsconfig(name: string, options: Record<string, string | boolean>, files: string[]): string {
  const compilerOptions = { strict: true, noEmit: true, skipLibCheck: true, target: 'ES2022', types: ['node'], ...options };
  writeFileSync(join(app, name), JSON.stringify({ compilerOptions, files }, null, 2));
  return name;
}

describe('pack', () => {
  before(async () => {
    const head = (await run('git', ['rev-parse', 'HEAD'], root, 10_000)).trim();
    await run('git', ['clone', '--quiet', '--shared', '--no-checkout', root, clone], dir, 30_000);
    await run('git', ['checkout', '--quiet', '--detach', head], clone, 30_000);
    assert.ok(!existsSync(join(clone, 'dist')), 'a fresh clone has no dist');
    symlinkSync(modules, join(clone, 'node_modules'), 'dir');
    const out = await run('npm', ['pack', '--json', '--pack-destination', dir], clone, 180_000);
    // Some npm versions print the prepack script's output ahead of the JSON; npm 12 reports an object by package name, earlier ones an array.
    const report = JSON.parse(out.slice(out.search(/^[[{]/m))) as Packed[] | Record<string, Packed>;
    packed = Array.isArray(report) ? report[0]! : Object.values(report)[0]!;

    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const flags = ['--offline', '--cache', join(dir, 'npm-cache'), '--no-audit', '--no-fund', '--ignore-scripts', '--omit=optional', '--no-package-lock'];
    // The registry cannot be reached offline: baton's own dependencies come packed from this
    // checkout's node_modules, so that the app resolves them as a registry install would.
    const { dependencies = {} } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    const deps: string[] = [];
    for (const name of Object.keys(dependencies)) {
      const out = await run('npm', ['pack', '--json', '--pack-destination', dir, join(modules, name)], dir, 60_000);
      const report = JSON.parse(out.slice(out.search(/^[[{]/m))) as Packed[] | Record<string, Packed>;
      deps.push(join(dir, (Array.isArray(report) ? report[0]! : Object.values(report)[0]!).filename));
    }
    await run('npm', ['install', ...flags, join(dir, packed.filename), ...deps], app, 60_000);
    for (const name of ['better-sqlite3', 'etcd3', '@types/node']) link(name);
  });

  after(() => rmSync(dir, { recursive: true, force: true }));

  it('npm pack in a fresh clone builds dist and ships it, with LICENSE, README, docs and the sources its maps point to', async (t) => {
    t.diagnostic(`${packed.filename}: ${packed.size} bytes, ${packed.unpackedSize} unpacked, ${packed.entryCount} files`);
    const files = new Set(packed.files.map((file) => file.path));
    for (const path of ['package.json', 'LICENSE', 'README.md', 'docs/fencing.md', 'dist/esm/index.js', 'dist/cjs/index.js', 'dist/cjs/package.json', 'dist/esm/cli/main.js']) {
      assert.ok(files.has(path), `the tarball has ${path}`);
    }
    assert.deepEqual([...files].filter((path) => /^(test|build|scripts|bench|examples|node_modules)\//.test(path)), [], 'no tests, builds, scripts or dependencies');
    const pkg = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as { exports: Record<string, unknown>; typesVersions?: Record<string, Record<string, string[]>> };
    const targets = [JSON.stringify(pkg.exports), JSON.stringify(pkg.typesVersions ?? {})].flatMap((text) => [...text.matchAll(/"(?:\.\/)?(dist\/[^"]+)"/g)].map((m) => m[1]!));
    for (const target of targets) assert.ok(files.has(target), `the tarball has ${target}, which package.json names`);
    const maps = [...files].filter((path) => path.endsWith('.js.map'));
    for (const map of maps) {
      const { sources } = JSON.parse(readFileSync(join(installed, map), 'utf8')) as { sources: string[] };
      for (const source of sources) assert.ok(files.has(relative(installed, resolve(installed, dirname(map), source))), `${map} points to ${source}, which the tarball has`);
    }
    t.diagnostic(`${maps.length} source maps, each pointing into src/`);
  });

  it('from ESM: import baton-lock, baton-lock/memory and baton-lock/sqlite and take a lock', async () => {
    const load = `import { createBaton } from 'baton-lock';\nimport { createMemoryStore } from 'baton-lock/memory';\nimport { createSqliteStore } from 'baton-lock/sqlite';`;
    writeFileSync(join(app, 'check.mjs'), body(load, 'esm.db'));
    const out = JSON.parse(await run(process.execPath, ['check.mjs'], app, 30_000)) as unknown;
    const expected = { busy: true, tokens: ['1', '2'] };
    assert.deepEqual(out, { memory: expected, sqlite: expected });
  });

  it('from CommonJS: require baton-lock, baton-lock/memory and baton-lock/sqlite and take a lock', async () => {
    const load = `const { createBaton } = require('baton-lock');\nconst { createMemoryStore } = require('baton-lock/memory');\nconst { createSqliteStore } = require('baton-lock/sqlite');`;
    writeFileSync(join(app, 'check.cjs'), `(async () => {\n${body(load, 'cjs.db')}\n})().catch((error) => {\n  console.error(error);\n  process.exitCode = 1;\n});\n`);
    const out = JSON.parse(await run(process.execPath, ['check.cjs'], app, 30_000)) as unknown;
    const expected = { busy: true, tokens: ['1', '2'] };
    assert.deepEqual(out, { memory: expected, sqlite: expected });
  });

  it('the baton command is installed and runs', async () => {
    const out = await run(join(app, 'node_modules/.bin/baton'), ['--version'], app, 30_000);
    assert.match(out.trim(), /^\d+\.\d+\.\d+$/);
  });

  describe('strict TypeScript sees the types of the root and of every subpath', () => {
    before(() => {
      writeFileSync(join(app, 'esm.mts'), typed);
      writeFileSync(join(app, 'cjs.cts'), typed);
      writeFileSync(join(app, 'app.ts'), typed);
    });

    it('moduleResolution node16, from an ES module and from a CommonJS one, declarations checked too', async () => {
      const project = tsconfig('tsconfig.node16.json', { module: 'node16', moduleResolution: 'node16', skipLibCheck: false }, ['esm.mts', 'cjs.cts']);
      await run(process.execPath, [tsc, '-p', project], app, 120_000);
    });

    it('moduleResolution bundler', async () => {
      const project = tsconfig('tsconfig.bundler.json', { module: 'esnext', moduleResolution: 'bundler' }, ['app.ts']);
      await run(process.execPath, [tsc, '-p', project], app, 120_000);
    });

    it('moduleResolution node10, which reads typesVersions instead of exports', async () => {
      const project = tsconfig('tsconfig.node10.json', { module: 'commonjs', moduleResolution: 'node10' }, ['app.ts']);
      await run(process.execPath, [tsc, '-p', project], app, 120_000);
    });
  });
});
