/** The examples run, against the built package, as a user would run them. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, it } from 'node:test';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'baton-examples-'));

describe('examples', () => {
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('take-turns: four processes take turns and every token is higher than the last', async () => {
    const env = { ...process.env, BATON_STORE: `sqlite:${join(dir, 'demo.db')}` };
    const first = await run(process.execPath, ['examples/take-turns.mjs'], { env });
    assert.match(first.stdout, /12 turns, one holder at a time; each token higher than the one before: yes/);
    const second = await run(process.execPath, ['examples/take-turns.mjs'], { env });
    const lowest = Math.min(...[...second.stdout.matchAll(/token (\d+)/g)].map((m) => Number(m[1])));
    assert.equal(lowest, 13, 'a second run continues the tokens of the first');
  });

  it('basic: the README example runs', async () => {
    const { stdout } = await run(process.execPath, ['examples/basic.mjs'], { env: { ...process.env, BATON_EXAMPLE_DB: join(dir, 'basic.db') } });
    assert.match(stdout, /running with token 1\ndone: true/);
  });
});
