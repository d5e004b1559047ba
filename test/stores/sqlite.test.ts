import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { runContractSuite } from '../contract/suite.js';

runContractSuite({
  name: 'sqlite',
  backing: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'baton-sqlite-'));
    return {
      // Each connection is its own database handle on the shared file, as another process's would be.
      connect: () => createSqliteStore({ path: join(dir, 'locks.db') }),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
});
