/**
 * What the store calls on a ZooKeeper client: the callback API of `node-zookeeper-client`
 * (pure JavaScript, the recommended driver), typed by what is used so that you pass your own
 * client, connected to every server of the ensemble, with your chroot and digest auth
 * (`client.addAuthInfo`). The driver is never imported here.
 */
import { monotonicNow } from '../../core/clock.js';
import { StoreUnavailableError } from '../../errors.js';
import type { StoreCall } from '../../store.js';

/** ZooKeeperStat: the parts of a znode's stat the store reads (64-bit fields come as 8-byte buffers). */
export interface ZooKeeperStat {
  readonly czxid: Buffer;
  readonly version: number;
  readonly ephemeralOwner: Buffer;
  readonly numChildren: number;
}

/** A watcher's event: `getType()` is 1 created, 2 deleted, 3 data changed, 4 children changed. */
export interface ZooKeeperEvent {
  getType(): number;
}

type Callback<T extends unknown[]> = (error: Error | null, ...result: T) => void;

/**
 * ZooKeeperClient: the part of a `node-zookeeper-client` client (`createClient(hosts,
 * { sessionTimeout })`, then `connect()`) the store uses. One client is one ZooKeeper session,
 * which every lock of the store shares.
 */
export interface ZooKeeperClient {
  create(path: string, data: Buffer | undefined, acls: unknown[] | undefined, mode: number, callback: Callback<[string]>): void;
  remove(path: string, version: number, callback: Callback<[]>): void;
  getData(path: string, watcher: ((event: ZooKeeperEvent) => void) | undefined, callback: Callback<[Buffer | undefined, ZooKeeperStat]>): void;
  setData(path: string, data: Buffer, version: number, callback: Callback<[ZooKeeperStat]>): void;
  getChildren(path: string, watcher: ((event: ZooKeeperEvent) => void) | undefined, callback: Callback<[string[], ZooKeeperStat]>): void;
  exists(path: string, watcher: ((event: ZooKeeperEvent) => void) | undefined, callback: Callback<[ZooKeeperStat | null]>): void;
  /** The negotiated session timeout once connected, in ms. */
  getSessionTimeout(): number;
  getSessionId(): Buffer;
  /** `{ name, code }`: code 3 connected, 0 disconnected, -122 expired, 4 authentication failed. */
  getState(): { readonly name: string; readonly code: number };
  on(event: 'state', listener: (state: { readonly name: string; readonly code: number }) => void): unknown;
  removeListener(event: 'state', listener: (state: { readonly name: string; readonly code: number }) => void): unknown;
  close(): void;
}

/** ZooKeeperDriver: the `node-zookeeper-client` module, as the URL opener and tests load it. */
export interface ZooKeeperDriver {
  createClient(connectionString: string, options?: { sessionTimeout?: number; spinDelay?: number; retries?: number }): ZooKeeperClient & { connect(): void; addAuthInfo(scheme: string, auth: Buffer): void; once(event: string, listener: () => void): unknown };
}

/** ZooKeeper's error codes the store tells apart. */
export const Code = Object.freeze({
  CONNECTION_LOSS: -4,
  OPERATION_TIMEOUT: -7,
  NO_NODE: -101,
  NO_AUTH: -102,
  BAD_VERSION: -103,
  NODE_EXISTS: -110,
  NOT_EMPTY: -111,
  SESSION_EXPIRED: -112,
  AUTH_FAILED: -115,
});

/** The client's state codes. */
export const State = Object.freeze({ DISCONNECTED: 0, SYNC_CONNECTED: 3, AUTH_FAILED: 4, CONNECTED_READ_ONLY: 5, EXPIRED: -122 });

/** Create modes. */
export const Mode = Object.freeze({ PERSISTENT: 0, EPHEMERAL_SEQUENTIAL: 3 });

/** codeOf: ZooKeeper's error code of a driver error, if it is one. */
export function codeOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** isServerAnswer: the error is the server's answer to the request (not a lost connection nor an expired session). */
export function isServerAnswer(error: unknown): boolean {
  const code = codeOf(error);
  return code !== undefined && code <= -100 && code !== Code.SESSION_EXPIRED && code !== Code.AUTH_FAILED;
}

/** czxidOf: a stat's czxid, the zxid of the transaction that created the znode: a fencing token. */
export function czxidOf(stat: ZooKeeperStat): bigint {
  return stat.czxid.readBigUInt64BE(0);
}

/** The ephemeralOwner of a container znode (ZooKeeper's `EphemeralType.CONTAINER`). */
const CONTAINER_OWNER = 0x8000000000000000n;

/** isContainer: the znode is a container (Curator makes its parents so), which ZooKeeper removes once empty. */
export function isContainer(stat: ZooKeeperStat): boolean {
  return stat.ephemeralOwner.readBigUInt64BE(0) === CONTAINER_OWNER;
}

/**
 * Answer: what `Calls.run` reports to the session of each request: when it was sent, and
 * whether the server answered it (a result, or an error of the server's own such as no node).
 */
export type AnswerListener = (sentAt: number, answered: boolean) => void;

/**
 * bounded runs one driver request as a promise settled by `call`: the driver never times a
 * request out (it keeps it queued while it reconnects), so a request that gets no answer by
 * the deadline rejects with `StoreUnavailableError`, and one whose signal aborts, with its
 * reason. `late` gets a result that arrives after that (a node created for nobody).
 */
export function bounded<T>(
  send: (callback: (error: Error | null, result?: T) => void) => void,
  call: StoreCall,
  onAnswer: AnswerListener,
  what: string,
  late?: (result: T) => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    if (call.signal.aborted) return reject(call.signal.reason);
    const sentAt = monotonicNow();
    let settled = false;
    const finish = (): void => {
      settled = true;
      clearTimeout(timer);
      call.signal.removeEventListener('abort', onAbort);
    };
    const onAbort = (): void => {
      if (settled) return;
      finish();
      reject(call.signal.reason);
    };
    const timer = setTimeout(() => {
      if (settled) return;
      finish();
      reject(new StoreUnavailableError('zookeeper', `ZooKeeper did not answer ${what} within ${Math.max(0, Math.round(call.deadline - sentAt))} ms`));
    }, Math.max(0, call.deadline - sentAt));
    timer.unref();
    call.signal.addEventListener('abort', onAbort, { once: true });
    try {
      send((error, result) => {
        onAnswer(sentAt, error === null || isServerAnswer(error));
        if (settled) {
          if (error === null && late) late(result as T);
          return;
        }
        finish();
        if (error) reject(error);
        else resolve(result as T);
      });
    } catch (error) {
      // The driver checks its arguments synchronously (a path it refuses).
      finish();
      reject(error);
    }
  });
}
