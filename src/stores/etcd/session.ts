/**
 * The session: one etcd lease per store, which every key the store puts is attached to. It is
 * the only thing kept alive while entries are held: one keep-alive every third of its TTL,
 * whatever the number of entries, as etcd's own `concurrency.Session` does. Its loss (etcd
 * answers a keep-alive with TTL 0, or no keep-alive got through before its validity ran out
 * locally) ends every entry on it at once.
 *
 * Nothing here knows about locks: a store asks `ensure()` for the live session, attaches its
 * keys to it, and is told through `SessionHooks` when the session is renewed or lost. The
 * ZooKeeper store keeps the same shape around its client's session (zookeeper/session.ts),
 * with the same validity (`sessionValidUntil`).
 */
import { monotonicNow } from '../../core/clock.js';
import { ClosedError } from '../../errors.js';
import type { StoreCall } from '../../store.js';
import { sessionValidUntil } from '../session-validity.js';
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
  /** Ends each keep-alive still waiting for its answer. */
  readonly attempts: Set<() => void>;
  /** Steering calls are in flight (see `SessionKeeper.#steer`). */
  steering: boolean;
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
  return sessionValidUntil(session.validFrom, session.ttlMs);
}

/**
 * KeepAliveEvent: one renewal of a session lease, as the store sends it and as etcd answers
 * it (see `EtcdStore.onKeepAlive`). etcd ends the session no earlier than the TTL after the
 * last keep-alive `sent` (answered or not), and no later than the TTL after it received the
 * last one it answered, plus its revoke period.
 */
export interface KeepAliveEvent {
  /** The session lease's ID, in hex. */
  readonly lease: string;
  /** `grant`: the session was granted; `sent`: a keep-alive is being sent; `renewed`: etcd answered it; `failed`: it got no answer in time, or an error. */
  readonly state: 'grant' | 'sent' | 'renewed' | 'failed';
  /** When the grant or keep-alive was sent, on the host's monotonic clock (`monotonicNow()`). */
  readonly sentAt: number;
  /** The session's TTL, as etcd granted it. */
  readonly ttlMs: number;
}

/**
 * How many unary calls a failed keep-alive makes to steer etcd3 off the member that failed
 * it: etcd3's default circuit breaker cuts a member off after 3 failed calls in a row.
 */
const STEER_CALLS = 3;

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
  readonly #listeners = new Set<(event: KeepAliveEvent) => void>();
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
        attempts: new Set(),
        steering: false,
        names: new Set(),
      };
      if (this.#closed) {
        await this.#client.leaseClient.leaseRevoke({ ID: session.id }).catch(() => undefined);
        throw new ClosedError('This etcd store');
      }
      this.#current = session;
      this.#emit({ lease: session.hex, state: 'grant', sentAt, ttlMs: session.ttlMs });
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

  /** onKeepAlive calls `listener` with every grant and keep-alive of the session (see `KeepAliveEvent`), until the returned function is called. */
  onKeepAlive(listener: (event: KeepAliveEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }

  #emit(event: KeepAliveEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // A listener's error is its own: the keep-alive goes on.
      }
    }
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
    for (const end of [...session.attempts]) end();
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

  /** Sets when the next keep-alive is sent: every third of the session TTL, as etcd's own clients do; sooner after a failure. */
  #schedule(session: Session, delayMs: number): void {
    if (session.lost || this.#closed) return;
    if (session.timer) clearTimeout(session.timer);
    session.timer = setTimeout(() => {
      session.timer = null;
      this.#keepAlive(session);
    }, delayMs);
    session.timer.unref();
  }

  /**
   * Sends one keep-alive. It waits for its answer until the session's validity ends (a late
   * answer still renews the session from its send time), but does not hold up the next one:
   * without an answer within a quarter of the TTL, another is sent (on another member, if
   * this one hangs; etcd3 picks one per stream); after a failure, another is sent 200 ms
   * later (a tenth of the TTL, at most 250 ms), once etcd3 has been steered off the member
   * that failed it.
   */
  #keepAlive(session: Session): void {
    const sentAt = monotonicNow();
    this.#emit({ lease: session.hex, state: 'sent', sentAt, ttlMs: session.ttlMs });
    this.#schedule(session, session.ttlMs / 4);
    this.#keepAliveStream(session, sentAt, validUntil(session) - sentAt).then(
      () => {
        if (session.lost) return;
        this.#emit({ lease: session.hex, state: 'renewed', sentAt, ttlMs: session.ttlMs });
        this.#armExpiry(session);
        this.#hooks.renewed(session);
        this.#schedule(session, Math.max(0, sentAt + session.ttlMs / 3 - monotonicNow()));
      },
      () => {
        if (session.lost) return;
        this.#emit({ lease: session.hex, state: 'failed', sentAt, ttlMs: session.ttlMs });
        this.#steer(session);
        // Unless a keep-alive sent since got its answer.
        if (session.validFrom < sentAt) this.#schedule(session, Math.min(250, session.ttlMs / 10));
      },
    );
  }

  /**
   * Steers etcd3 away from a member that failed a keep-alive. etcd3 opens each stream (a
   * keep-alive, a watch) on a member it picks, and counts the opening as a success for that
   * member's circuit breaker: the stream's failure comes later and is not counted (etcd3
   * counts it only while the stream is still writable, and gRPC has closed it by then). So
   * after a member dies, each keep-alive attempt resets its count of failures, and etcd3 may
   * go on picking it (always, when it tries its hosts in order). Unary calls do count, so
   * `STEER_CALLS` of them at once open the dead member's breaker (3 failures in a row by
   * default), and etcd3 sends the next calls and streams to the others for 5 s. The calls
   * ask for the session's TTL, so a session that etcd no longer knows is found lost.
   *
   * They are not awaited, and have a whole session TTL to answer: etcd3 tries each call
   * again on the next member, and while a new leader is being elected a live member holds
   * it until there is one; a shorter deadline would count that wait as that member's
   * failure, and with etcd3's deadline being one for all the tries, the tries after it as
   * failures of the others, cutting off every member (seen on the leader's SIGKILL under
   * load). One set at a time.
   */
  #steer(session: Session): void {
    if (session.steering) return;
    session.steering = true;
    const deadline = new Date(Date.now() + session.ttlMs);
    const calls = Array.from({ length: STEER_CALLS }, () => this.#client.leaseClient.leaseTimeToLive({ ID: session.id }, { deadline }));
    void Promise.allSettled(calls).then((replies) => {
      session.steering = false;
      if (replies.some((reply) => (reply.status === 'fulfilled' ? Number(reply.value.TTL) < 0 : isLeaseNotFound(reply.reason)))) this.lose(session);
    });
  }

  async #keepAliveStream(session: Session, sentAt: number, timeoutMs: number): Promise<void> {
    const stream = await this.#client.leaseClient.leaseKeepAlive();
    let timer: NodeJS.Timeout | undefined;
    let end: (() => void) | undefined;
    try {
      const reply = await new Promise<{ TTL: string }>((resolve, reject) => {
        stream.on('data', resolve);
        stream.on('error', reject);
        end = () => reject(new Error('the session ended'));
        session.attempts.add(end);
        timer = setTimeout(() => reject(new Error(`no keep-alive reply within ${Math.round(timeoutMs)} ms`)), Math.max(0, timeoutMs));
        timer.unref();
        stream.write({ ID: session.id });
      });
      if (Number(reply.TTL) <= 0) {
        this.lose(session);
        return;
      }
      if (sentAt > session.validFrom) session.validFrom = sentAt;
    } finally {
      clearTimeout(timer);
      if (end) session.attempts.delete(end);
      stream.on('error', () => undefined);
      // Cancelled, not ended: a stalled member never ends a stream, and a stream still open
      // keeps the process alive after close().
      stream.cancel();
    }
  }
}
