/** Io: where the commands write and what they read from their surroundings, so that they never touch `process` for it. */
export interface Io {
  /** out writes one line to stdout. */
  out(line: string): void;
  /** err writes one line to stderr. */
  err(line: string): void;
  readonly env: NodeJS.ProcessEnv;
}

/** processIo: the real stdout, stderr and environment. */
export const processIo: Io = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
  env: process.env,
};
