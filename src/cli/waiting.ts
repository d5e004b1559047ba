/**
 * What `baton run` says while it waits for a lock: after a second, one line on stderr with
 * its place in the queue and who holds the lock, updated at most once a second. On a
 * terminal the line is rewritten in place and cleared once the wait ends; elsewhere
 * (`--verbose`) a new line is written when what it says changes. Silent otherwise: a cron
 * job's log gets nothing from a wait.
 */
import type { Baton, LockKind } from '../index.js';
import { heldBy, quote } from './format.js';
import type { Io } from './io.js';

/** How long a wait goes unreported, and how often the report is renewed, in ms. */
export const REPORT_AFTER_MS = 1000;

export interface WaitReport {
  /** stop ends the reports (the wait is over) and clears the line on a terminal. */
  stop(): void;
}

/** reportWaiting starts the reports of a wait for `name` that starts now; `verbose` reports also when stderr is not a terminal. */
export function reportWaiting(baton: Baton<bigint | null>, name: string, kind: LockKind, io: Io, verbose: boolean): WaitReport {
  const terminal = io.errIsTerminal === true && typeof io.status === 'function';
  if (!terminal && !verbose) return { stop: () => undefined };
  const startedAt = Date.now();
  let owner: string | undefined;
  let last = '';
  let inFlight = false;
  let stopped = false;
  const onContended = (event: { name: string; kind: LockKind; owner: string }): void => {
    if (event.name === name && event.kind === kind) owner ??= event.owner;
  };
  baton.on('contended', onContended);
  const tick = async (): Promise<void> => {
    if (inFlight || stopped) return;
    inFlight = true;
    try {
      const info = await baton.inspect(name, kind, { timeoutMs: REPORT_AFTER_MS });
      if (stopped) return;
      const waited = Math.round((Date.now() - startedAt) / 1000);
      const index = owner === undefined ? -1 : info.waiters.findIndex((w) => w.owner === owner);
      const place = index >= 0 ? `, position ${index + 1} of ${info.waiters.length} in the queue` : '';
      const holders = info.holders.length === 0 ? 'free, being handed on' : `held by ${info.holders.map(heldBy).join(', ')}`;
      const line = `baton: waiting for ${kind} ${quote(name)}${place}; ${holders}`;
      if (terminal) io.status!(`${line} (${waited}s)`);
      else if (line !== last) io.err(`${line} (${waited}s)`);
      last = line;
    } catch {
      // A report that cannot be made (the store slow to answer) is skipped; the wait goes on.
    } finally {
      inFlight = false;
    }
  };
  const timer = setInterval(() => void tick(), REPORT_AFTER_MS);
  timer.unref();
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(timer);
      baton.off('contended', onContended);
      if (terminal && last !== '') io.status!('');
    },
  };
}
