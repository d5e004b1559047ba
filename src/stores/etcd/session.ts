/**
 * The session: one etcd lease per store, which every key the store puts is attached to. It is
 * the only thing kept alive while entries are held: one keep-alive every third of its TTL,
 * whatever the number of entries, as etcd's own `concurrency.Session` does. Its loss (etcd
 * answers a keep-alive with TTL 0, or no keep-alive got through before its validity ran out
 * locally) ends every entry on it at once.
 *
 * Nothing here knows about locks: a store asks `ensure()` for the live session, attaches its
 * keys to it, and is told through `SessionHooks` when the session is renewed or lost. A
 * ZooKeeper store would keep the same shape around its session instead of a lease.
 */
import { monotonicNow } from '../../core/clock.js';
import { ClosedError } from '../../errors.js';
import type { StoreCall } from '../../store.js';
import { grpcDeadline, isLeaseNotFound, type EtcdClient } from './client.js';

/** Session: one granted session lease and what is known locally of it. */
export interface Session {
  /** Lease ID, decimal (as etcd3 gives it) and hex (as etcd's concurrency package writes it in keys). */
  readonly id: string;
  readonly hex: string;
  /** The TTL etcd granted. */
  readonly ttlMs: number;
  /** Local instant the last successful keep-alive (or the grant) was sent: etcd's expiry is no earlier than this + ttlMs. */
  validFrom: number;
  lost: boolean;
  /** The next keep-alive. */
  timer: NodeJS.Timeout | null;
  /** Fires when the session's validity runs out without a keep-alive: every entry on it is lost. */
  expiry: NodeJS.Timeout | null;
  /** Key names this session has put and not yet seen deleted: a name is used again only once its key is surely gone. */
  readonly names: Set<string>;
}

/** SessionHooks: what a session reports to its store. */
export interface SessionHooks {
  /** A keep-alive was answered: the session lasts on etcd at least until `validUntil(session)`. */
  renewed(session: Session): void;
  /** The session ended (it ran out, or etcd no longer knows it): every key on it is gone, or going. */
  lost(session: Session): void;
}

/** validUntil: until when a session surely lasts on etcd: the last keep-alive's send time plus its TTL, less 1% for drift. */
export function validUntil(session: Session): number {
  return session.validFrom + session.ttlMs - Math.max(1, Math.floor(session.ttlMs * 0.01));
}

/** A keep-alive reply that does not arrive in this share of the session TTL is treated as failed. */
const KEEPALIVE_TIMEOUT_SHARE = 0.5;

/**
 * SessionKeeper grants the session on first need (and again after one was lost), keeps it
 * alive in the background, and declares it lost locally when its validity runs out.
 */
export class SessionKeeper {
  readonly #client: Pick<EtcdClient, 'leaseClient'>;
  readonly #seconds: number;
  readonly #hooks: SessionHooks;
  /** Bound of a revoke made in the background (of a session that ran out locally). */
  readonly #revokeTimeoutMs: number;
  /** The live session, or its grant in flight. */
  #pending: Promise<Session> | null = null;
  /** The session granted last, read without waiting (for `deadline`). */
  #current: Session | null = null;
  #closed = false;

  constructor(client: Pick<EtcdClient, 'leaseClient'>, ttlSeconds: number, hooks: SessionHooks, revokeTimeoutMs: number) {
    this.#client = client;
    this.#seconds = ttlSeconds;
    this.#hooks = hooks;
    this.#revokeTimeoutMs = revokeTimeoutMs;
  }

  /** ensure: the live session, granted on first need (and again after one was lost). */
  ensure(): Promise<Session> {
    if (this.#closed) return Promise.reject(new ClosedError('This etcd store'));
    const current = this.#pending;
    if (current) return current;
    const granting = (async () => {
      const sentAt = monotonicNow();
      const reply = await this.#client.leaseClient.leaseGrant({ TTL: this.#seconds });
      const session: Session = {
        id: String(reply.ID),
        hex: BigInt(reply.ID).toString(16),
        ttlMs: Number(reply.TTL) * 1000,
        validFrom: sentAt,
        lost: false,
        timer: null,
        expiry: null,
        names: new Set(),
      };
      if (this.#closed) {
        await this.#client.leaseClient.leaseRevoke({ ID: session.id }).catch(() => undefined);
        throw new ClosedError('This etcd store');
      }
      this.#current = session;
      this.#armExpiry(session);
      this.#schedule(session, session.ttlMs / 3);
      return session;
    })();
    this.#pending = granting;
    granting.catch(() => {
      if (this.#pending === granting) this.#pending = null;
    });
    return granting;
  }

  /**
   * deadline: until when the session granted last surely lasts on etcd (`validUntil`);
   * Infinity before the first grant. Past it, every entry of the store is lost.
   */
  deadline(): number {
    const session = this.#current;
    return session ? validUntil(session) : Infinity;
  }

  /** lose ends a session that ran out on etcd (or that etcd no longer knows): its keys are gone; the next `ensure` grants a new one. */
  lose(session: Session): void {
    if (session.lost) return;
    this.#stop(session);
    if (this.#current === session) this.#pending = null;
    this.#hooks.lost(session);
  }

  /**
   * close stops the keep-alive and revokes the session lease, which deletes every key on it
   * in one step, within `bound`: if etcd does not answer by then, the keys go when the
   * session expires. A grant that completes later revokes itself.
   */
  async close(bound: StoreCall): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    let timer: NodeJS.Timeout | undefined;
    const giveUp = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), Math.max(0, bound.deadline - monotonicNow()));
      timer.unref();
      bound.signal.addEventListener('abort', () => resolve(null), { once: true });
    });
    try {
      const session = await Promise.race([this.#pending?.catch(() => null) ?? null, giveUp]);
      if (session) {
        this.#stop(session);
        await Promise.race([this.#client.leaseClient.leaseRevoke({ ID: session.id }, grpcDeadline(bound)).catch(() => undefined), giveUp]);
      }
    } finally {
      clearTimeout(timer);
    }
  }

  /** Stops a session's keep-alive and local expiry; its keys go with its lease. */
  #stop(session: Session): void {
    session.lost = true;
    if (session.timer) clearTimeout(session.timer);
    if (session.expiry) clearTimeout(session.expiry);
    session.timer = null;
    session.expiry = null;
  }

  /** Arms the local end of a session's validity: if no keep-alive moves it, every entry on it is lost then. */
  #armExpiry(session: Session): void {
    if (session.lost) return;
    if (session.expiry) clearTimeout(session.expiry);
    session.expiry = setTimeout(() => {
      session.expiry = null;
      if (session.lost || this.#closed) return;
      // etcd may still keep the lease a little longer (our keep-alives did not reach it, or came
      // too late); its keys must go all the same, since their holders are told they are lost.
      this.lose(session);
      this.#client.leaseClient.leaseRevoke({ ID: session.id }, { deadline: new Date(Date.now() + this.#revokeTimeoutMs) }).catch(() => undefined);
    }, Math.max(0, validUntil(session) - monotonicNow()));
    session.expiry.unref();
  }

  /** The background keep-alive: every third of the session TTL, as etcd's own clients do; sooner after a failure. */
  #schedule(session: Session, delayMs: number): void {
    if (session.lost || this.#closed) return;
    session.timer = setTimeout(() => {
      session.timer = null;
      this.#keepAlive(session).then(
        () => {
          if (session.lost) return;
          this.#armExpiry(session);
          this.#hooks.renewed(session);
          this.#schedule(session, session.ttlMs / 3);
        },
        () => this.#schedule(session, Math.min(250, session.ttlMs / 10)),
      );
    }, delayMs);
    session.timer.unref();
  }

  /** One keep-alive; on failure, steers etcd3 off the member that failed it. */
  async #keepAlive(session: Session): Promise<void> {
    const sentAt = monotonicNow();
    try {
      await this.#keepAliveStream(session, sentAt);
    } catch (error) {
      await this.#steer(session);
      throw error;
    }
  }

  /**
   * Steers etcd3 away from a member that stopped answering. etcd3 opens each stream (a
   * keep-alive, a watch) on a member it picks, and a stream that fails does not count against
   * that member, so after a member dies etcd3 may go on picking it (always, when it tries its
   * hosts in order). A unary call does count: its failures on the dead member open that
   * member's circuit breaker, and etcd3 sends the next calls and streams to the others. The
   * call asks for the session's TTL, so a session that etcd no longer knows is found lost.
   */
  async #steer(session: Session): Promise<void> {
    const timeoutMs = Math.round(session.ttlMs * KEEPALIVE_TIMEOUT_SHARE);
    try {
      const reply = await this.#client.leaseClient.leaseTimeToLive({ ID: session.id }, { deadline: Date.now() + timeoutMs });
      if (Number(reply.TTL) < 0) this.lose(session);
    } catch (error) {
      if (isLeaseNotFound(error)) this.lose(session);
    }
  }

  async #keepAliveStream(session: Session, sentAt: number): Promise<void> {
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    try {
      const reply = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        timer = setTimeout(() => reject(new Error(`no keep-alive reply within ${Math.round(session.ttlMs * KEEPALIVE_TIMEOUT_SHARE)} ms`)), session.ttlMs * KEEPALIVE_TIMEOUT_SHARE);
        stream.write({ ID: session.id });
      });
      if (Number(reply.TTL) <= 0) {
        this.lose(session);
        return;
      }
      if (sentAt > session.validFrom) session.validFrom = sentAt;
    } finally {
      clearTimeout(timer);
      stream.on('error', () => undefined);
      stream.end();
    }
  }
}
