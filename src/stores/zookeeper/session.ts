/**
 * The session: the client's ZooKeeper session, which every znode the store creates is tied to
 * (ephemeral), and what the store knows of it from its own clock. The driver learns that a
 * session expired only once it reconnects (seconds after the server deleted its znodes), so
 * the store never waits for it: a session surely lasts until the send time of the last
 * request the server answered plus the negotiated timeout (`sessionValidUntil`), and is lost
 * locally from then on. While the store has entries it asks the server something every third
 * of the timeout (`exists /`), so that the validity moves on; while the client is
 * disconnected nothing is answered and the validity stands still.
 *
 * An epoch (`Session`) ends when its validity runs out, when the driver reports the session
 * expired, or when answers come from another session (a new client): every entry made in it
 * is lost at once. The next answer starts a new epoch, on the same ZooKeeper session if the
 * server still knew it (then the store deletes the znodes of the lost entries), or on a new one.
 * Nothing here knows about locks, as with the etcd store's session (etcd/session.ts).
 */
import { monotonicNow, } from '../../core/clock.js';
import { NEVER } from '../../core/call.js';
import { sessionValidUntil } from '../session-validity.js';
import { bounded, State, type ZooKeeperClient } from './client.js';

/** Session: one epoch of the client's ZooKeeper session, as the store sees it. */
export interface Session {
  /** The ZooKeeper session ID, in hex. */
  readonly id: string;
  /** The negotiated session timeout. */
  readonly ttlMs: number;
  /** Send time of the last request answered in this epoch. */
  validFrom: number;
  lost: boolean;
  /** Fires when the validity runs out without an answer. */
  expiry: NodeJS.Timeout | null;
}

export interface SessionHooks {
  /** An epoch began: the first answer since the store started or since the last epoch was lost. */
  started(session: Session): void;
  /** The epoch ended: every entry made in it is lost. */
  lost(session: Session): void;
  /** Whether the store has entries to keep alive. */
  busy(): boolean;
}

export function validUntil(session: Session): number {
  return sessionValidUntil(session.validFrom, session.ttlMs);
}

/** SessionTracker follows the client's session from the answers to the store's requests. */
export class SessionTracker {
  readonly #client: ZooKeeperClient;
  readonly #hooks: SessionHooks;
  #current: Session | null = null;
  /** The last epoch, live or lost: its validity is `deadline()`. */
  #last: Session | null = null;
  #keepAlive: NodeJS.Timeout | null = null;
  #pinging = false;
  #closed = false;
  readonly #onState = (state: { readonly code: number }): void => {
    if (state.code === State.EXPIRED || state.code === State.AUTH_FAILED) {
      if (this.#current) this.lose(this.#current);
    } else if (state.code === State.SYNC_CONNECTED && this.#hooks.busy()) {
      // Reconnected: ask at once rather than at the next third of the timeout.
      this.#ping();
    }
  };

  constructor(client: ZooKeeperClient, hooks: SessionHooks) {
    this.#client = client;
    this.#hooks = hooks;
    client.on('state', this.#onState);
  }

  /** answered: `onAnswer` of every request of the store (`bounded`). */
  readonly answered = (sentAt: number, answered: boolean): void => {
    if (!answered || this.#closed) return;
    const id = this.#client.getSessionId().toString('hex');
    let session = this.#current;
    if (session && session.id !== id) {
      this.lose(session);
      session = null;
    }
    if (!session) {
      session = { id, ttlMs: this.#client.getSessionTimeout(), validFrom: sentAt, lost: false, expiry: null };
      this.#current = session;
      this.#last = session;
      this.#arm(session);
      this.#hooks.started(session);
      this.schedule();
      return;
    }
    if (sentAt > session.validFrom) {
      session.validFrom = sentAt;
      this.#arm(session);
    }
  };

  /** current: the live epoch (the one the last answer came in), or null before any answer and after a loss. */
  current(): Session | null {
    const session = this.#current;
    if (session && monotonicNow() >= validUntil(session)) {
      this.lose(session);
      return null;
    }
    return session;
  }

  /** deadline: until when the last epoch surely lasts (past, once lost); Infinity before the first answer. */
  deadline(): number {
    return this.#last ? (this.#last.lost ? Math.min(validUntil(this.#last), monotonicNow()) : validUntil(this.#last)) : Infinity;
  }

  /** lose ends an epoch: every entry made in it is lost. */
  lose(session: Session): void {
    if (session.lost) return;
    session.lost = true;
    if (session.expiry) clearTimeout(session.expiry);
    session.expiry = null;
    if (this.#current === session) this.#current = null;
    this.#hooks.lost(session);
  }

  /** schedule: keeps the session's validity moving while the store has entries: one request every third of the timeout. */
  schedule(): void {
    if (this.#keepAlive || this.#closed || !this.#hooks.busy()) return;
    const session = this.#current;
    const delay = session ? Math.max(0, session.validFrom + session.ttlMs / 3 - monotonicNow()) : 100;
    this.#keepAlive = setTimeout(() => {
      this.#keepAlive = null;
      this.#ping();
    }, delay);
    this.#keepAlive.unref();
  }

  /** One `exists /` at a time, bounded by the session's validity (the driver queues it while it reconnects). */
  #ping(): void {
    if (this.#pinging || this.#closed) return;
    this.#pinging = true;
    const session = this.#current;
    const deadline = session ? validUntil(session) : monotonicNow() + this.#client.getSessionTimeout();
    bounded((cb) => this.#client.exists('/', undefined, cb), { signal: NEVER, deadline: Math.max(deadline, monotonicNow() + 100) }, this.answered, 'a keep-alive').catch(() => undefined).finally(() => {
      this.#pinging = false;
      this.schedule();
    });
  }

  #arm(session: Session): void {
    if (session.expiry) clearTimeout(session.expiry);
    session.expiry = setTimeout(() => {
      session.expiry = null;
      this.lose(session);
    }, Math.max(0, validUntil(session) - monotonicNow()));
    session.expiry.unref();
  }

  close(): void {
    this.#closed = true;
    this.#client.removeListener('state', this.#onState);
    if (this.#keepAlive) clearTimeout(this.#keepAlive);
    this.#keepAlive = null;
    const session = this.#current;
    if (session?.expiry) clearTimeout(session.expiry);
  }
}
