/**
 * The PostgreSQL store URLs, `postgres://` and `postgresql://` (the same):
 *
 *   postgres://[user:password@]host[:port]/database[?schema=baton&prefix=app&listen=URL&notify=false
 *               &statementTimeoutMs=30000&sslmode=require&sslrootcert=/path/ca.pem&application_name=app]
 *
 * `schema`, `prefix`, `notify` and `statementTimeoutMs` are baton's; `listen` is a direct URL
 * to the server for the store's LISTEN connection, percent-encoded, for when the URL names a
 * transaction pooler (PgBouncer), which cannot carry LISTEN; the TLS and `application_name`
 * options go to node-postgres as they are. Messages never repeat either URL's credentials.
 */
import { InvalidArgumentError } from '../../errors.js';
import { msOption, queryOptions, redactUrl, type StoreScheme } from '../../url-parts.js';

/** PostgresStoreUrl: a parsed `postgres:` URL; `url` (and `listen`) are what goes to node-postgres, without baton's own options. */
export interface PostgresStoreUrl {
  readonly scheme: 'postgres';
  readonly url: string;
  readonly listen?: string;
  readonly schema?: string;
  readonly prefix?: string;
  readonly notify?: boolean;
  readonly statementTimeoutMs?: number;
}

const OWN = ['schema', 'prefix', 'listen', 'notify', 'statementTimeoutMs'] as const;
/** node-postgres's connection options that a URL may carry, passed through. */
const DRIVER = ['sslmode', 'sslrootcert', 'sslcert', 'sslkey', 'application_name'] as const;

/** postgresScheme: `postgres://` and `postgresql://`, one PostgreSQL server (or a pooler in front of it). */
export const postgresScheme: StoreScheme<'postgres' | 'postgresql', PostgresStoreUrl> = {
  names: ['postgres', 'postgresql'],
  form: 'postgres://[user:password@]host[:port]/database[?schema=baton&prefix=app&listen=DIRECT_URL&notify=false&statementTimeoutMs=30000&sslmode=require]',
  summary: 'one PostgreSQL server, directly or through PgBouncer in transaction mode (needs pg); listen= names a direct URL for LISTEN when the URL is a pooler\'s; postgresql:// is the same',
  options: [...OWN, ...DRIVER],
  parse: parsePostgres,
  open: async (parsed) => (await import('./connect.js')).openPostgres(parsed),
};

function parsePostgres(url: string): PostgresStoreUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidArgumentError('url', `Malformed PostgreSQL URL "${redactUrl(url)}"; expected postgres://[user:password@]host[:port]/database`);
  }
  if (parsed.hostname === '') throw new InvalidArgumentError('url', `A PostgreSQL URL needs a host, got "${redactUrl(url)}"`);
  const own: { listen?: string; schema?: string; prefix?: string; notify?: boolean; statementTimeoutMs?: number } = {};
  const driver = new URLSearchParams();
  for (const [key, value] of queryOptions(parsed.search.slice(1), url)) {
    switch (key) {
      case 'schema':
        if (!/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(value)) throw new InvalidArgumentError('url', `The store URL option "schema" must be a PostgreSQL identifier (a letter or "_", then letters, digits or "_", 63 at most), got "${value}"`);
        own.schema = value;
        break;
      case 'prefix':
        if (value === '' || value.includes(':')) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string without ":", got "${value}"`);
        own.prefix = value;
        break;
      case 'listen': {
        let listen: URL;
        try {
          listen = new URL(value);
        } catch {
          throw new InvalidArgumentError('url', `The store URL option "listen" must be a percent-encoded postgres:// URL, got "${redactUrl(value)}"`);
        }
        if (!/^postgres(ql)?:$/i.test(listen.protocol) || listen.hostname === '') {
          throw new InvalidArgumentError('url', `The store URL option "listen" must be a percent-encoded postgres:// URL with a host, got "${redactUrl(value)}"`);
        }
        own.listen = value;
        break;
      }
      case 'notify':
        if (value !== 'true' && value !== 'false') throw new InvalidArgumentError('url', `The store URL option "notify" must be "true" or "false", got "${value}"`);
        own.notify = value === 'true';
        break;
      case 'statementTimeoutMs':
        own.statementTimeoutMs = msOption(key, value, 1);
        break;
      default:
        if (!(DRIVER as readonly string[]).includes(key)) {
          throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for postgres://; expected ${[...OWN, ...DRIVER].join(', ')}`);
        }
        driver.append(key, value);
    }
  }
  parsed.search = driver.toString();
  return { scheme: 'postgres', url: parsed.toString(), ...own };
}
