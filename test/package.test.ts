/** The built package as users load it: every subpath through the exports map, from ESM and from CommonJS. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const run = promisify(execFile);
const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, unknown>; bin: Record<string, string> };
const subpaths = Object.keys(pkg.exports).filter((key) => key !== './package.json').map((key) => key.replace(/^\./, 'baton-lock'));

describe('package', () => {
  it('every subpath loads with require() and with import, with the same exports', async () => {
    const script = `
      const subpaths = ${JSON.stringify(subpaths)};
      (async () => {
        const out = {};
        for (const path of subpaths) {
          const cjs = Object.keys(require(path)).filter((k) => k !== 'default').sort();
          const esm = Object.keys(await import(path)).filter((k) => k !== 'default' && k !== 'module.exports').sort();
          out[path] = { cjs, esm };
        }
        console.log(JSON.stringify(out));
      })();`;
    const { stdout } = await run(process.execPath, ['-e', script]);
    const result = JSON.parse(stdout) as Record<string, { cjs: string[]; esm: string[] }>;
    for (const path of subpaths) {
      assert.ok(result[path]!.esm.length > 0, `${path} exports something`);
      assert.deepEqual(result[path]!.cjs, result[path]!.esm, `${path}: CommonJS and ESM export the same names`);
    }
    assert.ok(result['baton-lock']!.esm.includes('createBaton'));
    assert.ok(result['baton-lock/sqlite']!.esm.includes('createSqliteStore'));
    assert.ok(result['baton-lock/memory']!.esm.includes('createMemoryStore'));
    assert.ok(result['baton-lock/etcd']!.esm.includes('createEtcdStore'));
    assert.ok(result['baton-lock/postgres']!.esm.includes('createPostgresStore'));
  });

  it('a lock taken through the CommonJS build excludes one taken through the ESM build', async () => {
    const script = `
      const { createBaton } = require('baton-lock');
      const { createMemoryStore } = require('baton-lock/memory');
      (async () => {
        const esm = await import('baton-lock');
        const store = createMemoryStore();
        const a = createBaton(store);
        const b = esm.createBaton(store);
        const lease = await a.mutex('x').acquire({ ttlMs: 1000 });
        console.log(JSON.stringify({ busy: (await b.mutex('x').tryAcquire()) === null, token: String(lease.token), lostIsError: new esm.LeaseLostError('x', 'expired', 1n) instanceof Error }));
      })();`;
    const { stdout } = await run(process.execPath, ['-e', script]);
    assert.deepEqual(JSON.parse(stdout), { busy: true, token: '1', lostIsError: true });
  });

  it('the bin runs', async () => {
    const { stdout } = await run(process.execPath, [pkg.bin.baton!, '--version']);
    assert.match(stdout.trim(), /^\d+\.\d+\.\d+$/);
  });
});
