/**
 * The `sqlite:` store URL: a path and the options of `SqliteStoreOptions`.
 *
 *   sqlite:                      the default file, `defaultSqlitePath()`: $BATON_SQLITE_PATH, else the user's own
 *   sqlite:/var/lib/app/locks.db an absolute path (also `sqlite:///var/lib/app/locks.db`)
 *   sqlite:locks.db              a path relative to the current directory (also `sqlite:./locks.db`)
 *   sqlite:locks.db?prefix=app&durability=normal&busyTimeoutMs=2000
 */
import { resolve } from 'node:path';
import { InvalidArgumentError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { decodePath, msOption, queryOptions, redactUrl, schemeOf, type StoreScheme } from '../../url-parts.js';

/** SqliteStoreUrl: a parsed `sqlite:` URL; its options map one to one onto `SqliteStoreOptions`. */
export interface SqliteStoreUrl {
  readonly scheme: 'sqlite';
  /** Absolute path of the database file; undefined means `defaultSqlitePath()`. */
  readonly path?: string;
  readonly prefix?: string;
  readonly durability?: 'full' | 'normal';
  readonly busyTimeoutMs?: number;
}

const OPTIONS = ['prefix', 'durability', 'busyTimeoutMs'] as const;

/** sqliteScheme: `sqlite:`, a SQLite file on this host. */
export const sqliteScheme: StoreScheme<'sqlite', SqliteStoreUrl> = {
  names: ['sqlite'],
  form: 'sqlite:[PATH][?prefix=app&durability=full|normal&busyTimeoutMs=2000]',
  summary: 'a SQLite file on this host, shared by the processes that open it; sqlite: alone is $BATON_SQLITE_PATH if set, else the user\'s own file $XDG_STATE_HOME/baton/locks.db or ~/.local/state/baton/locks.db (other users have their own)',
  options: OPTIONS,
  example: 'for example sqlite:/var/lib/app/locks.db, or sqlite: alone for the default file',
  parse: parseSqlite,
  async open(parsed: SqliteStoreUrl): Promise<LockStore> {
    const { createSqliteStore } = await import('./store.js');
    const { scheme: _scheme, ...options } = parsed;
    const store = createSqliteStore(options);
    try {
      await store.open();
    } catch (error) {
      await store.close().catch(() => undefined);
      throw error;
    }
    return store;
  },
};

function parseSqlite(url: string): SqliteStoreUrl {
  const rest = schemeOf(url)!.rest;
  const q = rest.indexOf('?');
  let location = q < 0 ? rest : rest.slice(0, q);
  const options = parseSqliteOptions(q < 0 ? '' : rest.slice(q + 1), url);
  if (location.startsWith('//')) {
    // sqlite://HOST/PATH: only an empty host (or localhost) makes sense for a local file.
    const slash = location.indexOf('/', 2);
    const host = slash < 0 ? location.slice(2) : location.slice(2, slash);
    if (host !== '' && host.toLowerCase() !== 'localhost') {
      throw new InvalidArgumentError('url', `A sqlite: URL names a local file and has no host, got "${redactUrl(url)}": write sqlite:${host}${slash < 0 ? '' : location.slice(slash)} for a path relative to the current directory, or sqlite:///absolute/path.db`);
    }
    location = slash < 0 ? '' : location.slice(slash);
  }
  const path = decodePath(location, url);
  return { scheme: 'sqlite', ...(path === '' ? {} : { path: resolve(path) }), ...options };
}

function parseSqliteOptions(query: string, url: string): Omit<SqliteStoreUrl, 'scheme' | 'path'> {
  const options: { prefix?: string; durability?: 'full' | 'normal'; busyTimeoutMs?: number } = {};
  for (const [key, value] of queryOptions(query, url)) {
    switch (key) {
      case 'prefix':
        if (value === '' || value.includes(':')) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string without ":", got "${value}"`);
        options.prefix = value;
        break;
      case 'durability':
        if (value !== 'full' && value !== 'normal') throw new InvalidArgumentError('url', `The store URL option "durability" must be "full" or "normal", got "${value}"`);
        options.durability = value;
        break;
      case 'busyTimeoutMs':
        options.busyTimeoutMs = msOption(key, value, 0);
        break;
      default:
        throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for sqlite:; expected ${OPTIONS.join(', ')}`);
    }
  }
  return options;
}
