/**
 * `baton dashboard`: serves the live dashboard of the store (see src/dashboard/) on loopback
 * until SIGINT or SIGTERM. It is read-only and has no login: it binds 127.0.0.1 unless told
 * otherwise, and says so when told otherwise.
 */
import { createServer } from 'node:http';
import { InvalidArgumentError } from '../index.js';
import { openStore, parseStoreUrl } from '../url.js';
import { createDashboardHandler } from '../dashboard/index.js';
import { COMMON_FLAGS, booleanFlag, expectPositionals, stringFlag, type FlagSpecs, type ParsedArgs } from './args.js';
import type { Io } from './io.js';

export const DASHBOARD_USAGE = 'baton dashboard [--port N] [--host ADDRESS] [--admin]';
export const DASHBOARD_FLAGS: FlagSpecs = Object.freeze({ ...COMMON_FLAGS, port: { type: 'string' }, host: { type: 'string' }, admin: { type: 'boolean' } });

/** The port when none is given. */
export const DASHBOARD_PORT = 7070;

export interface DashboardCommandOptions {
  readonly port: number;
  readonly host: string;
  /** Let the page force-release locks, with a token made for this start. */
  readonly admin: boolean;
}

export function parseDashboard(args: ParsedArgs): DashboardCommandOptions {
  expectPositionals(args, [], DASHBOARD_USAGE);
  const portText = stringFlag(args, 'port');
  const port = portText === undefined ? DASHBOARD_PORT : Number(portText);
  if (portText !== undefined && !(/^\d+$/.test(portText) && port <= 65535)) {
    throw new InvalidArgumentError('port', `invalid --port: "${portText}"; expected a port number from 0 to 65535 (0: any free port)`);
  }
  const host = stringFlag(args, 'host') ?? '127.0.0.1';
  if (host === '') throw new InvalidArgumentError('host', 'invalid --host: empty');
  return { port, host, admin: booleanFlag(args, 'admin') };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

/**
 * dashboard serves the page of the store at `url` until stopped. The URL is checked first (a
 * bad one is a usage error); the store is opened by the handler, so a store that is down
 * shows as unreachable, with why, until it answers.
 */
export async function dashboard(url: string, o: DashboardCommandOptions, io: Io): Promise<number> {
  parseStoreUrl(url);
  const storeName = url.slice(0, url.indexOf(':'));
  const handler = createDashboardHandler(() => openStore(url), { storeName, admin: o.admin });
  const server = createServer(handler);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(o.port, o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await handler.close();
    const code = (error as { code?: string }).code;
    throw new InvalidArgumentError(code === 'EADDRINUSE' ? 'port' : 'host', `cannot listen on ${o.host}:${o.port}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : o.port;
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  // The token goes in the fragment, which browsers never send to a server or put in a Referer.
  const token = handler.adminToken === null ? '' : `#token=${handler.adminToken}`;
  io.out(`baton dashboard of the ${storeName} store: http://${host}:${port}/${token}  (Ctrl-C to stop)`);
  if (o.admin) io.err('baton: admin actions are on: whoever has the address above, with its token, can force-release locks');
  if (!LOOPBACK.has(o.host)) io.err(`baton: the dashboard has no login and shows every lock of the store to anyone who can reach ${o.host}:${port}`);
  await new Promise<void>((resolve) => {
    const off = io.onStop?.(() => {
      off?.();
      resolve();
    });
    if (!off) resolve();
  });
  await handler.close();
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  return 0;
}
