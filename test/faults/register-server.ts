/**
 * The fenced register, in its own process: an HTTP server on loopback holding two
 * registers. `fenced` accepts a write only if its token is at least the highest it has
 * accepted; its `unfenced` twin accepts every write. Every write and its outcome is appended
 * to a JSONL history, in the order the register applied them.
 *
 * Usage: node register-server.js <history.jsonl>; prints {"port": N} once listening.
 *   POST /write {"register": "fenced"|"unfenced", "worker", "token", "value"} -> {"accepted"}
 *   GET  /state -> {"fenced": {"value", "token"}, "unfenced": {"value"}}
 */
import { appendFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { monotonicNow } from '../../src/index.js';

const history = process.argv[2]!;
const fenced = { value: 0, token: 0n };
const unfenced = { value: 0 };

const server = createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => (body += chunk.toString()));
  request.on('end', () => {
    let answer: unknown;
    if (request.method === 'GET') {
      answer = { fenced: { value: fenced.value, token: String(fenced.token) }, unfenced };
    } else {
      const write = JSON.parse(body) as { register: 'fenced' | 'unfenced'; worker: string; token: string; value: number };
      const token = BigInt(write.token);
      let accepted: boolean;
      let previous: number;
      if (write.register === 'fenced') {
        previous = fenced.value;
        accepted = token >= fenced.token;
        if (accepted) Object.assign(fenced, { value: write.value, token });
      } else {
        previous = unfenced.value;
        accepted = true;
        unfenced.value = write.value;
      }
      appendFileSync(history, `${JSON.stringify({ at: monotonicNow(), ...write, previous, accepted })}\n`);
      answer = { accepted };
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
