/**
 * The layout's rules, checked on the source: no import cycle among src/ files, and core/
 * imports no driver (a store's client is typed by what baton calls on it).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

describe('architecture', () => {
  it('src/ has no import cycle', async () => {
    const { stdout } = await run(process.execPath, ['scripts/cycles.mjs', 'src'], { timeout: 30_000 }).catch((error: { stdout?: string; message: string }) => {
      assert.fail(`scripts/cycles.mjs found cycles:\n${error.stdout ?? error.message}`);
    });
    assert.match(stdout, /\b0 cycles\b/);
  });

  it('core/ and store.ts import no driver', () => {
    const drivers = /from\s+['"](ioredis|redis|etcd3|better-sqlite3|pg|node-zookeeper-client|@aws-sdk\/[^'"]+)['"]/;
    const files = [...readdirSync('src/core').map((name) => join('src/core', name)), 'src/store.ts', 'src/errors.ts'];
    for (const file of files) assert.doesNotMatch(readFileSync(file, 'utf8'), drivers, `${file} imports a driver`);
  });
});

describe('store folders', () => {
  it("each store's index.ts only re-exports: the implementation lives in named files", () => {
    for (const store of readdirSync('src/stores')) {
      const index = join('src/stores', store, 'index.ts');
      let text: string;
      try {
        text = readFileSync(index, 'utf8');
      } catch {
        continue;
      }
      const code = text.replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '').split('\n').map((line) => line.trim()).filter(Boolean);
      for (const line of code) assert.match(line, /^export (type )?\{[^}]*\} from '[^']+';$|^export \* from '[^']+';$/, `${index}: ${line}`);
    }
  });
});
