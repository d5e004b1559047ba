/**
 * One error hierarchy for baton. Every error has a stable `code` (match on it, not on
 * the message), a `name` equal to its class name, and keeps the original error as `cause`.
 */
import type { LockKind } from './store.js';

/** Stable codes of every error baton throws. */
export type BatonErrorCode =
  | 'LOCK_TIMEOUT'
  | 'NOT_HELD'
  | 'LEASE_LOST'
  | 'INVALID_ARGUMENT'
  | 'STORE_UNAVAILABLE'
  | 'UPGRADE_REFUSED'
  | 'UNSUPPORTED'
  | 'QUEUE_FULL'
  | 'CLOSED';

/** BatonError is the base class of every error baton throws on purpose. */
export class BatonError extends Error {
  readonly code: BatonErrorCode;

  constructor(code: BatonErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** LockTimeoutError: `acquire({ timeoutMs })` gave up waiting for a busy lock. */
export class LockTimeoutError extends BatonError {
  readonly lockName: string;
  readonly timeoutMs: number;

  constructor(lockName: string, timeoutMs: number, options?: { cause?: unknown }) {
    super('LOCK_TIMEOUT', `Timed out after ${timeoutMs} ms waiting for lock "${lockName}"`, options);
    this.lockName = lockName;
    this.timeoutMs = timeoutMs;
  }
}

/** LockNotHeldError: an operation needs a lease that this handle no longer holds (for example a second `release()`). */
export class LockNotHeldError extends BatonError {
  readonly lockName: string;

  constructor(lockName: string, message: string) {
    super('NOT_HELD', message);
    this.lockName = lockName;
  }
}

/**
 * Why a lease was lost.
 * - `expired`: its TTL ran out before a renewal succeeded (the process was paused, the store was
 *   slow or unreachable, or auto-renewal was off).
 * - `revoked`: the store no longer lists it although its TTL had not run out: an admin's
 *   `release --force`, or a store that lost its data.
 * - `closed`: the owning baton instance was closed while the lease was held.
 */
export type LeaseLostReason = 'expired' | 'revoked' | 'closed';

/** LeaseLostError is the `reason` of an aborted `lease.signal`, and what a late `release()` or `extend()` rejects with. */
export class LeaseLostError extends BatonError {
  readonly lockName: string;
  readonly reason: LeaseLostReason;
  readonly token: bigint | null;

  constructor(lockName: string, reason: LeaseLostReason, token: bigint | null, options?: { cause?: unknown }) {
    const why = {
      expired: 'its TTL ran out before it was renewed',
      revoked: 'the store no longer lists it (released by an admin, or the store lost its data)',
      closed: 'the baton instance was closed',
    }[reason];
    super('LEASE_LOST', `Lease on "${lockName}"${token === null ? '' : ` (token ${token})`} was lost: ${why}`, options);
    this.lockName = lockName;
    this.reason = reason;
    this.token = token;
  }
}

/** InvalidArgumentError: a name, duration, option or URL was rejected up front (or, for `PermitsMismatchError`, by the store); `argument` names which. */
export class InvalidArgumentError extends BatonError {
  readonly argument: string;

  constructor(argument: string, message: string) {
    super('INVALID_ARGUMENT', message);
    this.argument = argument;
  }
}

/**
 * PermitsMismatchError: a lock was asked with other permits than its current holders and
 * waiters use (`permitsInUse`), and nothing was granted or queued. A semaphore's permits are
 * one number its users agree on; they can change once every lease is released and no one
 * waits. An `InvalidArgumentError` (`argument` is `permits`) that the store found.
 */
export class PermitsMismatchError extends InvalidArgumentError {
  readonly lockName: string;
  /** The permits asked for. */
  readonly permits: number;
  /** The permits the lock's holders and waiters use. */
  readonly permitsInUse: number;

  constructor(lockName: string, kind: LockKind, permits: number, permitsInUse: number) {
    super(
      'permits',
      `The ${kind} "${lockName}" was asked with ${plural(permits, 'permit')}, but its current holders and waiters use ${permitsInUse}: ` +
        'every user of a lock must pass the same permits (they can change once no one holds it or waits)',
    );
    this.lockName = lockName;
    this.permits = permits;
    this.permitsInUse = permitsInUse;
  }
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** StoreUnavailableError: the store could not answer (connection refused, database locked for too long, driver missing). */
export class StoreUnavailableError extends BatonError {
  readonly store: string;

  constructor(store: string, message: string, options?: { cause?: unknown }) {
    super('STORE_UNAVAILABLE', message, options);
    this.store = store;
  }
}

/** QuorumAnswer: what one node of a quorum answered to one call. */
export interface QuorumAnswer {
  /** Index of the node in the list given to `quorum()`. */
  readonly node: number;
  /** The node store's name, such as `redis`. */
  readonly store: string;
  /** `granted`, `busy`, `mismatch` (another limit in use), `extended`, `lost`, `released`, `absent`, `error` or `timeout`. */
  readonly answer: string;
  /** Time from the call to this answer (or to the give-up, for a timeout). */
  readonly ms: number;
  /** The node's error, for `error` and `timeout`. */
  readonly error?: unknown;
}

/**
 * QuorumError: a quorum store (Redlock) could not get a majority of its nodes to agree in
 * time: too few answered, or the majority came too late for the lease's validity. `answers`
 * holds each node's answer. A grant that fails this way has been rolled back on every node.
 */
export class QuorumError extends StoreUnavailableError {
  readonly operation: string;
  /** Nodes that had to agree. */
  readonly needed: number;
  readonly answers: readonly QuorumAnswer[];

  constructor(operation: string, needed: number, answers: readonly QuorumAnswer[], why: string) {
    const summary = answers.map((a) => `#${a.node} ${a.answer}${a.error instanceof Error ? ` (${a.error.message})` : ''}`).join(', ');
    super('quorum', `Quorum ${operation} failed: ${why}; needed ${needed} of ${answers.length} nodes [${summary}]`, {
      cause: answers.find((a) => a.error !== undefined)?.error,
    });
    this.operation = operation;
    this.needed = needed;
    this.answers = answers;
  }
}

/**
 * LockUpgradeError: a read-write lock handle that holds a read lease asked for the write
 * lock. The writer would queue behind its own reader and wait for itself (Apache Curator's
 * read-write lock hangs forever there), so it is refused at once, with nothing queued; the
 * read lease stays held. Release the read lease first, or take the write lock from the start
 * and `downgrade` it.
 */
export class LockUpgradeError extends BatonError {
  readonly lockName: string;

  constructor(lockName: string) {
    super('UPGRADE_REFUSED', `The read-write lock "${lockName}" cannot be upgraded: this handle holds a read lease, and its write lock would wait for that reader forever. Release the read lease first, or take the write lock and downgrade it`);
    this.lockName = lockName;
  }
}

/** UnsupportedError: the store cannot do what was asked (`store` names it); nothing was changed. */
export class UnsupportedError extends BatonError {
  readonly store: string;
  readonly operation: string;

  constructor(store: string, operation: string, why: string) {
    super('UNSUPPORTED', `The ${store} store cannot ${operation}: ${why}`);
    this.store = store;
    this.operation = operation;
  }
}

/**
 * QueueFullError: a lock already has as many holders and waiters as its store keeps for one
 * lock (`maxEntries`: the DynamoDB store keeps them all in one item, whose size is bounded),
 * and a newcomer was neither granted nor queued. Ask again later, or raise the store's cap.
 */
export class QueueFullError extends BatonError {
  readonly lockName: string;
  /** The most holders and waiters the store keeps for one lock. */
  readonly maxEntries: number;

  constructor(lockName: string, kind: LockKind, maxEntries: number) {
    super('QUEUE_FULL', `The ${kind} "${lockName}" already has ${maxEntries} holders and waiters, the most its store keeps for one lock (maxEntries): nothing was granted or queued`);
    this.lockName = lockName;
    this.maxEntries = maxEntries;
  }
}

/** ClosedError: the baton instance or store was used after `close()`. */
export class ClosedError extends BatonError {
  constructor(what: string) {
    super('CLOSED', `${what} is closed`);
  }
}

/** isBatonError tells a baton error from any other, across duplicated package copies too. */
export function isBatonError(error: unknown): error is BatonError {
  return error instanceof BatonError || (error instanceof Error && typeof (error as { code?: unknown }).code === 'string' && error.name.endsWith('Error') && 'code' in error && BATON_CODES.has((error as BatonError).code));
}

const BATON_CODES = new Set<string>(['LOCK_TIMEOUT', 'NOT_HELD', 'LEASE_LOST', 'INVALID_ARGUMENT', 'STORE_UNAVAILABLE', 'UPGRADE_REFUSED', 'UNSUPPORTED', 'QUEUE_FULL', 'CLOSED']);
