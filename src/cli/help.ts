/** The CLI's help texts and version. */
import { readFileSync } from 'node:fs';
import { STORE_SCHEMES, type StoreScheme } from '../url.js';
import { EXIT_CODES_HELP } from './exit-codes.js';

/**
 * The --store option with every store URL scheme, made from `STORE_SCHEMES`: a scheme is in
 * the help once a store registers it. Each gets its URL form, then what it is, wrapped.
 */
const STORE_HELP = [
  '  --store URL       where locks live (default: $BATON_STORE, else sqlite:)',
  ...STORE_SCHEMES.flatMap((scheme: StoreScheme) => [`${' '.repeat(22)}${scheme.form}`, ...wrap(scheme.summary, 26, 110)]),
].join('\n');

/** Breaks text into lines of at most `width` columns (a longer word stays whole), each indented by `indent`. */
function wrap(text: string, indent: number, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines.map((l) => `${' '.repeat(indent)}${l}`);
}

const DURATIONS_HELP = 'Durations: 500ms, 30s, 1.5s, 2m, 1h. A number needs its unit; only 0 may go without one.';

export const MAIN_HELP = `Usage: baton [--store URL] COMMAND [options]

Run commands under distributed locks with fencing tokens, and look at or free those locks.

Commands:
  run NAME [options] -- COMMAND [ARGS...]   hold lock NAME while COMMAND runs
  cron 'SPEC' NAME [options] -- COMMAND     run COMMAND once per slot of SPEC across hosts
  ls [--kind KIND] [--json] [--watch]       list every lock in the store, and who holds it
  inspect NAME [--kind KIND] [--json]       show a lock's holders, waiters and last token
  release NAME --force [--kind KIND]        free a lock whoever holds it (an admin action)
  prune [--kind KIND] [--dry-run]           remove the locks nobody holds or waits for
  dashboard [--port N] [--admin]            serve a live web view of the locks (127.0.0.1:7070)
  help [COMMAND]                            show help for a command

Options:
${STORE_HELP}
  -h, --help        show help
  -V, --version     show the version

${DURATIONS_HELP}

Environment:
  BATON_STORE       the store URL when --store is not given
  BATON_SQLITE_PATH the file of sqlite: (the default store) for every user that sets it,
                    e.g. /var/lib/baton/locks.db; without it each user has a file of their own
  BATON_DEBUG       set to 1 to print stack traces of internal errors

${EXIT_CODES_HELP}
`;

export const RUN_HELP = `Usage: baton run NAME [options] -- COMMAND [ARGS...]

Take lock NAME, run COMMAND while renewing the lock, then release it and exit with
COMMAND's exit code. COMMAND runs without a shell; write sh -c '...' for one.

Options:
  --ttl DURATION    lease TTL; renewed every TTL/3 while COMMAND runs (default 30s)
  --wait DURATION   give up (exit 75) if the lock is not free within DURATION
                    (default: wait as long as it takes); --wait 0 tries once
  --no-wait         try once; exit 75 if the lock is busy
  --permits N       take one of N permits of the semaphore NAME instead of the mutex NAME;
                    every user of the semaphore must pass the same N (exit 64 while
                    others hold or wait with another N)
  --grace DURATION  once the lock is lost, time between SIGTERM and SIGKILL (default 10s)
  --label TEXT      shown by ls and inspect with this holder's host, pid and COMMAND
  --verbose         report a wait on stderr also when it is not a terminal (on a terminal,
                    a wait longer than a second shows its place in the queue and the holder)
${STORE_HELP}
  -h, --help        show this help

COMMAND gets these variables on top of baton's environment:
  BATON_LOCK        the lock name
  BATON_TOKEN       the fencing token, a decimal integer that grows on every grant: send it
                    with every write to the resource the lock protects, and have the resource
                    refuse tokens lower than the highest it has seen
  BATON_OWNER       this grant's owner id (32 hex characters), as inspect shows it

SIGINT, SIGTERM and SIGHUP sent to baton are passed on to COMMAND. If the lock is lost while
COMMAND runs (renewal failed until the TTL ran out, or someone ran release --force), baton
prints one line, sends COMMAND SIGTERM, then SIGKILL after the grace period, and exits 76.

${DURATIONS_HELP}

${EXIT_CODES_HELP}
`;

export const CRON_HELP = `Usage: baton cron 'SPEC' NAME [options] -- COMMAND [ARGS...]

Run COMMAND once per slot of SPEC across every host and process that runs the same line,
whatever their clocks say: for each slot, the first to reach it claims it in the store (the
job's mark only moves forward), takes lock NAME and runs COMMAND; the others skip that slot.
A run killed midway is not run again for its slot. Runs until SIGINT, SIGTERM or SIGHUP,
which are passed on to a running COMMAND; then exits 0 once it has ended.

SPEC is a cron expression with 5 or 6 fields ('*/5 * * * *', '0 30 2 * * *', read in UTC
unless --timezone says otherwise), or 'every DURATION' ('every 30s': slots at multiples of
it since the epoch). In a time zone with summer time, a fixed time skipped by the spring
change runs just after the gap and one repeated in autumn runs once (croner's rule).

Options:
  --timezone ZONE     read SPEC in this IANA time zone, e.g. Europe/Paris (default UTC)
  --ttl DURATION      lockAtMostFor: the lock's TTL, renewed every TTL/3 while COMMAND runs
                      (default 1m); if the lock is lost, COMMAND gets SIGTERM
  --at-least DURATION lockAtLeastFor: keep the lock this long after a run starts (default 0)
  --catch-up WHAT     none (default): only slots from now on; latest: at start, run the
                      latest slot no one ran; DURATION: the same if it is at most that old
  --grace DURATION    once the lock is lost, time between SIGTERM and SIGKILL (default 10s)
  --label TEXT        shown by ls and inspect with this holder's host, pid and COMMAND
${STORE_HELP}
  -h, --help          show this help

COMMAND gets BATON_LOCK, BATON_TOKEN and BATON_OWNER as with baton run, and BATON_SLOT, the
slot it runs for (ISO 8601, UTC). baton ls shows each job's last slot: who ran it, when,
how long, and how it ended.

${DURATIONS_HELP}
`;

export const LS_HELP = `Usage: baton ls [--kind KIND] [--json | --watch [--interval DURATION]]

List every lock the store knows: its kind, name, holder and waiter counts, the last fencing
token issued (- for a store that issues none, such as redis+quorum://), and who holds it.

Options:
  --kind KIND       only locks of this kind: mutex, semaphore, rwlock or election
  --json            print a JSON array (the objects of inspect --json; tokens are strings, or null)
  --watch           list again every interval until Ctrl-C (SIGINT or SIGTERM; exit 0),
                    redrawn in place on a terminal
  --interval DURATION  with --watch: how often (default 1s, at least 100ms)
${STORE_HELP}
  -h, --help        show this help

${EXIT_CODES_HELP}
`;

export const INSPECT_HELP = `Usage: baton inspect NAME [--kind KIND] [--json]

Show the holders of lock NAME (owner, token, time left, mode), its waiters (owner, position)
and the last fencing token issued. A store that issues no fencing token (redis+quorum://)
shows - for tokens, and null in JSON.

Options:
  --kind KIND       mutex, semaphore, rwlock or election; default: the kind the store has
                    for NAME (mutex if none; an error if it has several)
  --json            print JSON (tokens are strings, or null)
${STORE_HELP}
  -h, --help        show this help

${EXIT_CODES_HELP}
`;

export const RELEASE_HELP = `Usage: baton release NAME --force [--kind KIND]

Free lock NAME whoever holds it, for a holder that is gone or stuck. The holders find out at
their next renewal (a baton run then stops its command and exits 76); the next grant still
gets a higher fencing token. Waiters are not removed. Prints how many holders were removed.

Options:
  --force           required: confirms that you mean to free a lock held by someone else
  --kind KIND       mutex, semaphore, rwlock or election; default: the kind the store has
                    for NAME (mutex if none; an error if it has several)
${STORE_HELP}
  -h, --help        show this help

${EXIT_CODES_HELP}
`;

export const DASHBOARD_HELP = `Usage: baton dashboard [--port N] [--host ADDRESS] [--admin]

Serve a live web page of the store's locks until Ctrl-C (SIGINT or SIGTERM; exit 0): each lock
with its holders (host, pid, command, label), fencing token, time left and waiters in order;
elections with their leader's value; hand-offs as they happen; and whether the store answers.
The store is listed once a second while a page is open, whatever the number of pages. The page
is read-only and has no login, unless started with --admin: then it offers force-release,
with a token made for this start and printed in the address (after #), checked on a
same-origin POST.

Options:
${STORE_HELP}
  --port N          the port (default 7070; 0: any free port, printed at start)
  --host ADDRESS    the address to listen on (default 127.0.0.1: this machine only)
  --admin           let the page force-release locks (with the printed address's token)
  -h, --help        show help
`;

export const PRUNE_HELP = `Usage: baton prune [--kind KIND] [--dry-run]

Remove what the store keeps for locks that nobody holds or waits for. A store keeps every lock
name it was ever asked for (a SQLite row, a Redis hash, each with its last fencing token), so
per-entity names (job:1234, user:42) grow it without bound until pruned; run this from cron.
Tokens never go back: a name used again after a prune gets a token above every token it got
before. Prints how many locks were removed.

Options:
  --kind KIND       only locks of this kind: mutex, semaphore, rwlock or election
  --dry-run         list the idle locks instead of removing them
${STORE_HELP}
  -h, --help        show this help

${EXIT_CODES_HELP}
`;

/**
 * version reads the package's version. Compiled, this file is dist/esm/cli/help.js (or
 * build/src/cli/help.js in tests): package.json is three levels up either way.
 */
export function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown };
    return typeof pkg.version === 'string' ? pkg.version : 'unknown';
  } catch {
    return 'unknown';
  }
}
