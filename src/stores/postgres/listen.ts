import { backoffMs } from '../../core/timing.js';

/**
 * PgListenClient: the part of a `pg.Client` the store's LISTEN connection uses. It must be a
 * direct connection to the server (LISTEN does not work through a transaction pooler), made
 * for the store alone: the store connects it, listens on it, and ends it.
 */
export interface PgListenClient {
  connect(): Promise<unknown>;
  query(text: string): Promise<unknown>;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  end(): Promise<unknown>;
}

/** How often the LISTEN connection is checked with a query, and how long that query may take before the connection counts as dead. */
const PING_MS = 5000;
const PING_TIMEOUT_MS = 2500;

/**
 * Listener keeps one LISTEN connection of a store up: it connects on first need, LISTENs on
 * the store's channel, hands each notification's payload (a waiter's owner id) to `wake`,
 * and, when the connection fails (its socket dies, the server terminates it, a ping goes
 * unanswered), makes a new one with backoff and LISTENs again. Notifications sent while it
 * was down are lost, so `gap` runs once it listens again: the store wakes every local waiter
 * to ask again. A client's `'error'` never goes unhandled, so a dying socket never crashes
 * the process; no timer of it keeps the process alive.
 */
export class Listener {
  readonly #make: () => PgListenClient;
  readonly #channel: string;
  readonly #wake: (owner: string) => void;
  readonly #gap: () => void;
  #client: PgListenClient | null = null;
  #starting: Promise<void> | null = null;
  #listening = false;
  #attempt = 0;
  #timer: NodeJS.Timeout | null = null;
  #closed = false;
  /** Why the last connection failed, for messages. */
  lastError: string | undefined;

  constructor(make: () => PgListenClient, channel: string, wake: (owner: string) => void, gap: () => void) {
    this.#make = make;
    this.#channel = channel;
    this.#wake = wake;
    this.#gap = gap;
  }

  /** listening: LISTEN is up on a live connection. */
  get listening(): boolean {
    return this.#listening;
  }

  /** start connects and listens if not yet done; resolves when listening or when this attempt failed (a retry is then scheduled). */
  start(): Promise<void> {
    if (this.#closed || this.#listening) return Promise.resolve();
    this.#starting ??= this.#connect().finally(() => {
      this.#starting = null;
    });
    return this.#starting;
  }

  async #connect(): Promise<void> {
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    let client: PgListenClient;
    try {
      client = this.#make();
    } catch (error) {
      this.lastError = (error as Error).message;
      this.#retry();
      return;
    }
    this.#client = client;
    let failed = false;
    const fail = (error?: Error): void => {
      if (failed) return;
      failed = true;
      if (error) this.lastError = error.message;
      this.#drop(client);
      if (this.#client === client) {
        if (this.#timer) clearTimeout(this.#timer);
        this.#timer = null;
        this.#client = null;
        const wasListening = this.#listening;
        this.#listening = false;
        if (wasListening) this.#gap();
        this.#retry();
      }
    };
    client.on('error', (error) => fail(error));
    client.on('end', () => fail(new Error('the LISTEN connection ended')));
    client.on('notification', (message) => {
      if (message.channel === this.#channel && message.payload) this.#wake(message.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${this.#channel}`);
    } catch (error) {
      fail(error as Error);
      return;
    }
    if (this.#closed || failed) {
      this.#drop(client);
      return;
    }
    const reconnected = this.#attempt > 0;
    this.#attempt = 0;
    this.#listening = true;
    this.lastError = undefined;
    // Notifications sent while no connection listened are lost: every local waiter asks again.
    if (reconnected) this.#gap();
    this.#ping(client, fail);
  }

  /** Checks the connection every PING_MS; one that does not answer in PING_TIMEOUT_MS (a half-open socket, a stalled server) is dropped. */
  #ping(client: PgListenClient, fail: (error?: Error) => void): void {
    this.#timer = setTimeout(() => {
      this.#timer = null;
      if (this.#client !== client) return;
      const late = setTimeout(() => fail(new Error(`the LISTEN connection did not answer a ping within ${PING_TIMEOUT_MS} ms`)), PING_TIMEOUT_MS);
      late.unref();
      client.query('SELECT 1').then(
        () => {
          clearTimeout(late);
          if (this.#client === client) this.#ping(client, fail);
        },
        (error: Error) => {
          clearTimeout(late);
          fail(error);
        },
      );
    }, PING_MS);
    this.#timer.unref();
  }

  #retry(): void {
    if (this.#closed || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.start();
    }, backoffMs(this.#attempt++, 50, 500));
    this.#timer.unref();
  }

  /** Ends a client without waiting for the server, so that a stalled server keeps no socket open. */
  #drop(client: PgListenClient): void {
    const stream = (client as { connection?: { stream?: { destroy?: () => void } } }).connection?.stream;
    client.end().catch(() => undefined);
    stream?.destroy?.();
  }

  /** close ends the connection at once and stops reconnecting. */
  close(): void {
    this.#closed = true;
    this.#listening = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#client) this.#drop(this.#client);
    this.#client = null;
  }
}
