/**
 * The fenced register, in its own process: an HTTP server on loopback holding two
 * registers. `fenced` checks the token on every access, reads included: an access with a
 * token lower than the highest it has seen is refused, and any other raises that highest
 * token. (Checking only writes is not enough for a read-modify-write: a stale holder's write
 * can land between the new holder's read and its write, and the new holder then overwrites
 * it; the fault suite found exactly that.) Its `unfenced` twin accepts everything. Every
 * write and its outcome is appended to a JSONL history, in the order the register applied them.
 *
 * Usage: node register-server.js <history.jsonl>; prints {"port": N} once listening.
 *   GET  /state?token=T -> {"fenced": {"value", "token", "accepted"}, "unfenced": {"value"}}
 *   POST /write {"register": "fenced"|"unfenced", "worker", "token", "value"} -> {"accepted"}
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
      const token = BigInt(new URL(request.url ?? '/', 'http://register').searchParams.get('token') ?? '0');
      const accepted = token >= fenced.token;
      if (accepted) fenced.token = token;
      answer = { fenced: { value: fenced.value, token: String(fenced.token), accepted }, unfenced };
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
