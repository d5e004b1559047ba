import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { createPostgresStore } from '../../src/stores/postgres/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startPgBouncer, startPostgres, type PgBouncer, type PostgresServer } from '../helpers/postgres-server.js';
import pg from 'pg';

let server: PostgresServer;
let bouncer: PgBouncer;
before(async () => {
  server = await startPostgres();
  bouncer = await startPgBouncer(server);
});
after(async () => {
  await bouncer?.stop();
  await server?.stop();
});

/** A fresh schema is a fresh, empty place on the same server. */
const freshSchema = (): string => `t${randomBytes(4).toString('hex')}`;

runContractSuite({
  name: 'postgres (direct)',
  backing: async () => {
    const schema = freshSchema();
    const pool = server.pool({ max: 4 });
    return {
      // Each connection is a store of its own on the one pool, as another process's would be on its own.
      connect: () => createPostgresStore(pool, { schema }),
      restart: () => server.restart(),
      cleanup: async () => {
        await server.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      },
    };
  },
});

runContractSuite({
  name: 'postgres (through PgBouncer in transaction mode)',
  backing: async () => {
    const schema = freshSchema();
    const pool = new pg.Pool({ connectionString: bouncer.url, max: 4 });
    pool.on('error', () => undefined);
    return {
      // Statements go through the pooler; LISTEN needs a direct connection, which the pooler cannot give.
      connect: () => createPostgresStore(pool, { schema, listen: () => new pg.Client({ connectionString: server.url }) }),
      restart: () => server.restart(),
      cleanup: async () => {
        await pool.end().catch(() => undefined);
        await server.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => undefined);
      },
    };
  },
});
