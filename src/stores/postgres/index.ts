export { PostgresStore, checkSchema, createPostgresStore } from './store.js';
export type { PgExecutor, PgPool, PgPoolClient, PgRow, PostgresStoreOptions } from './store.js';
export type { PgListenClient } from './listen.js';
export { SCHEMA_VERSION, schemaSql } from './sql.js';
