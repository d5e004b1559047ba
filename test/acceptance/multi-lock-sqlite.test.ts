/** Multi-lock acceptance (multi-lock-run.ts) on SQLite: 8 processes, 200 multi-locks each, over 5 names. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { runMultiLock } from './multi-lock-run.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-multi-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('lockAll across 8 processes on SQLite: no deadlock, no two holders of a name', async (t) => runMultiLock(t, 'sqlite', `sqlite:${join(dir, 'locks.db')}`, true));
