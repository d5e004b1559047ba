/**
 * The etcd store URLs: `etcd://[user:pass@]host:port[,host:port...][?prefix=app/&sessionTtlMs=10000]`,
 * every member of a cluster, and `etcds://` for TLS, with `?ca=/path/ca.pem` for a private CA
 * and `&cert=/path/client.pem&key=/path/client.key` for a client certificate.
 */
import { resolve } from 'node:path';
import { InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { msOption, queryOptions, redactUrl, schemeOf, type StoreScheme } from '../../url-parts.js';

/** EtcdStoreUrl: a parsed `etcd:` or `etcds:` URL: the members' addresses, the credentials, and the store's options. */
export interface EtcdStoreUrl {
  readonly scheme: 'etcd';
  /** Member addresses for etcd3, `http://host:port` (`https://` with etcds:). */
  readonly hosts: readonly string[];
  readonly username?: string;
  readonly password?: string;
  /** Path of a PEM file with the CA that signed the members' certificates (etcds: only). */
  readonly ca?: string;
  /** Paths of the PEM files of a client certificate and its private key, for members that check clients' certificates (etcds: only, both or neither). */
  readonly cert?: string;
  readonly key?: string;
  readonly prefix?: string;
  readonly sessionTtlMs?: number;
}

/** The options of etcds:// only: files for TLS. */
const TLS_OPTIONS = ['ca', 'cert', 'key'] as const;

/** etcdScheme: `etcd://` and `etcds://`, an etcd cluster. */
export const etcdScheme: StoreScheme<'etcd' | 'etcds', EtcdStoreUrl> = {
  names: ['etcd', 'etcds'],
  form: 'etcd://[user:password@]host:port[,host:port...][?prefix=app/&sessionTtlMs=10000]',
  summary: 'an etcd cluster, every member listed (needs etcd3); etcds:// for TLS, with ?ca=PATH for a private CA and ?cert=PATH&key=PATH for a client certificate',
  options: ['prefix', 'sessionTtlMs', ...TLS_OPTIONS],
  parse: parseEtcd,
  open: openEtcd,
};

function parseEtcd(url: string): EtcdStoreUrl {
  const { scheme, rest } = schemeOf(url)! as { scheme: 'etcd' | 'etcds'; rest: string };
  const form = `expected ${scheme}://[user:password@]host:port[,host:port...][?prefix=app/&sessionTtlMs=10000${scheme === 'etcds' ? '&ca=/path/ca.pem&cert=/path/client.pem&key=/path/client.key' : ''}]`;
  if (!rest.startsWith('//')) throw new InvalidArgumentError('url', `Malformed etcd URL "${redactUrl(url)}"; ${form}`);
  const q = rest.indexOf('?');
  let authority = q < 0 ? rest.slice(2) : rest.slice(2, q);
  if (authority.endsWith('/')) authority = authority.slice(0, -1);
  let username: string | undefined;
  let password: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const info = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = info.indexOf(':');
    try {
      username = decodeURIComponent(colon < 0 ? info : info.slice(0, colon));
      password = colon < 0 ? undefined : decodeURIComponent(info.slice(colon + 1));
    } catch {
      throw new InvalidArgumentError('url', `Malformed percent-escape in the credentials of the etcd URL "${redactUrl(url)}"`);
    }
  }
  const hosts = authority.split(',').map((host) => {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(host)) {
      throw new InvalidArgumentError('url', `Each etcd member needs a host and a port, got "${host.replace(/^.*@/, '')}" in "${redactUrl(url)}"; ${form}`);
    }
    return `${scheme === 'etcds' ? 'https' : 'http'}://${host}`;
  });
  const options: { prefix?: string; sessionTtlMs?: number; ca?: string; cert?: string; key?: string } = {};
  for (const [key, value] of queryOptions(q < 0 ? '' : rest.slice(q + 1), url)) {
    const tlsOption = (TLS_OPTIONS as readonly string[]).includes(key);
    if (key === 'prefix') {
      if (value === '' || !value.endsWith('/')) throw new InvalidArgumentError('url', `The store URL option "prefix" must be a non-empty string ending with "/", got "${value}"`);
      options.prefix = value;
    } else if (key === 'sessionTtlMs') {
      options.sessionTtlMs = msOption(key, value, 1000);
    } else if (tlsOption && scheme === 'etcds') {
      if (value === '') throw new InvalidArgumentError('url', `The store URL option "${key}" must be the path of a PEM file`);
      options[key as (typeof TLS_OPTIONS)[number]] = resolve(value);
    } else {
      throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for ${scheme}://; expected prefix, sessionTtlMs${scheme === 'etcds' ? `, ${TLS_OPTIONS.join(', ')}` : ''}${scheme === 'etcd' && tlsOption ? ` (${key} is an option of etcds://, etcd over TLS)` : ''}`);
    }
  }
  if ((options.cert === undefined) !== (options.key === undefined)) {
    throw new InvalidArgumentError('url', `The store URL options "cert" and "key" go together (a client certificate and its private key), got only "${options.cert === undefined ? 'key' : 'cert'}" in "${redactUrl(url)}"`);
  }
  return { scheme: 'etcd', hosts, ...(username === undefined ? {} : { username }), ...(password === undefined ? {} : { password }), ...options };
}

/** The part of a gRPC call (`@grpc/grpc-js`'s `InterceptingCall`) that `trackCalls` uses. */
interface GrpcCall {
  start(metadata: unknown, listener?: { onReceiveMetadata?(metadata: unknown): void; onReceiveMessage?(message: unknown): void; onReceiveStatus?(status: unknown): void }): void;
  cancelWithStatus(code: number, details: string): void;
}

/** gRPC's status code CANCELLED. */
const GRPC_CANCELLED = 1;

/**
 * trackCalls: a gRPC client interceptor that keeps every call in flight, so that `cancelAll`
 * can end them when the client is closed (gRPC's own close ends only calls not yet started).
 * A call leaves the set when its status arrives.
 */
function trackCalls(): { interceptor: (options: unknown, next: (options: unknown) => GrpcCall) => GrpcCall; cancelAll(): void } {
  const inFlight = new Set<GrpcCall>();
  return {
    interceptor(options, next) {
      const call = next(options);
      const start = call.start.bind(call);
      call.start = (metadata, listener) => {
        inFlight.add(call);
        start(metadata, {
          onReceiveMetadata: (m) => listener?.onReceiveMetadata?.(m),
          onReceiveMessage: (m) => listener?.onReceiveMessage?.(m),
          onReceiveStatus: (status) => {
            inFlight.delete(call);
            listener?.onReceiveStatus?.(status);
          },
        });
      };
      return call;
    },
    cancelAll() {
      for (const call of [...inFlight]) call.cancelWithStatus(GRPC_CANCELLED, 'The etcd store was closed');
      inFlight.clear();
    },
  };
}

type IOptions = import('etcd3').IOptions;
type EtcdHostPolicy = ReturnType<NonNullable<NonNullable<IOptions['faultHandling']>['host']>>;

/** An etcd3 host policy that only runs the call: no circuit breaker in front of a single member. */
const passThrough = {
  execute: <T>(fn: (context: { signal: AbortSignal }) => PromiseLike<T> | T): Promise<T> => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
} as unknown as EtcdHostPolicy;

async function openEtcd(parsed: EtcdStoreUrl, url: string): Promise<LockStore> {
  let Etcd3: typeof import('etcd3').Etcd3;
  try {
    ({ Etcd3 } = await import('etcd3'));
  } catch (error) {
    throw new StoreUnavailableError('etcd', 'The etcd store needs the etcd3 package: run `npm install etcd3`', { cause: error });
  }
  const { readFile } = await import('node:fs/promises');
  const pem = async (path: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (error) {
      throw new StoreUnavailableError('etcd', `Cannot read the ${what} file "${path}" of the etcd URL: ${(error as Error).message}`, { cause: error });
    }
  };
  const rootCertificate = await pem(parsed.ca, 'CA');
  const certChain = await pem(parsed.cert, 'client certificate');
  const privateKey = await pem(parsed.key, 'client key');
  // etcd3 uses TLS for https:// hosts, trusting the system's CAs unless `ca` is given (gRPC takes a missing root certificate so).
  const credentials = rootCertificate || certChain ? { credentials: { rootCertificate: rootCertificate as Buffer, ...(certChain && privateKey ? { certChain, privateKey } : {}) } } : {};
  const calls = trackCalls();
  const client = new Etcd3({
    hosts: [...parsed.hosts],
    dialTimeout: 3000,
    // gRPC's default reconnect backoff grows from 1 s to 2 min: after etcd restarts, a client
    // could wait that long to reconnect, its locks unreachable. Leases last seconds: retry
    // within a second.
    grpcOptions: { 'grpc.initial_reconnect_backoff_ms': 100, 'grpc.max_reconnect_backoff_ms': 1000, interceptors: [calls.interceptor] } as IOptions['grpcOptions'],
    // etcd3 cuts a member off for 5 s after three failed calls in a row, to try the others;
    // with one member that cuts off etcd itself: after a restart, a client that had failed
    // three calls could neither renew nor release for 5 s, and lost its leases.
    ...(parsed.hosts.length === 1 ? { faultHandling: { host: () => passThrough } } : {}),
    // A call (not a stream) that gets no answer within a session TTL fails rather than hang:
    // no lease could outlive it, and a hung call would hold an acquire, a release or close().
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + (parsed.sessionTtlMs ?? 10_000) }),
    ...credentials,
    ...(parsed.username !== undefined ? { auth: { username: parsed.username, password: parsed.password ?? '' } } : {}),
  });
  const { createEtcdStore } = await import('./index.js');
  // Closing an etcd3 client closes its channels, but a call already sent goes on until its
  // deadline (a stream, forever) and keeps the process alive: with etcd stalled, the
  // session's grant, the revoke that close() gave up on, the watch stream. They are cancelled.
  const owned = {
    kv: client.kv,
    leaseClient: client.leaseClient,
    watch: client.watch.bind(client),
    close: () => {
      client.close();
      calls.cancelAll();
    },
  };
  const store = createEtcdStore(owned, {
    closeClient: true,
    ...(parsed.prefix === undefined ? {} : { prefix: parsed.prefix }),
    ...(parsed.sessionTtlMs === undefined ? {} : { sessionTtlMs: parsed.sessionTtlMs }),
  });
  try {
    // One read, so that an unreachable cluster or wrong credentials fail here rather than on the first lock.
    await store.list({ kind: 'mutex' });
  } catch (error) {
    await store.close().catch(() => undefined);
    const cause = error instanceof Error && error.cause instanceof Error ? error.cause : error;
    const secret = parsed.password;
    const [{ unreachableCause }, { tcpFailure }] = await Promise.all([import('./client.js'), import('../tcp-failure.js')]);
    const unreachable = unreachableCause(cause);
    let message = unreachable ?? (cause as Error).message;
    if (unreachable !== undefined) {
      // gRPC names one member's error at most, sometimes none ("Last error: null"): when no
      // member takes a TCP connection, each one's error says why.
      const refused = await Promise.all(parsed.hosts.map((host) => {
        const { hostname, port } = new URL(host);
        return tcpFailure(hostname.replace(/^\[(.*)\]$/, '$1'), Number(port));
      }));
      if (refused.every((why) => why !== undefined)) message = refused.join('; ');
    }
    throw new StoreUnavailableError('etcd', `Cannot reach etcd at ${redactUrl(url)}: ${secret ? message.replaceAll(secret, '***') : message}`, { cause: error });
  }
  return store;
}
