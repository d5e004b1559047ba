/**
 * The node-postgres pool that `openStore` makes for a PostgreSQL store URL (./url.ts), and the
 * store over it. Not an export of the package; it loads pg only when a store is opened. It
 * takes the parsed URL's fields rather than its type, so that it does not import the module
 * that imports it.
 */
import { storeCall } from '../../core/call.js';
import { StoreUnavailableError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { redactUrl } from '../../url-parts.js';
import type { PgListenClient } from './listen.js';
import type { PgPool } from './store.js';

/** How long opening waits for the server to answer (connect and make the schema). */
const OPEN_TIMEOUT_MS = 5000;

interface PgModule {
  Pool: new (config: Record<string, unknown>) => PgPool & { on(event: 'error', listener: (error: Error) => void): unknown };
  Client: new (config: Record<string, unknown>) => PgListenClient;
}

/** openPostgres opens a store on the server `url` names, with a pool the store owns (ended by its `close()`). */
export async function openPostgres(parsed: {
  readonly url: string;
  readonly listen?: string;
  readonly schema?: string;
  readonly prefix?: string;
  readonly notify?: boolean;
  readonly statementTimeoutMs?: number;
}): Promise<LockStore> {
  let pg: PgModule;
  try {
    const loaded = (await import('pg')) as unknown as { default?: PgModule } & PgModule;
    pg = loaded.default ?? loaded;
  } catch (error) {
    throw new StoreUnavailableError('postgres', 'The PostgreSQL store needs the pg package, which is not installed: run `npm install pg`', { cause: error });
  }
  const timeouts = parsed.statementTimeoutMs === undefined ? {} : { statement_timeout: parsed.statementTimeoutMs };
  const pool = new pg.Pool({ connectionString: parsed.url, max: 10, keepAlive: true, connectionTimeoutMillis: OPEN_TIMEOUT_MS, ...timeouts });
  // An idle connection the server dropped: the pool removes it and the next call makes a new one.
  pool.on('error', () => undefined);
  const listen = parsed.listen;
  const { createPostgresStore } = await import('./store.js');
  const store = createPostgresStore(pool, {
    closeClient: true,
    ...(listen === undefined ? {} : { listen: () => new pg.Client({ connectionString: listen, keepAlive: true }) }),
    ...(parsed.schema === undefined ? {} : { schema: parsed.schema }),
    ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }),
    ...(parsed.notify === undefined ? {} : { notify: parsed.notify }),
  });
  try {
    await store.open(storeCall(OPEN_TIMEOUT_MS));
  } catch (error) {
    await store.close().catch(() => undefined);
    const message = (error as Error).message.replaceAll(parsed.url, redactUrl(parsed.url));
    throw new StoreUnavailableError('postgres', message, { cause: (error as Error).cause ?? error });
  }
  return store;
}
