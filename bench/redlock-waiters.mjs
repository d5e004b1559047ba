// What a hand-off costs on a Redlock quorum, which has no queue: N waiters in one process
// each acquire, hold, release; the server counts the scripts it ran (INFO commandstats), per
// node and per hand-off. Starts its own redis-server (loopback, no persistence); a quorum's
// nodes are prefixes on it, which costs the same scripts as separate servers.
// Usage: npm run build && node bench/redlock-waiters.mjs [--waiters 10,50,200] [--hold 5,50] [--nodes 1,3]
// Prints one line per run; nothing here is asserted. See docs/guarantees.md (Redlock).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { createBaton } from 'baton-lock';
import { createRedisStore, quorum } from 'baton-lock/redis';
import { freePort } from './lib.mjs';

const { values } = parseArgs({ options: { waiters: { type: 'string', default: '10,50,200' }, hold: { type: 'string', default: '5,50' }, nodes: { type: 'string', default: '1,3' } } });
const list = (text) => text.split(',').map(Number);

const port = await freePort();
const dir = mkdtempSync(join(tmpdir(), 'baton-bench-'));
const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
const admin = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
admin.on('error', () => undefined);
try {
  for (let i = 0; (await admin.ping().catch(() => null)) !== 'PONG'; i++) {
    if (i > 100) throw new Error(`redis-server did not start on port ${port}`);
    await sleep(50);
  }
  for (const nodes of list(values.nodes)) {
    for (const holdMs of list(values.hold)) {
      for (const waiters of list(values.waiters)) {
        const prefix = `w${nodes}-${holdMs}-${waiters}`;
        const stores = Array.from({ length: nodes }, (_, i) => createRedisStore(new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 }), { prefix: `${prefix}-${i}`, fencing: false, closeClient: true }));
        const baton = createBaton(quorum(stores));
        await baton.inspect('warm-up');
        await admin.config('RESETSTAT');
        const startedAt = Date.now();
        await Promise.all(Array.from({ length: waiters }, async () => {
          const lease = await baton.mutex('hot').acquire({ ttlMs: 5000, timeoutMs: 120_000 });
          await sleep(holdMs);
          await lease.release();
        }));
        const ms = Date.now() - startedAt;
        const info = await admin.info('commandstats');
        let scripts = 0;
        for (const [, name, calls] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (name === 'evalsha' || name === 'eval') scripts += Number(calls);
        await baton.close();
        console.log(`nodes ${nodes}  hold ${holdMs} ms  waiters ${String(waiters).padStart(3)}: ${(scripts / nodes / waiters).toFixed(1)} scripts per node per hand-off, ${(ms / waiters).toFixed(1)} ms per hand-off`);
      }
    }
  }
} finally {
  admin.disconnect();
  server.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
