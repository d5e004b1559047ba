// Several processes take turns on one lock in the embedded SQLite store and print their
// fencing tokens. Run it with `scripts/demo` (or `node examples/take-turns.mjs` after a build).
// The store is BATON_STORE if set, else the default file (see `defaultSqlitePath()`).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createBaton } from 'baton-lock';
import { defaultSqlitePath } from 'baton-lock/sqlite';
import { openStore } from 'baton-lock/url';

const url = process.env.BATON_STORE ?? 'sqlite:';
const [role, id] = process.argv.slice(2);

if (role === 'worker') {
  const baton = createBaton(await openStore(url));
  for (let turn = 1; turn <= 3; turn++) {
    await baton.withLock('demo', async (lease) => {
      console.log(`worker ${id} (pid ${process.pid}) holds "demo" with token ${lease.token}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }, { ttlMs: 5_000 });
  }
  await baton.close();
} else {
  const processes = 4;
  console.log(`${processes} processes take turns on the lock "demo" in ${url === 'sqlite:' ? defaultSqlitePath() : url}\n`);
  const tokens = [];
  const workers = Array.from({ length: processes }, (_, i) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'worker', String(i + 1)], { stdio: ['ignore', 'pipe', 'inherit'] });
    child.stdout.setEncoding('utf8').on('data', (text) => {
      process.stdout.write(text);
      for (const match of text.matchAll(/token (\d+)/g)) tokens.push(BigInt(match[1]));
    });
    return new Promise((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${i + 1} exited with ${code}`)))));
  });
  await Promise.all(workers);
  const increasing = tokens.every((token, i) => i === 0 || token > tokens[i - 1]);
  console.log(`\n${tokens.length} turns, one holder at a time; each token higher than the one before: ${increasing ? 'yes' : 'NO'}`);
  console.log('Tokens continue from the last run: they are kept in the database and never reused.');
  if (!increasing) process.exitCode = 1;
}
