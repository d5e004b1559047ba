/**
 * The dashboard handler over HTTP without a browser: its routes and headers, one listing per
 * poll however many pages are open (none while none is), a store's holder descriptions in
 * the snapshot; a process that used it exits by itself after close; and `baton dashboard`,
 * bound to 127.0.0.1, ending with exit code 0 on SIGTERM.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, get, request, type Server } from 'node:http';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { createBaton } from '../../src/index.js';
import { createDashboardHandler, type Snapshot } from '../../src/dashboard/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { adopt } from '../helpers/children.js';
import { Fixture } from '../helpers/process.js';
import { until, within } from '../helpers/wait.js';
import { wrapStore } from '../helpers/wrap-store.js';

async function listen(server: Server): Promise<string> {
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

async function fetchText(url: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((done, fail) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => done({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

function stop(server: Server): Promise<void> {
  return new Promise((done) => {
    server.close(() => done());
    server.closeAllConnections();
  });
}

describe('dashboard handler', { timeout: 60_000 }, () => {
  it('serves the page with a strict Content-Security-Policy, refuses writes, and reports holders in the snapshot', async () => {
    const store = createMemoryStore();
    const baton = createBaton(store, { holder: { label: '<b>x</b>' } });
    const lease = await baton.mutex('a "quoted" <name>').acquire({ ttlMs: 10_000 });
    const handler = createDashboardHandler(baton, { pollMs: 250 });
    const server = createServer(handler);
    const base = await listen(server);
    try {
      const page = await fetchText(`${base}/`);
      assert.equal(page.status, 200);
      assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
      assert.doesNotMatch(String(page.headers['content-security-policy']), /unsafe-inline/);
      assert.equal(page.headers['x-content-type-options'], 'nosniff');
      assert.doesNotMatch(page.body, /<script>/, 'no inline script');
      assert.equal((await fetchText(`${base}/app.js`)).status, 200);
      assert.equal((await fetchText(`${base}/`, 'POST')).status, 405);
      assert.equal((await fetchText(`${base}/nothing`)).status, 404);
      const snapshot = JSON.parse((await fetchText(`${base}/snapshot.json`)).body) as Snapshot;
      assert.equal(snapshot.store.state, 'connected');
      const [lock] = snapshot.locks;
      assert.equal(lock!.name, 'a "quoted" <name>');
      assert.equal(lock!.fence, String(lease.token));
      assert.equal(lock!.holders[0]!.holder!.label, '<b>x</b>');
      assert.equal(lock!.holders[0]!.holder!.pid, process.pid);
      assert.equal(lock!.holders[0]!.token, String(lease.token));
    } finally {
      handler.close();
      await stop(server);
      await baton.close();
    }
  });

  it('lists the store once per poll however many streams are open, and not at all with none', async () => {
    const inner = createMemoryStore();
    let lists = 0;
    const store = wrapStore(inner, { list: (filter, call) => (lists++, inner.list(filter, call)) });
    const handler = createDashboardHandler(store, { pollMs: 250 });
    const server = createServer(handler);
    const base = await listen(server);
    const streams: { destroy(): void }[] = [];
    try {
      const opened = Array.from({ length: 5 }, () => new Promise<void>((done) => {
        const req = get(`${base}/events`, { agent: false }, (res) => {
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => chunk.includes('event: snapshot') && done());
          res.on('error', () => undefined);
        });
        req.on('error', () => undefined);
        streams.push(req);
      }));
      await within(Promise.all(opened), 10_000, 'every stream gets a snapshot');
      const from = lists;
      const startedAt = Date.now();
      await new Promise((done) => setTimeout(done, 1500));
      const polls = lists - from;
      const most = Math.ceil((Date.now() - startedAt) / 250) + 1;
      assert.ok(polls >= 1 && polls <= most, `${polls} listings in 1.5 s for 5 streams at one per 250 ms (at most ${most})`);
      for (const s of streams) s.destroy();
      await until(() => true, 'streams closed');
      await new Promise((done) => setTimeout(done, 400));
      const idle = lists;
      await new Promise((done) => setTimeout(done, 800));
      assert.equal(lists, idle, 'no listing while no page is open');
    } finally {
      handler.close();
      await stop(server);
      await store.close();
    }
  });

  it('keeps no process alive after close, even with a stream still open on the client side', async () => {
    const fixture = new Fixture('dashboard-exit.js', []);
    await fixture.waitFor((e) => e.e === 'closed', 15_000);
    const exit = await within(fixture.exited, 10_000, 'the process exits by itself after close');
    assert.deepEqual(exit, { code: 0, signal: null }, fixture.stderr);
  });

  it('refuses a force-release without admin, without the token, with a wrong one, or from another origin; does it with all three', async () => {
    const store = createMemoryStore();
    const baton = createBaton(store);
    await baton.mutex('stuck').acquire({ ttlMs: 60_000 });
    const readOnly = createDashboardHandler(store);
    const admin = createDashboardHandler(store, { admin: true });
    assert.equal(readOnly.adminToken, null);
    assert.match(admin.adminToken!, /^[0-9a-f]{32}$/);
    assert.notEqual(createDashboardHandler(store, { admin: true }).adminToken, admin.adminToken, 'a token per handler');
    const server = createServer((req, res) => (req.url?.startsWith('/ro/') ? readOnly(req, res) : admin(req, res)));
    const base = await listen(server);
    const host = base.slice('http://'.length);
    const post = (path: string, headers: Record<string, string>, body = JSON.stringify({ kind: 'mutex', name: 'stuck' })) =>
      new Promise<{ status: number; body: string }>((done, fail) => {
        const req = request(`${base}${path}`, { method: 'POST', agent: false, headers: { 'content-type': 'application/json', ...headers } }, (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (text += chunk));
          res.on('end', () => done({ status: res.statusCode!, body: text }));
        });
        req.on('error', fail);
        req.end(body);
      });
    const token = admin.adminToken!;
    try {
      assert.equal((await post('/ro/release', { 'x-baton-token': token, origin: base })).status, 403, 'read-only');
      assert.equal((await post('/release', { origin: base })).status, 403, 'no token');
      assert.equal((await post('/release', { 'x-baton-token': '0'.repeat(32), origin: base })).status, 403, 'wrong token');
      assert.equal((await post('/release', { 'x-baton-token': token })).status, 403, 'no Origin');
      assert.equal((await post('/release', { 'x-baton-token': token, origin: 'http://evil.example' })).status, 403, 'another origin');
      assert.equal((await post('/release', { 'x-baton-token': token, origin: base }, '{"kind":"nope","name":"stuck"}')).status, 400);
      assert.equal((await baton.inspect('stuck')).holders.length, 1, 'still held after every refusal');
      const done = await post('/release', { 'x-baton-token': token, origin: `http://${host}` });
      assert.equal(done.status, 200, done.body);
      assert.deepEqual(JSON.parse(done.body), { removed: 1 });
      assert.equal((await baton.inspect('stuck')).holders.length, 0);
    } finally {
      await readOnly.close();
      await admin.close();
      await stop(server);
      await baton.close();
    }
  });

  it('refuses a source that is not a baton or a store, and a poll faster than 250 ms', () => {
    assert.throws(() => createDashboardHandler({} as never), { code: 'INVALID_ARGUMENT', argument: 'source' });
    assert.throws(() => createDashboardHandler(createMemoryStore(), { pollMs: 10 }), { code: 'INVALID_ARGUMENT', argument: 'pollMs' });
  });
});

describe('baton dashboard', { timeout: 60_000 }, () => {
  const MAIN = resolve('build/src/cli/main.js');

  it('serves on 127.0.0.1 by default and exits 0 on SIGTERM', async () => {
    const child = adopt(spawn(process.execPath, [MAIN, '--store', 'memory:', 'dashboard', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] }), 'baton dashboard');
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      await until(() => /http:\/\/127\.0\.0\.1:\d+\//.test(out), 'the address is printed', { ms: 15_000, detail: () => out + err });
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
      const page = await fetchText(url);
      assert.equal(page.status, 200);
      assert.match(page.body, /baton dashboard/);
      assert.equal(err, '', 'no warning on loopback');
      child.kill('SIGTERM');
      assert.equal(await within(exited, 10_000, 'baton dashboard exits on SIGTERM'), 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('serves the page for a store that is down, showing it unreachable with why', async () => {
    const child = adopt(spawn(process.execPath, [MAIN, '--store', 'redis://127.0.0.1:1', 'dashboard', '--port', '0'], { stdio: ['ignore', 'pipe', 'pipe'] }), 'baton dashboard');
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
    try {
      await until(() => /http:\/\/127\.0\.0\.1:\d+\//.test(out), 'the address is printed', { ms: 15_000, detail: () => out });
      const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(out)![0];
      assert.match(out, /baton dashboard of the redis store/);
      assert.equal((await fetchText(url)).status, 200);
      let snapshot: Snapshot | undefined;
      await until(async () => {
        snapshot = JSON.parse((await fetchText(`${url}snapshot.json`)).body) as Snapshot;
        return snapshot.store.state === 'unreachable';
      }, 'the store shows as unreachable', { ms: 20_000 });
      assert.equal(snapshot!.store.name, 'redis');
      assert.match(snapshot!.store.error!, /127\.0\.0\.1:1/);
      child.kill('SIGTERM');
      assert.equal(await within(exited, 10_000, 'baton dashboard exits on SIGTERM'), 0);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('refuses a bad port as a usage error', async () => {
    const child = adopt(spawn(process.execPath, [MAIN, '--store', 'memory:', 'dashboard', '--port', '99999'], { stdio: ['ignore', 'pipe', 'pipe'] }), 'baton dashboard');
    let err = '';
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const code = await within(new Promise<number | null>((done) => child.once('exit', (c) => done(c))), 10_000, 'baton exits');
    assert.equal(code, 64);
    assert.match(err, /invalid --port: "99999"/);
  });
});
