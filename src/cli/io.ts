/** Io: where the commands write and what they read from their surroundings, so that they never touch `process` for it. */
export interface Io {
  /** out writes one line to stdout. */
  out(line: string): void;
  /** err writes one line to stderr. */
  err(line: string): void;
  readonly env: NodeJS.ProcessEnv;
  /** stderr is a terminal: a status line may be rewritten in place with `status`. */
  readonly errIsTerminal?: boolean;
  /** status replaces the status line on stderr (a terminal) with `line`; an empty line clears it. */
  status?(line: string): void;
  /** stdout is a terminal: a screen may be redrawn with `redraw`. */
  readonly outIsTerminal?: boolean;
  /** redraw clears the terminal on stdout and writes `text` at its top. */
  redraw?(text: string): void;
  /** onStop calls `listener` once on SIGINT or SIGTERM; returns a function that stops listening. */
  onStop?(listener: () => void): () => void;
}

/** processIo: the real stdout, stderr and environment. */
export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  env: process.env,
  errIsTerminal: process.stderr.isTTY === true,
  status: (line) => void process.stderr.write(`\r\x1b[K${line}`),
  outIsTerminal: process.stdout.isTTY === true,
  redraw: (text) => void process.stdout.write(`\x1b[H\x1b[2J${text}\n`),
  onStop(listener) {
    const once = (): void => {
      off();
      listener();
    };
    const off = (): void => {
      process.off('SIGINT', once);
      process.off('SIGTERM', once);
    };
    process.on('SIGINT', once);
    process.on('SIGTERM', once);
    return off;
  },
};
