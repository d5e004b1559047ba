import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { InvalidArgumentError } from '../errors.js';
import { bounded, storeCall } from '../core/call.js';
import { monotonicNow } from '../core/clock.js';
import { parseHolder } from '../core/baton.js';
import type { HolderDescription } from '../core/options.js';
import { checkDuration, checkName, checkOptions } from '../core/validate.js';
import { LOCK_KINDS, type LockKind, type LockStore, type ResourceKey, type ResourceState } from '../store.js';
import { APP_CSS, APP_JS, PAGE_HTML } from './assets.js';

/** DashboardOptions for `createDashboardHandler`. */
export interface DashboardOptions {
  /** How often the store is listed while at least one page is open, in ms (at least 250). Default 1 000. */
  pollMs?: number;
  /** Longest wait for one listing, in ms. Default: the store's `defaultTimeoutMs`, at most 5 000. */
  timeoutMs?: number;
  /** The most locks a snapshot carries (the store's first, by kind and name). Default 1 000. */
  maxLocks?: number;
  /** The store's name to show until an opener (a function given as the source) has opened it. Default `store`. */
  storeName?: string;
  /**
   * admin lets the page force-release a lock, with the handler's `adminToken` (made anew for
   * each handler) in a same-origin POST. Default false: the page is read-only.
   */
  admin?: boolean;
}

/** DashboardHandler: a Node `(req, res)` handler; `close()` ends its streams and its polling. */
export interface DashboardHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Ends every open stream and stops polling; the handler then answers 503. Resolves once a store the handler opened itself (from an opener) is closed. */
  close(): Promise<void>;
  /** With `admin`, the token a force-release must carry (32 hex characters, random per handler); open the page at `#token=` it. Null otherwise. */
  readonly adminToken: string | null;
}

/** Snapshot: what every page receives, as JSON (tokens as strings). */
export interface Snapshot {
  /** Wall-clock instant of the listing (ms since the epoch). */
  readonly at: number;
  readonly store: StoreHealth;
  readonly locks: readonly SnapshotLock[];
  /** More locks than `maxLocks`: the rest are left out. */
  readonly truncated: boolean;
}

export interface StoreHealth {
  readonly name: string;
  readonly state: 'connecting' | 'connected' | 'unreachable';
  /** How long the last listing took, in ms (a round trip, and the store's own work). */
  readonly rttMs: number | null;
  /** Why the last listing failed (never the store's credentials: stores leave them out of messages). */
  readonly error: string | null;
  /** Wall-clock instant of the last successful listing. */
  readonly lastOkAt: number | null;
  /** Whether the store issues fencing tokens, and whose clock enforces its TTLs; null until it is opened. */
  readonly fencing: boolean | null;
  readonly clock: string | null;
}

export interface SnapshotLock {
  readonly name: string;
  readonly kind: string;
  readonly fence: string | null;
  readonly holders: readonly {
    owner: string;
    mode: string;
    token: string | null;
    ttlMs: number;
    expiresInMs: number;
    value?: string;
    holder?: HolderDescription;
    foreign?: true;
  }[];
  readonly waiters: readonly { owner: string; mode: string; position: number }[];
}

const OPTIONS = ['pollMs', 'timeoutMs', 'maxLocks', 'storeName', 'admin'] as const;

/** How often an idle stream gets a comment line, so that proxies keep it open and dead peers are found. */
const HEARTBEAT_MS = 15_000;

/**
 * createDashboardHandler serves a live view of the locks in `source` (a baton instance or a
 * store) as one page with no build step: every lock with its holders (who, where the lease
 * says), fence, time left, waiters in order; elections with their leader's value; hand-offs
 * as they happen; and the store's health. The page gets its data from Server-Sent Events;
 * however many pages are open, the store is listed once per `pollMs` (and not at all while
 * none is). It is read-only. Mount it anywhere: the page uses relative addresses, so at a
 * path prefix it must be reached with a trailing slash (`/locks/`). Names are user data: the
 * page only ever puts them in text nodes, under a Content-Security-Policy without inline
 * scripts. `source` may also be a function that opens the store: the page then shows the
 * store as unreachable, with why, until it opens (tried again at every listing). The handler keeps no process alive: its timer is unref'd, and `close()` ends its
 * streams.
 */
export function createDashboardHandler(source: LockStore | { readonly store: LockStore } | (() => Promise<LockStore>), options?: DashboardOptions): DashboardHandler {
  const store = typeof source === 'function' ? null : storeOf(source);
  const o = checkOptions<DashboardOptions>(options, 'options', OPTIONS);
  if (o.storeName !== undefined && typeof o.storeName !== 'string') throw new InvalidArgumentError('storeName', `Expected \`storeName\` to be a string, got ${typeof o.storeName}`);
  const pollMs = checkDuration(o.pollMs ?? 1000, 'pollMs');
  if (pollMs < 250) throw new InvalidArgumentError('pollMs', `Expected \`pollMs\` to be at least 250, got ${pollMs}`);
  const timeoutMs = checkDuration(o.timeoutMs ?? Math.min(store?.defaultTimeoutMs ?? 5000, 5000), 'timeoutMs');
  const maxLocks = checkDuration(o.maxLocks ?? 1000, 'maxLocks');
  const poller = new Poller(store ?? (source as () => Promise<LockStore>), o.storeName ?? 'store', pollMs, timeoutMs, maxLocks);
  if (o.admin !== undefined && typeof o.admin !== 'boolean') throw new InvalidArgumentError('admin', `Expected \`admin\` to be a boolean, got ${typeof o.admin}`);
  const adminToken = o.admin ? randomBytes(16).toString('hex') : null;
  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    try {
      if (req.method === 'POST' && lastSegment(req) === 'release') void forceRelease(req, res, poller, adminToken, timeoutMs);
      else route(req, res, poller);
    } catch {
      if (!res.headersSent) res.writeHead(500).end();
      else res.end();
    }
  }) as DashboardHandler;
  handler.close = () => poller.close();
  Object.defineProperty(handler, 'adminToken', { value: adminToken, enumerable: true });
  return handler;
}

function storeOf(source: unknown): LockStore {
  const candidate = source && typeof source === 'object' && 'store' in source && typeof (source as { mutex?: unknown }).mutex === 'function' ? (source as { store: unknown }).store : source;
  if (!candidate || typeof (candidate as LockStore).list !== 'function' || typeof (candidate as LockStore).grant !== 'function') {
    throw new InvalidArgumentError('source', 'Expected a baton instance or a baton store, such as createBaton(...) or createSqliteStore()');
  }
  return candidate as LockStore;
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

function lastSegment(req: IncomingMessage): string {
  const path = (req.url ?? '/').split('?')[0]!;
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The longest body a force-release takes: a kind and a name of at most 256 characters, as JSON. */
const MAX_BODY = 4096;

/**
 * forceRelease: `POST release` with `{ "kind", "name" }` as JSON. Refused (403) unless the
 * handler was made with `admin`, the request carries its token (`x-baton-token`), and it
 * comes from the page itself: an `Origin` equal to the address it was sent to (a form or a
 * script of another site cannot send both the token and a matching Origin, and JSON with
 * a custom header needs a CORS preflight, which is never granted).
 */
async function forceRelease(req: IncomingMessage, res: ServerResponse, poller: Poller, token: string | null, timeoutMs: number): Promise<void> {
  const answer = (status: number, body: unknown): void => {
    res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' }).end(`${JSON.stringify(body)}\n`);
  };
  const given = req.headers['x-baton-token'];
  const origin = req.headers.origin;
  const host = req.headers.host;
  const sameOrigin = typeof origin === 'string' && typeof host === 'string' && (origin === `http://${host}` || origin === `https://${host}`);
  if (token === null) return answer(403, { error: 'the dashboard is read-only (start it with --admin)' });
  if (typeof given !== 'string' || given.length !== token.length || !timingSafeEqual(Buffer.from(given), Buffer.from(token))) return answer(403, { error: 'a force-release needs the admin token' });
  if (!sameOrigin) return answer(403, { error: 'a force-release must come from the dashboard page itself (same origin)' });
  if (!String(req.headers['content-type']).startsWith('application/json')) return answer(415, { error: 'expected application/json' });
  let text = '';
  for await (const chunk of req) {
    text += String(chunk);
    if (text.length > MAX_BODY) return answer(413, { error: 'body too large' });
  }
  let kind: unknown;
  let name: unknown;
  try {
    ({ kind, name } = JSON.parse(text) as { kind?: unknown; name?: unknown });
  } catch {
    return answer(400, { error: 'expected JSON { "kind", "name" }' });
  }
  if (typeof name !== 'string' || !LOCK_KINDS.includes(kind as LockKind)) return answer(400, { error: 'expected JSON { "kind", "name" } with a lock kind and a name' });
  try {
    checkName(name);
  } catch (error) {
    return answer(400, { error: error instanceof Error ? error.message : String(error) });
  }
  try {
    const removed = await poller.forceRelease({ kind: kind as LockKind, name }, timeoutMs);
    answer(200, { removed });
  } catch (error) {
    answer(502, { error: error instanceof Error ? error.message : String(error) });
  }
}

function route(req: IncomingMessage, res: ServerResponse, poller: Poller): void {
  const last = lastSegment(req);
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { ...SECURITY_HEADERS, allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' }).end('read-only\n');
    return;
  }
  if (poller.closed) {
    res.writeHead(503, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('closed\n');
    return;
  }
  const send = (type: string, body: string): void => {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': type, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  };
  switch (last) {
    case '':
    case 'index.html':
      return send('text/html; charset=utf-8', PAGE_HTML);
    case 'app.js':
      return send('text/javascript; charset=utf-8', APP_JS);
    case 'app.css':
      return send('text/css; charset=utf-8', APP_CSS);
    case 'snapshot.json':
      void poller.current().then((snapshot) => send('application/json; charset=utf-8', JSON.stringify(snapshot)));
      return;
    case 'events':
      return poller.subscribe(req, res);
    default:
      res.writeHead(404, { ...SECURITY_HEADERS, 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
  }
}

/**
 * Poller lists the store for every open stream at once: once per `pollMs` while at least one
 * stream is open, sending a snapshot when it changed (and to each new stream at once).
 */
class Poller {
  /** The store, or null until the opener has opened it. */
  #store: LockStore | null;
  readonly #opener: (() => Promise<LockStore>) | null;
  #opening: Promise<LockStore> | null = null;
  readonly #pollMs: number;
  readonly #timeoutMs: number;
  readonly #maxLocks: number;
  readonly #clients = new Set<ServerResponse>();
  readonly #stop = new AbortController();
  #timer: NodeJS.Timeout | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #last: Snapshot | null = null;
  #listing: Promise<Snapshot> | null = null;
  #health: StoreHealth;
  closed = false;

  constructor(store: LockStore | (() => Promise<LockStore>), storeName: string, pollMs: number, timeoutMs: number, maxLocks: number) {
    this.#store = typeof store === 'function' ? null : store;
    this.#opener = typeof store === 'function' ? store : null;
    this.#pollMs = pollMs;
    this.#timeoutMs = timeoutMs;
    this.#maxLocks = maxLocks;
    this.#health = this.#store
      ? { name: this.#store.name, state: 'connecting', rttMs: null, error: null, lastOkAt: null, fencing: this.#store.guarantees.fencing, clock: this.#store.guarantees.clock }
      : { name: storeName, state: 'connecting', rttMs: null, error: null, lastOkAt: null, fencing: null, clock: null };
  }

  /** current: the last snapshot if it is fresh, else a new listing (shared by every caller meanwhile). */
  current(): Promise<Snapshot> {
    if (this.#last && Date.now() - this.#last.at < this.#pollMs) return Promise.resolve(this.#last);
    return this.#list();
  }

  subscribe(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write('retry: 1000\n\n');
    this.#clients.add(res);
    const drop = (): void => {
      this.#clients.delete(res);
      if (this.#clients.size === 0) this.#idle();
    };
    req.once('close', drop);
    res.once('close', drop);
    // A new page gets a snapshot at once: the last one if fresh, else a listing.
    void this.current().then((snapshot) => {
      if (this.#clients.has(res)) res.write(frame(snapshot));
    });
    this.#schedule();
    this.#heartbeat ??= setInterval(() => {
      for (const client of this.#clients) client.write(': keep-alive\n\n');
    }, HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.#stop.abort();
    this.#idle();
    for (const client of this.#clients) client.end();
    this.#clients.clear();
    // A store this handler opened is its own to close; one it was given is the caller's.
    if (this.#opener) {
      const store = this.#store ?? (await this.#opening?.catch(() => null));
      await store?.close().catch(() => undefined);
    }
  }

  /** forceRelease removes every holder of `key` (an admin action from the page), bounded like a listing. */
  async forceRelease(key: ResourceKey, timeoutMs: number): Promise<number> {
    if (this.closed) throw new Error('The dashboard is closed');
    const store = await this.#open();
    const removed = await bounded(storeCall(timeoutMs, this.#stop.signal), (c) => store.forceRelease(key, c), { store, verb: 'forceRelease' });
    // Every page sees the result at the next listing, which comes now rather than at the next poll.
    this.#last = null;
    return removed;
  }

  /** The store, opened now if an opener was given and it is not open yet (a failure is tried again at the next listing). */
  async #open(): Promise<LockStore> {
    if (this.#store) return this.#store;
    this.#opening ??= this.#opener!().finally(() => {
      this.#opening = null;
    });
    const store = await this.#opening;
    if (this.closed) {
      await store.close().catch(() => undefined);
      throw new Error('closed');
    }
    this.#store = store;
    this.#health = { ...this.#health, name: store.name, fencing: store.guarantees.fencing, clock: store.guarantees.clock };
    return store;
  }

  #idle(): void {
    if (this.#timer) clearTimeout(this.#timer);
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#timer = null;
    this.#heartbeat = null;
  }

  #schedule(): void {
    if (this.#timer || this.closed || this.#clients.size === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#list().then((snapshot) => {
        const text = frame(snapshot);
        for (const client of this.#clients) client.write(text);
        this.#schedule();
      });
    }, this.#pollMs);
    this.#timer.unref();
  }

  /** One listing of the store, shared by every caller while it runs; never rejects (a failure is the store's health). */
  #list(): Promise<Snapshot> {
    this.#listing ??= (async () => {
      const startedAt = monotonicNow();
      let states: ResourceState[] | null = null;
      let error: string | null = null;
      try {
        const store = await this.#open();
        states = await bounded(storeCall(this.#timeoutMs, this.#stop.signal), (c) => store.list(undefined, c), { store, verb: 'list' });
      } catch (e) {
        error = e instanceof Error ? e.message : String(e);
      }
      const at = Date.now();
      const rttMs = Math.round(monotonicNow() - startedAt);
      if (states) {
        this.#health = { ...this.#health, state: 'connected', rttMs, error: null, lastOkAt: at };
      } else {
        this.#health = { ...this.#health, state: 'unreachable', rttMs: null, error };
      }
      const all = states ? states.map((s) => this.#lock(s)).sort((a, b) => (a.kind === b.kind ? compare(a.name, b.name) : compare(a.kind, b.kind))) : (this.#last?.locks ?? []);
      const snapshot: Snapshot = { at, store: this.#health, locks: all.slice(0, this.#maxLocks), truncated: all.length > this.#maxLocks };
      this.#last = snapshot;
      return snapshot;
    })().finally(() => {
      this.#listing = null;
    });
    return this.#listing;
  }

  /** A store's report as the page shows it: tokens as strings, none where the store issues none; holder descriptions parsed. */
  #lock(state: ResourceState): SnapshotLock {
    const fencing = this.#store!.guarantees.fencing;
    return {
      name: state.key.name,
      kind: state.key.kind,
      fence: fencing ? String(state.fence) : null,
      holders: state.holders.map((h) => {
        const holder = state.key.kind === 'election' ? undefined : parseHolder(h.value);
        return {
          owner: h.owner,
          mode: h.mode,
          token: fencing ? String(h.token) : null,
          ttlMs: h.ttlMs,
          expiresInMs: h.expiresInMs,
          ...(h.value !== undefined && !holder ? { value: h.value } : {}),
          ...(holder ? { holder } : {}),
          ...(h.foreign ? { foreign: true as const } : {}),
        };
      }),
      waiters: [...state.waiters].sort((a, b) => a.position - b.position).map((w) => ({ owner: w.owner, mode: w.mode, position: w.position })),
    };
  }
}

/** One Server-Sent Events message carrying a snapshot. */
function frame(snapshot: Snapshot): string {
  return `event: snapshot\ndata: ${JSON.stringify(snapshot)}\n\n`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
