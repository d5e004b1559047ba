/**
 * The ZooKeeper store URLs: `zk://[user:password@]host:port[,host:port...][/chroot][?root=/baton&sessionTimeoutMs=10000]`,
 * every server of the ensemble, an optional chroot (the client's view starts there), digest
 * auth from the credentials (the store's znodes then get the creator-only ACL), and the
 * store's options. `zookeeper://` is the same.
 */
import { storeCall } from '../../core/call.js';
import { InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import type { LockStore } from '../../store.js';
import { decodePath, msOption, queryOptions, redactUrl, schemeOf, type StoreScheme } from '../../url-parts.js';
import { State, type ZooKeeperClient, type ZooKeeperDriver } from './client.js';

/** ZooKeeperStoreUrl: a parsed `zk:` URL. */
export interface ZooKeeperStoreUrl {
  readonly scheme: 'zk';
  /** `host:port` of each server. */
  readonly hosts: readonly string[];
  /** The chroot, absolute, if any. */
  readonly chroot?: string;
  readonly username?: string;
  readonly password?: string;
  /** The store's root znode (within the chroot). */
  readonly root?: string;
  /** The session timeout to ask for; the servers bound it (by default to 2 to 20 ticks). */
  readonly sessionTimeoutMs?: number;
}

const FORM = 'zk://[user:password@]host:port[,host:port...][/chroot][?root=/baton&sessionTimeoutMs=10000]';
const DEFAULT_SESSION_TIMEOUT_MS = 10_000;
/** How long opening waits for a first answer. */
const OPEN_TIMEOUT_MS = 3000;

/** zookeeperScheme: `zk://` (and `zookeeper://`), a ZooKeeper ensemble. */
export const zookeeperScheme: StoreScheme<'zk' | 'zookeeper', ZooKeeperStoreUrl> = {
  names: ['zk', 'zookeeper'],
  form: FORM,
  summary: 'a ZooKeeper ensemble, every server listed, locks in Apache Curator\'s layouts (needs node-zookeeper-client); a path is the chroot, user:password digest auth; zookeeper:// is the same',
  options: ['root', 'sessionTimeoutMs'],
  parse: parseZooKeeper,
  open: openZooKeeper,
};

function parseZooKeeper(url: string): ZooKeeperStoreUrl {
  const { rest } = schemeOf(url)!;
  const form = `expected ${FORM}`;
  if (!rest.startsWith('//')) throw new InvalidArgumentError('url', `Malformed ZooKeeper URL "${redactUrl(url)}"; ${form}`);
  const q = rest.indexOf('?');
  const body = q < 0 ? rest.slice(2) : rest.slice(2, q);
  const slash = body.indexOf('/');
  let authority = slash < 0 ? body : body.slice(0, slash);
  const path = slash < 0 ? '' : body.slice(slash);
  let username: string | undefined;
  let password: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const info = authority.slice(0, at);
    authority = authority.slice(at + 1);
    const colon = info.indexOf(':');
    try {
      username = decodeURIComponent(colon < 0 ? info : info.slice(0, colon));
      password = colon < 0 ? '' : decodeURIComponent(info.slice(colon + 1));
    } catch {
      throw new InvalidArgumentError('url', `Malformed percent-escape in the credentials of the ZooKeeper URL "${redactUrl(url)}"`);
    }
  }
  const hosts = authority.split(',').map((host) => {
    if (!/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(host)) {
      throw new InvalidArgumentError('url', `Each ZooKeeper server needs a host and a port, got "${host}" in "${redactUrl(url)}"; ${form}`);
    }
    return host;
  });
  let chroot: string | undefined;
  if (path !== '' && path !== '/') {
    chroot = decodePath(path.replace(/\/$/, ''), url);
    if (!/^(\/[^/]+)+$/.test(chroot)) throw new InvalidArgumentError('url', `The chroot of a ZooKeeper URL must be an absolute znode path such as /app, got "${chroot}"`);
  }
  const options: { root?: string; sessionTimeoutMs?: number } = {};
  for (const [key, value] of queryOptions(q < 0 ? '' : rest.slice(q + 1), url)) {
    if (key === 'root') {
      if (!/^(\/[^/]+)+$/.test(value)) throw new InvalidArgumentError('url', `The store URL option "root" must be an absolute znode path without a trailing "/", such as /baton, got "${value}"`);
      options.root = value;
    } else if (key === 'sessionTimeoutMs') {
      options.sessionTimeoutMs = msOption(key, value, 200);
    } else {
      throw new InvalidArgumentError('url', `Unknown store URL option "${key}" for zk://; expected root, sessionTimeoutMs`);
    }
  }
  return { scheme: 'zk', hosts, ...(chroot === undefined ? {} : { chroot }), ...(username === undefined ? {} : { username, password: password ?? '' }), ...options };
}

/** The state listener type of a client. */
type StateListener = (state: { readonly name: string; readonly code: number }) => void;

/**
 * renewingClient: a client that the store owns, which starts a new session (a new
 * node-zookeeper-client client) once the old one is surely of no use, so that a store opened
 * by URL keeps working after its process was paused past its session or cut off for longer:
 * the store sees answers from another session and treats the old one's entries as lost. The
 * old one is of no use once the driver reports it expired, and once the client has been
 * disconnected for longer than its session timeout: the driver waits without a bound for a
 * server's answer to its connect request (seen after a server restart: a connection a
 * starting server took and never answered), and the server expires a session it has not heard
 * from for its timeout anyway.
 */
function renewingClient(connect: () => ZooKeeperClient): ZooKeeperClient {
  const listeners = new Set<StateListener>();
  let closed = false;
  let current: ZooKeeperClient;
  let watchdog: NodeJS.Timeout | null = null;
  const renew = (): void => {
    if (watchdog) clearTimeout(watchdog);
    watchdog = null;
    const old = current;
    old.removeListener('state', forward);
    old.close();
    // The old client's requests would never be answered now (the driver neither sends nor
    // fails what it queued once closed): they fail as a lost connection, which the store
    // handles (a create is then looked for, by its owner's uuid, on the new session).
    const stranded = [...inFlight];
    inFlight.clear();
    for (const fail of stranded) fail();
    start();
  };
  const forward: StateListener = (state) => {
    for (const listener of [...listeners]) listener(state);
    if (closed) return;
    if (state.code === State.EXPIRED) renew();
    else if (state.code === State.SYNC_CONNECTED) {
      if (watchdog) clearTimeout(watchdog);
      watchdog = null;
    } else if (state.code === State.DISCONNECTED && !watchdog) {
      watchdog = setTimeout(() => {
        watchdog = null;
        if (!closed && current.getState().code !== State.SYNC_CONNECTED) {
          // Listeners see the old session end, as the driver would report it.
          for (const listener of [...listeners]) listener({ name: 'EXPIRED', code: State.EXPIRED });
          renew();
        }
      }, current.getSessionTimeout());
      watchdog.unref();
    }
  };
  const start = (): void => {
    current = connect();
    current.on('state', forward);
  };
  /** The requests in flight on the current client, each with what fails it. */
  const inFlight = new Set<() => void>();
  /** track wraps a request's callback so that `renew` can fail it; it is called once either way. */
  const track = <A extends unknown[]>(callback: (error: Error | null, ...result: A) => void): ((error: Error | null, ...result: A) => void) => {
    let done = false;
    const fail = (): void => {
      if (done) return;
      done = true;
      callback(Object.assign(new Error('CONNECTION_LOSS[-4]: the client was replaced by one with a new session'), { name: 'CONNECTION_LOSS', code: -4 }), ...([] as unknown as A));
    };
    inFlight.add(fail);
    return (error, ...result) => {
      inFlight.delete(fail);
      if (done) return;
      done = true;
      callback(error, ...result);
    };
  };
  start();
  return {
    create: (path, data, acls, mode, callback) => current.create(path, data, acls, mode, track(callback)),
    remove: (path, version, callback) => current.remove(path, version, track(callback)),
    getData: (path, watcher, callback) => current.getData(path, watcher, track(callback)),
    setData: (path, data, version, callback) => current.setData(path, data, version, track(callback)),
    getChildren: (path, watcher, callback) => current.getChildren(path, watcher, track(callback)),
    exists: (path, watcher, callback) => current.exists(path, watcher, track(callback)),
    getSessionTimeout: () => current.getSessionTimeout(),
    getSessionId: () => current.getSessionId(),
    getState: () => current.getState(),
    on: (_event, listener) => listeners.add(listener),
    removeListener: (_event, listener) => listeners.delete(listener),
    close: () => {
      closed = true;
      if (watchdog) clearTimeout(watchdog);
      current.removeListener('state', forward);
      current.close();
    },
  };
}

async function openZooKeeper(parsed: ZooKeeperStoreUrl, url: string): Promise<LockStore> {
  let driver: ZooKeeperDriver & { ACL: { CREATOR_ALL_ACL: unknown[] } };
  try {
    const specifier = 'node-zookeeper-client';
    const loaded = (await import(specifier)) as { default?: unknown };
    driver = (loaded.default ?? loaded) as typeof driver;
  } catch (error) {
    throw new StoreUnavailableError('zookeeper', 'The ZooKeeper store needs the node-zookeeper-client package: run `npm install node-zookeeper-client`', { cause: error });
  }
  const sessionTimeout = parsed.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS;
  const connectionString = `${parsed.hosts.join(',')}${parsed.chroot ?? ''}`;
  const client = renewingClient(() => {
    const c = driver.createClient(connectionString, { sessionTimeout, spinDelay: 100 });
    if (parsed.username !== undefined) c.addAuthInfo('digest', Buffer.from(`${parsed.username}:${parsed.password ?? ''}`));
    c.connect();
    return c;
  });
  const { createZooKeeperStore } = await import('./store.js');
  const store = createZooKeeperStore(client, {
    closeClient: true,
    ...(parsed.root === undefined ? {} : { root: parsed.root }),
    ...(parsed.username === undefined ? {} : { acls: driver.ACL.CREATOR_ALL_ACL }),
  });
  try {
    // One read, so that an unreachable ensemble or refused credentials fail here rather than on the first lock.
    await store.list({ kind: 'mutex' }, storeCall(OPEN_TIMEOUT_MS));
  } catch (error) {
    await store.close().catch(() => undefined);
    const { tcpFailure } = await import('../tcp-failure.js');
    const refused = await Promise.all(parsed.hosts.map((host) => {
      const colon = host.lastIndexOf(':');
      return tcpFailure(host.slice(0, colon).replace(/^\[(.*)\]$/, '$1'), Number(host.slice(colon + 1)));
    }));
    const message = refused.every((why) => why !== undefined) ? refused.join('; ') : (error as Error).message;
    throw new StoreUnavailableError('zookeeper', `Cannot reach ZooKeeper at ${redactUrl(url)}: ${message}`, { cause: error });
  }
  return store;
}
