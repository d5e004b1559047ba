/**
 * Starts dynalite (DynamoDB's API on npm, in a `node` process of its own) on a free loopback
 * port for a test file, restarts it, pauses it, and stops it by its PID. Its data lives in a
 * LevelDB folder, so a restart keeps the tables and items (as DynamoDB does); SIGSTOP makes
 * a real stalled endpoint, SIGKILL a real crash. dynalite has no TransactWriteItems.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import { ensureTable } from '../../src/stores/dynamodb/index.js';
import { adopt } from './children.js';
import { cleanUp } from './clean-up.js';
import { freePort, killProcess } from './process.js';

/** The script of the dynalite process: argv are the port and the data folder. */
const SERVER = `
const dynalite = require('dynalite');
const [port, path] = process.argv.slice(1);
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0, path });
server.listen(Number(port), '127.0.0.1', () => process.stdout.write('listening\\n'));
`;

/** Credentials for dynalite, which checks none; the SDK wants some. */
export const DYNALITE_CREDENTIALS = Object.freeze({ accessKeyId: 'baton-test', secretAccessKey: 'baton-test' });
export const DYNALITE_REGION = 'us-east-1';

export interface DynaliteServer {
  readonly port: number;
  /** The server process's PID (a new one after each restart). */
  readonly pid: number;
  /** `http://127.0.0.1:PORT`. */
  readonly endpoint: string;
  /** client: a new DynamoDBClient on this server, destroyed by `stop()`. */
  client(config?: DynamoDBClientConfig): DynamoDBClient;
  /** table: makes a table of `name` (a fresh one per call by default) and answers its name. */
  table(name?: string): Promise<string>;
  /** restart kills the server (SIGKILL) and starts it again on the same port and data. */
  restart(): Promise<void>;
  /** down kills the server and leaves it down; `up` starts it again. */
  down(): Promise<void>;
  up(): Promise<void>;
  /** pause SIGSTOPs the server: its sockets stay open and nothing answers; `resume` SIGCONTs it. */
  pause(): void;
  resume(): void;
  /** stop kills the server (paused or not), destroys the helper's clients, removes its data. */
  stop(): Promise<void>;
}

let tables = 0;

export async function startDynalite(): Promise<DynaliteServer> {
  const dir = mkdtempSync(join(tmpdir(), 'baton-dynalite-'));
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const clients: DynamoDBClient[] = [];

  const launch = async (): Promise<ChildProcess> => {
    const child = adopt(spawn(process.execPath, ['-e', SERVER, String(port), join(dir, 'data')], { stdio: ['ignore', 'pipe', 'pipe'] }), `dynalite on port ${port}`);
    let output = '';
    child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`dynalite did not start serving on port ${port} within 10 s: ${output}`)), 10_000);
        child.stdout!.on('data', (chunk: Buffer) => {
          if (chunk.toString().includes('listening')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new Error(`dynalite exited (${code ?? signal}) before serving on port ${port}: ${output}`));
        });
      });
    } catch (error) {
      await killProcess(child);
      throw error;
    }
    return child;
  };

  let child = await launch();
  const server: DynaliteServer = {
    port,
    get pid() {
      return child.pid!;
    },
    endpoint,
    client(config) {
      const client = new DynamoDBClient({ endpoint, region: DYNALITE_REGION, credentials: { ...DYNALITE_CREDENTIALS }, ...config });
      clients.push(client);
      return client;
    },
    async table(name = `baton-t${process.pid}-${++tables}`) {
      const client = new DynamoDBClient({ endpoint, region: DYNALITE_REGION, credentials: { ...DYNALITE_CREDENTIALS } });
      try {
        await ensureTable(client, { table: name, timeoutMs: 10_000 });
      } finally {
        client.destroy();
      }
      return name;
    },
    async restart() {
      await killProcess(child);
      child = await launch();
    },
    async down() {
      await killProcess(child);
    },
    async up() {
      if (child.exitCode === null && child.signalCode === null) return;
      child = await launch();
    },
    pause() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGSTOP');
    },
    resume() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
    },
    stop: () => cleanUp(`stop dynalite on port ${port}`, {
      'destroy its clients': () => {
        for (const client of clients.splice(0)) client.destroy();
      },
      'kill the server': () => killProcess(child),
      'remove its folder': () => rmSync(dir, { recursive: true, force: true }),
    }),
  };
  return server;
}
