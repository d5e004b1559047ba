/**
 * The CLI's exit codes, in one place so that `--help`, the code and the tests agree. They
 * follow sysexits.h where one fits (64 usage, 69 unavailable, 70 software, 75 temporary
 * failure) and the shell's conventions for a command that cannot run (126, 127, 128+N).
 */
import { constants } from 'node:os';
import { isBatonError } from '../index.js';

export const EXIT = Object.freeze({
  ok: 0,
  /** Bad flags, a missing `--`, a bad duration, name or store URL; `--permits` other than the lock's holders and waiters use. */
  usage: 64,
  /** The store could not be opened or reached. */
  unavailable: 69,
  /** Anything unexpected: a bug in baton or in its environment. */
  internal: 70,
  /** The lock is busy (`--no-wait`) or `--wait` ran out. */
  busy: 75,
  /** The lease was lost while the command ran. */
  lost: 76,
  /** The command exists but could not be run (not executable). */
  cannotRun: 126,
  /** The command was not found. */
  notFound: 127,
});

/** signalExitCode: the shell's code for a process killed by `signal`, 128 + its number. */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** exitCodeFor maps an error that reached the top of the CLI to its exit code. */
export function exitCodeFor(error: unknown): number {
  if (!isBatonError(error)) return EXIT.internal;
  switch (error.code) {
    case 'INVALID_ARGUMENT':
      return EXIT.usage;
    case 'STORE_UNAVAILABLE':
      return EXIT.unavailable;
    case 'LOCK_TIMEOUT':
    case 'QUEUE_FULL':
      return EXIT.busy;
    case 'LEASE_LOST':
      return EXIT.lost;
    default:
      return EXIT.internal;
  }
}

/** EXIT_CODES_HELP: the table printed by `--help`. */
export const EXIT_CODES_HELP = `Exit codes:
  0       success; for run, the command's own exit code
  64      usage error: a bad flag, duration, lock name or store URL, a missing --,
          or --permits other than the lock's holders and waiters use
  69      the store is unavailable (cannot reach the server, cannot open the file, driver missing, stayed locked)
  70      internal error
  75      the lock is busy (--no-wait), its queue is full, or --wait ran out
  76      the lock was lost while the command ran; the command was stopped
  126     the command could not be run (not executable)
  127     the command was not found
  128+N   the command was killed by signal N (130 for SIGINT, 143 for SIGTERM)`;
