import { createSocket, type Socket } from 'node:dgram';
import type { WakeLatches } from '../../core/wake-latch.js';

/**
 * WakeSocket carries wake-ups between processes that share one SQLite file. A waiter's row
 * records the loopback UDP port of its process; whoever frees a place sends one datagram,
 * holding the waiter's owner id, to exactly the waiters that may now hold. A datagram that is
 * lost (a process died, a buffer was full) costs one poll period, never correctness: the
 * waiter also asks again on a timer. Unknown owners are ignored, so a stray datagram is harmless.
 */
export class WakeSocket {
  #socket: Socket | null = null;
  #port: Promise<number> | null = null;
  readonly #latches: WakeLatches;
  /** Datagrams handed to the socket but not yet sent; `close` waits for them. */
  #sending = 0;
  #drained: (() => void) | null = null;

  /** Datagrams that arrive fire these latches. */
  constructor(latches: WakeLatches) {
    this.#latches = latches;
  }

  /** port binds the socket on first use and returns its port. */
  port(): Promise<number> {
    this.#port ??= new Promise<number>((resolve, reject) => {
      const socket = createSocket('udp4');
      socket.once('error', reject);
      socket.on('message', (message) => this.#latches.fire(message.toString('latin1')));
      socket.bind(0, '127.0.0.1', () => {
        socket.removeListener('error', reject);
        socket.on('error', () => undefined);
        socket.unref();
        this.#socket = socket;
        resolve(socket.address().port);
      });
    });
    return this.#port;
  }

  /** send wakes `owner` in the process listening on `port`; fire and forget. */
  send(port: number, owner: string): void {
    this.#sending++;
    const sent = (): void => {
      if (--this.#sending === 0) this.#drained?.();
    };
    // A process that has never waited binds on its first send.
    this.port().then((): void => {
      if (this.#socket) this.#socket.send(owner, port, '127.0.0.1', sent);
      else sent();
    }, sent);
  }

  /**
   * close wakes every local waiter, lets the datagrams already handed over go out (a release
   * just before close must still wake the next waiter; waits at most 100 ms), then closes.
   */
  async close(): Promise<void> {
    this.#latches.fireAll();
    if (this.#sending > 0) {
      await new Promise<void>((resolve) => {
        this.#drained = resolve;
        setTimeout(resolve, 100).unref();
      });
    }
    this.#socket?.close();
    this.#socket = null;
  }

}
