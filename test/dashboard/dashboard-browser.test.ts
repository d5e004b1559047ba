/**
 * The dashboard page in real headless Chromium (Debian's chromium-headless-shell, driven by
 * playwright-core; never a downloaded browser), over a SQLite store shared with another
 * process: a lock that process holds appears with who holds it; a waiter shows; when the
 * holder dies, the hand-off shows the new holder and a higher token; names that are markup
 * show as text and run nothing; a semaphore shows its permits used and an election its
 * leader's value; the page reconnects after the server drops its stream; a store that does
 * not answer shows as unreachable. Screenshots go to a temporary folder, or to the folder in
 * BATON_SCREENSHOT_DIR (`BATON_SCREENSHOT_DIR=docs` refreshes the ones the docs show).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createBaton, StoreUnavailableError, type Baton } from '../../src/index.js';
import { createDashboardHandler, type DashboardHandler } from '../../src/dashboard/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { createSqliteStore } from '../../src/stores/sqlite/index.js';
import { Fixture } from '../helpers/process.js';
import { until } from '../helpers/wait.js';
import { wrapStore } from '../helpers/wrap-store.js';

/** Where the screenshots go: never into the checkout unless asked (a test run leaves the work tree as it was). */
const SHOTS = process.env.BATON_SCREENSHOT_DIR || mkdtempSync(join(tmpdir(), 'baton-shots-'));
if (!process.env.BATON_SCREENSHOT_DIR) process.once('exit', () => rmSync(SHOTS, { recursive: true, force: true }));

const CHROMIUM = ['/usr/bin/chromium-headless-shell', '/usr/lib/chromium/headless_shell', '/usr/bin/chromium'].find((path) => existsSync(path));
const FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

const XSS_SCRIPT = '<script>window.__pwned = 1</script>';
const XSS_IMG = '<img src=x onerror="window.__pwned = 2">';

describe('dashboard in headless Chromium', { timeout: 120_000, skip: CHROMIUM ? false : 'chromium-headless-shell is not installed (scripts/setup installs it)' }, () => {
  let dir: string;
  let server: Server;
  let handler: DashboardHandler;
  let downHandler: DashboardHandler;
  let browser: Browser;
  let page: Page;
  let base: string;
  const sockets = new Set<Socket>();
  let streams = 0;
  const batons: Baton<bigint | null>[] = [];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-dashboard-'));
    handler = createDashboardHandler(createSqliteStore({ path: join(dir, 'locks.db') }), { pollMs: 250 });
    // A store that never answers a listing in time, mounted under a path prefix.
    const inner = createMemoryStore();
    downHandler = createDashboardHandler(wrapStore(inner, { list: async () => { throw new StoreUnavailableError('memory', 'Cannot reach the store at memory: (injected)'); } }), { pollMs: 250 });
    server = createServer((req: IncomingMessage, res: ServerResponse) => {
      if (req.url?.endsWith('/events')) streams++;
      if (req.url?.startsWith('/down/')) downHandler(req, res);
      else handler(req, res);
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address() as { port: number };
    base = `http://127.0.0.1:${address.port}/`;
    browser = await chromium.launch({ executablePath: CHROMIUM!, args: FLAGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  });

  after(async () => {
    await browser?.close();
    handler?.close();
    downHandler?.close();
    for (const baton of batons) await baton.close();
    await new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.close(() => resolve());
      server.closeAllConnections();
    });
    rmSync(dir, { recursive: true, force: true });
  });

  const card = (name: string) => page.locator('article.lock', { has: page.locator('.name', { hasText: name }) });
  const textOf = async (name: string): Promise<string> => ((await card(name).count()) > 0 ? ((await card(name).first().textContent()) ?? '') : '');
  const shows = (name: string, text: string | RegExp, what: string) =>
    until(async () => {
      const t = await textOf(name);
      return typeof text === 'string' ? t.includes(text) : text.test(t);
    }, what, { ms: 20_000, everyMs: 100, detail: () => 'the page did not show it' });

  it('shows a lock held by another process, its waiter, then the hand-off with a higher token', async () => {
    const db = join(dir, 'locks.db');
    const holder = new Fixture('holder.js', [db, join(dir, 'register.db'), 'deploy', '1500', '60000']);
    try {
      const acquired = await holder.waitFor((e) => e.e === 'acquired');
      await page.goto(base);
      await shows('deploy', `pid ${holder.child.pid}`, 'the lock held by the other process, with its pid');
      assert.ok((await textOf('deploy')).includes(`token ${String(acquired.token)}`));

      const b = createBaton(createSqliteStore({ path: db }), { holder: { label: 'test waiter' } });
      batons.push(b);
      const waiting = b.mutex('deploy').acquire({ ttlMs: 30_000 });
      await shows('deploy', '1 waiting', 'the waiter');
      // The holder dies: its lease runs out and the waiter gets the lock.
      holder.kill('SIGKILL');
      const lease = await waiting;
      assert.ok(lease.token > BigInt(String(acquired.token)));
      await shows('deploy', 'test waiter', 'the new holder');
      assert.ok((await textOf('deploy')).includes(`token ${lease.token}`), 'the new, higher token');
      assert.ok(!(await textOf('deploy')).includes('waiting'), 'nobody waits any more');
    // The chart of the last minutes has seen the wait end in a hold, and draws both series.
    await shows('deploy', /1 wait seen, median \d/, 'the wait seen on the chart');
    assert.equal(await card('deploy').locator('.chart svg path').count(), 2);
      const changes = (await page.locator('#changes').textContent()) ?? '';
      assert.match(changes, /(hand-off: mutex deploy → test waiter|acquired: mutex deploy by test waiter)/, changes);
      await lease.release();
      await shows('deploy', 'free', 'the release');
    } finally {
      holder.kill('SIGKILL');
      await holder.exited;
    }
  });

  it('shows names that are markup as text and runs none of it; semaphores and elections', async () => {
    const a = createBaton(createSqliteStore({ path: join(dir, 'locks.db') }), { holder: { label: '<b>label</b>' } });
    batons.push(a);
    await a.mutex(XSS_SCRIPT).acquire({ ttlMs: 60_000 });
    await a.mutex(XSS_IMG).acquire({ ttlMs: 60_000 });
    const pool = a.semaphore('pool', { permits: 3 });
    await pool.acquire({ ttlMs: 60_000, autoRenew: true });
    await pool.acquire({ ttlMs: 60_000, autoRenew: true, label: 'batch job 7' });
    await a.election('scheduler').campaign('<i>node-1</i>', { ttlMs: 60_000, autoRenew: true });
    await a.mutex('nightly-backup').acquire({ ttlMs: 60_000, autoRenew: true, label: 'backup run 42' });
    const b = createBaton(createSqliteStore({ path: join(dir, 'locks.db') }));
    batons.push(b);
    const stop = new AbortController();
    const waiters = [b.mutex('nightly-backup').acquire({ signal: stop.signal }).catch(() => null), b.mutex('nightly-backup').acquire({ signal: stop.signal }).catch(() => null)];
    await shows('nightly-backup', '2 waiting', 'two waiters in order');
    assert.equal(await card('nightly-backup').locator('.waiters li').count(), 2);
    await shows(XSS_SCRIPT, '<b>label</b>', 'the markup name, as text, with its markup label as text');
    await shows(XSS_IMG, 'held', 'the second markup name');
    await shows('pool', '2 permits used', 'the semaphore');
    await shows('scheduler', 'leader: <i>node-1</i>', "the election's leader value, as text");
    assert.equal(await page.evaluate('globalThis.__pwned'), undefined, 'no script ran');
    assert.equal(await page.locator('main script, main img, main b, main i').count(), 0, 'no element came from data');
    await page.screenshot({ path: join(SHOTS, 'dashboard.png'), fullPage: true });
    stop.abort();
    await Promise.all(waiters);
  });

  it('reconnects after the server drops the stream, and gets a fresh snapshot', async () => {
    const before = streams;
    for (const socket of sockets) socket.destroy();
    await until(() => streams > before, 'the page opens a new stream', { ms: 15_000 });
    const b = createBaton(createSqliteStore({ path: join(dir, 'locks.db') }), { holder: { label: 'after reconnect' } });
    batons.push(b);
    await b.mutex('late').acquire({ ttlMs: 60_000 });
    await shows('late', 'after reconnect', 'a lock taken after the reconnection');
    await until(async () => (await page.locator('#stream').textContent()) === 'live', 'the stream is live again', { ms: 10_000 });
  });

  it('force-releases a lock from a page opened with the admin token, and offers nothing without it', async () => {
    const admin = createDashboardHandler(createSqliteStore({ path: join(dir, 'locks.db') }), { pollMs: 250, admin: true });
    const adminServer = createServer(admin);
    await new Promise<void>((resolve) => adminServer.listen(0, '127.0.0.1', resolve));
    const adminBase = `http://127.0.0.1:${(adminServer.address() as { port: number }).port}/`;
    const holderBaton = createBaton(createSqliteStore({ path: join(dir, 'locks.db') }), { holder: { label: 'stuck job' } });
    batons.push(holderBaton);
    const lease = await holderBaton.mutex('stuck').acquire({ ttlMs: 60_000 });
    const other = await browser.newPage();
    try {
      await other.goto(adminBase);
      const stuck = other.locator('article.lock', { has: other.locator('.name', { hasText: 'stuck' }) });
      await until(async () => ((await stuck.count()) > 0 && ((await stuck.first().textContent()) ?? '').includes('stuck job')), 'the lock shows', { ms: 15_000 });
      assert.equal(await stuck.locator('button.admin').count(), 0, 'no admin button without the token');
      // A change of the fragment alone does not load the page again: reload it with the token.
      await other.goto(`${adminBase}#token=${admin.adminToken}`);
      await other.reload();
      other.on('dialog', (dialog) => void dialog.accept());
      await stuck.locator('button.admin').first().click({ timeout: 15_000 });
      await until(async () => ((await other.locator('#changes').textContent()) ?? '').includes('force-released: mutex stuck (1 holder)'), 'the force-release is logged', { ms: 15_000 });
      await until(async () => ((await stuck.first().textContent()) ?? '').includes('free'), 'the lock shows free', { ms: 15_000 });
      await assert.rejects(lease.extend(), { code: 'LEASE_LOST', reason: 'revoked' });
    } finally {
      await other.close();
      await admin.close();
      await new Promise<void>((resolve) => {
        adminServer.close(() => resolve());
        adminServer.closeAllConnections();
      });
    }
  });

  it('shows a store that does not answer as unreachable, with why', async () => {
    const other = await browser.newPage();
    try {
      await other.goto(`${base}down/`);
      await until(async () => ((await other.locator('#health').getAttribute('class')) ?? '').includes('unreachable'), 'the unreachable state', { ms: 15_000 });
      assert.match((await other.locator('#health-text').textContent()) ?? '', /memory store: unreachable · Cannot reach the store at memory: \(injected\)/);
      assert.match((await other.locator('footer').textContent()) ?? '', /no listing yet/);
      await other.screenshot({ path: join(SHOTS, 'dashboard-unreachable.png') });
    } finally {
      await other.close();
    }
  });
});
