/**
 * tcpFailure: why a TCP connection to `host:port` fails, such as `connect ECONNREFUSED
 * 127.0.0.1:7001`, or undefined once one opens; within 1 s. For opening a store from a URL,
 * when its driver's error does not say why it reached no server (ioredis's Cluster: "None of
 * startup nodes is available (Connection is closed.)"; gRPC: "Last error: null").
 */
import { connect } from 'node:net';

export function tcpFailure(host: string, port: number): Promise<string | undefined> {
  return new Promise((done) => {
    const socket = connect({ host, port });
    const finish = (why: string | undefined): void => {
      socket.destroy();
      done(why);
    };
    socket.setTimeout(1000, () => finish(`connect ETIMEDOUT ${host}:${port} (no answer within 1 s)`));
    socket.once('connect', () => finish(undefined));
    socket.once('error', (error) => finish(error.message));
  });
}
