#!/usr/bin/env node
/**
 * The `baton` executable. All the work is in `cli.ts`; this file only wires it to the
 * process. It sets `process.exitCode` and lets the process end by itself, so that output
 * still being written to a pipe is never cut off.
 */
import { main } from './cli.js';

// A reader that stops early (`baton ls | head -1`) closes the pipe: not an error of baton.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
}

process.exitCode = await main(process.argv.slice(2));
