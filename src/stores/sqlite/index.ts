export { SqliteStore, createSqliteStore, defaultSqlitePath } from './store.js';
export type { SqliteDatabase, SqliteStatement, SqliteStoreOptions } from './store.js';
