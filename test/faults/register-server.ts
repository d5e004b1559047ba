/**
 * The fenced register (register.ts), in its own process: an HTTP server on loopback. Every
 * write and its outcome is appended to a JSONL history, in the order the register applied them.
 *
 * Usage: node register-server.js <history.jsonl>; prints {"port": N} once listening.
 *   GET  /state?token=T -> {"fenced": {"value", "token", "accepted"}, "unfenced": {"value"}}
 *   POST /write {"register": "fenced"|"unfenced", "worker", "token", "value"} -> {"accepted"}
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { Register } from './register.js';

const history = process.argv[2]!;
const register = new Register((write) => appendFileSync(history, `${JSON.stringify(write)}\n`));

const server = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => (body += chunk.toString()));
  request.on('end', () => {
    let answer: unknown;
    if (request.method === 'GET') {
      answer = register.read(BigInt(new URL(request.url ?? '/', 'http://register').searchParams.get('token') ?? '0'));
    } else {
      answer = { accepted: register.write(JSON.parse(body) as { register: 'fenced' | 'unfenced'; worker: string; token: string; value: number }) };
    }
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify(answer));
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
