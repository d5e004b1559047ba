/**
 * The `dynamodb:` store URLs:
 *
 *   dynamodb://HOST:PORT/TABLE?region=R   an http endpoint, such as DynamoDB Local or dynalite
 *   dynamodb:///TABLE?region=R            the SDK's default endpoint for the region (AWS itself)
 *   ...&create=true                       make the table when it is missing (`ensureTable`)
 *   ...&prefix=app                        the items' key prefix (default `baton`)
 *
 * `region` may be left out where the SDK finds one itself (AWS_REGION, a profile).
 * Credentials come from the SDK's usual chain (environment, profile, instance role), never
 * from the URL: a URL with `user:password@` is refused, and messages never repeat it.
 */
import { InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { decodePath, queryOptions, redactUrl, schemeOf, type StoreScheme } from '../../url-parts.js';

/** DynamoDbStoreUrl: a parsed `dynamodb:` URL. */
export interface DynamoDbStoreUrl {
  readonly scheme: 'dynamodb';
  /** `http://HOST:PORT` for an endpoint of your own; undefined for the SDK's default endpoint. */
  readonly endpoint?: string;
  readonly table: string;
  readonly region?: string;
  readonly prefix?: string;
  /** Make the table when it is missing. */
  readonly create?: boolean;
}

const FORM = 'dynamodb://[HOST:PORT]/TABLE[?region=us-east-1&create=true&prefix=app]';

/** dynamodbScheme: `dynamodb://`, a DynamoDB table. */
export const dynamodbScheme: StoreScheme<'dynamodb', DynamoDbStoreUrl> = {
  names: ['dynamodb'],
  form: FORM,
  summary: 'a DynamoDB table (needs @aws-sdk/client-dynamodb), through the http endpoint HOST:PORT (DynamoDB Local, dynalite) or, with no host (dynamodb:///TABLE), the SDK\'s default one for the region; credentials from the SDK\'s usual chain; create=true makes the table',
  options: ['region', 'create', 'prefix'],
  parse: parseDynamoDb,
  open: (parsed) => openDynamoDb(parsed),
};

function parseDynamoDb(url: string): DynamoDbStoreUrl {
  const rest = schemeOf(url)!.rest;
  if (!rest.startsWith('//')) throw new InvalidArgumentError('url', `Expected a DynamoDB URL such as ${FORM}, got "${redactUrl(url)}"`);
  const q = rest.indexOf('?');
  const location = (q < 0 ? rest : rest.slice(0, q)).slice(2);
  const slash = location.indexOf('/');
  const authority = slash < 0 ? location : location.slice(0, slash);
  if (authority.includes('@')) {
    throw new InvalidArgumentError('url', `A DynamoDB URL takes no credentials, got "${redactUrl(url)}": the SDK finds them itself (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, an instance role)`);
  }
  let endpoint: string | undefined;
  if (authority !== '') {
    let parsed: URL;
    try {
      parsed = new URL(`http://${authority}`);
    } catch {
      throw new InvalidArgumentError('url', `Malformed DynamoDB endpoint "${authority}" in "${redactUrl(url)}"; expected ${FORM}`);
    }
    if (parsed.port === '') throw new InvalidArgumentError('url', `A DynamoDB endpoint needs a port, got "${authority}" in "${redactUrl(url)}"; expected ${FORM}`);
    endpoint = `http://${parsed.host}`;
  }
  const table = decodePath(slash < 0 ? '' : location.slice(slash + 1), url);
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(table)) {
    throw new InvalidArgumentError('url', `A DynamoDB URL names its table after the host: 3 to 255 of A-Z a-z 0-9 _ . -, got ${table === '' ? 'none' : `"${table}"`} in "${redactUrl(url)}"; expected ${FORM}`);
  }
  const options: { region?: string; prefix?: string; create?: boolean } = {};
  for (const [key, value] of queryOptions(q < 0 ? '' : rest.slice(q + 1), url)) {
    switch (key) {
      case 'region':
        if (!/^[a-z0-9-]{1,64}$/.test(value)) throw new InvalidArgumentError('url', `The store URL option "region" must be an AWS region such as us-east-1, got "${value}"`);
        options.region = value;
        break;
      case 'prefix':
        if (value === '' || value.length > 64 || /[:#]/.test(value)) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string of at most 64 characters without ":" or "#", got "${value}"`);
        options.prefix = value;
        break;
      case 'create':
        if (value !== 'true' && value !== 'false') throw new InvalidArgumentError('url', `The store URL option "create" must be true or false, got "${value}"`);
        options.create = value === 'true';
        break;
      default:
        throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for dynamodb://; expected region, create or prefix`);
    }
  }
  return { scheme: 'dynamodb', ...(endpoint === undefined ? {} : { endpoint }), table, ...options };
}

/** OPEN_TIMEOUT_MS: the longest `openStore` waits for DynamoDB to say the table is there (or to make it). */
const OPEN_TIMEOUT_MS = 10_000;

/**
 * openDynamoDb makes a client (the SDK's own configuration chain, this endpoint and region)
 * and a store that owns it, after checking the table is there, or making it with `create`.
 */
async function openDynamoDb(parsed: DynamoDbStoreUrl): Promise<LockStore> {
  let sdk: typeof import('@aws-sdk/client-dynamodb');
  try {
    sdk = await import('@aws-sdk/client-dynamodb');
  } catch (error) {
    throw new StoreUnavailableError('dynamodb', 'The DynamoDB store needs the @aws-sdk/client-dynamodb package: run `npm install @aws-sdk/client-dynamodb`', { cause: error });
  }
  const [{ createDynamoDbStore }, { ensureTable }] = await Promise.all([import('./store.js'), import('./table.js')]);
  const where = parsed.endpoint ?? `the default endpoint${parsed.region ? ` of ${parsed.region}` : ''}`;
  let client: InstanceType<typeof sdk.DynamoDBClient>;
  try {
    client = new sdk.DynamoDBClient({ ...(parsed.endpoint ? { endpoint: parsed.endpoint } : {}), ...(parsed.region ? { region: parsed.region } : {}) });
  } catch (error) {
    throw new StoreUnavailableError('dynamodb', `Cannot make a DynamoDB client for ${where}: ${(error as Error).message}`, { cause: error });
  }
  try {
    if (parsed.create) await ensureTable(client, { table: parsed.table, timeoutMs: OPEN_TIMEOUT_MS });
    else {
      await client.send(new sdk.DescribeTableCommand({ TableName: parsed.table }), { abortSignal: AbortSignal.timeout(OPEN_TIMEOUT_MS) });
    }
  } catch (error) {
    client.destroy();
    if (error instanceof InvalidArgumentError) throw error;
    const name = error instanceof Error ? error.name : '';
    if (name === 'ResourceNotFoundException') {
      throw new StoreUnavailableError('dynamodb', `The DynamoDB table "${parsed.table}" does not exist at ${where}: add &create=true to the URL to make it, or make it with ensureTable() from baton-lock/dynamodb`, { cause: error });
    }
    const why = error instanceof StoreUnavailableError ? error.message : `Cannot reach DynamoDB at ${where}: ${describe(error)}`;
    throw new StoreUnavailableError('dynamodb', why, { cause: error });
  }
  return createDynamoDbStore(client, { table: parsed.table, closeClient: true, ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }) });
}

/** describe: an SDK error in one line; a refused connection says so (its message can be empty). */
function describe(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  return typeof code === 'string' && !message.includes(code) ? `${code} ${message}`.trim() : message || String(error);
}
