import type { EventEmitter } from 'node:events';
import { InvalidArgumentError, StoreUnavailableError } from '../errors.js';
import type { BatonEvents, Logger } from './options.js';

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** checkLogger: a logger with the four methods baton calls, or undefined. */
export function checkLogger(logger: unknown): Logger | undefined {
  if (logger === undefined) return undefined;
  const missing = typeof logger === 'object' && logger !== null ? LEVELS.filter((level) => typeof (logger as Record<string, unknown>)[level] !== 'function') : LEVELS;
  if (missing.length > 0) {
    throw new InvalidArgumentError('logger', `Expected \`logger\` to be a logger with debug, info, warn and error methods (pino, or console-like with (fields, message)), missing ${missing.join(', ')}`);
  }
  return logger as Logger;
}

/**
 * attachLogger logs what an operator must hear about from a baton instance, never a normal
 * acquire or release:
 * - warn `lease lost`: a lease lost other than by `close()` (expired, revoked);
 * - warn `lease renewal failed`: an automatic renewal failed (retried until the deadline);
 * - error `store unreachable`: a store call failed for want of an answer, once until one succeeds;
 *   then info `store reachable again` with how long it was out;
 * - warn `slow store call`: a call that took longer than `slowCallMs`.
 * Fields are plain JSON values (tokens as strings), errors under `err` as pino expects. A
 * logger that throws is ignored (its error never reaches baton).
 */
export function attachLogger(baton: EventEmitter<BatonEvents>, logger: Logger, slowCallMs: number): void {
  const log = (level: (typeof LEVELS)[number], fields: Record<string, unknown>, message: string): void => {
    try {
      logger[level]({ component: 'baton', ...fields }, message);
    } catch {
      // A logger's failure is not baton's.
    }
  };
  let unreachableSince: number | null = null;
  baton.on('lost', (e) => {
    if (e.reason === 'closed') return;
    log('warn', { lock: e.name, kind: e.kind, owner: e.owner, token: tokenText(e.token), reason: e.reason, holdMs: Math.round(e.holdMs), ...causeOf(e.error) }, `baton: lease on "${e.name}" lost (${e.reason})`);
  });
  baton.on('renewFailed', (e) => {
    log('warn', { lock: e.name, kind: e.kind, owner: e.owner, token: tokenText(e.token), remainingMs: e.remainingMs, err: e.error }, `baton: renewal of the lease on "${e.name}" failed, ${e.remainingMs} ms left`);
  });
  baton.on('call', (e) => {
    const durationMs = Math.round(e.durationMs);
    if (e.error instanceof StoreUnavailableError) {
      if (unreachableSince === null) {
        unreachableSince = Date.now();
        log('error', { store: e.store, verb: e.verb, durationMs, err: e.error }, `baton: the ${e.store} store is unreachable`);
      }
    } else if (e.error === undefined && unreachableSince !== null) {
      log('info', { store: e.store, verb: e.verb, downMs: Date.now() - unreachableSince }, `baton: the ${e.store} store is reachable again`);
      unreachableSince = null;
    }
    if (durationMs > slowCallMs) {
      log('warn', { store: e.store, verb: e.verb, durationMs, slowCallMs, ...(e.error === undefined ? {} : { err: e.error }) }, `baton: slow ${e.store} store call: ${e.verb} took ${durationMs} ms`);
    }
  });
}

function tokenText(token: bigint | null): string | null {
  return token === null ? null : String(token);
}

/** The error behind a lost lease (a failed renewal's), when there is one. */
function causeOf(error: Error): { err?: unknown } {
  return error.cause === undefined ? {} : { err: error.cause };
}
