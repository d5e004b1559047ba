/** The fault proxy against a real TCP echo server on loopback. */
import assert from 'node:assert/strict';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { createFaultProxy, type FaultProxy } from './proxy.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('fault proxy', () => {
  let echo: Server;
  let proxy: FaultProxy;
  let serverGot = '';
  const sockets: Socket[] = [];

  before(async () => {
    echo = createServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        serverGot += chunk.toString();
        socket.write(chunk);
      });
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    proxy = await createFaultProxy({ port: typeof address === 'object' && address ? address.port : 0 });
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await proxy.close();
    await new Promise((resolve) => echo.close(resolve));
  });

  /** A client through the proxy that collects what comes back and how it ended. */
  async function client(): Promise<{ socket: Socket; got: () => string; error: () => NodeJS.ErrnoException | null }> {
    const socket = connect({ host: '127.0.0.1', port: proxy.port });
    sockets.push(socket);
    let got = '';
    let error: NodeJS.ErrnoException | null = null;
    socket.on('data', (chunk: Buffer) => (got += chunk.toString()));
    socket.on('error', (e: NodeJS.ErrnoException) => (error = e));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    await sleep(20);
    return { socket, got: () => got, error: () => error };
  }

  async function until(condition: () => boolean, ms: number): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (condition()) return true;
      await sleep(5);
    }
    return condition();
  }

  it('pass: bytes flow both ways', async () => {
    proxy.set('pass');
    const c = await client();
    c.socket.write('hello');
    assert.ok(await until(() => c.got() === 'hello', 2000));
  });

  it('latency: each direction is held, order is kept', async () => {
    proxy.set('latency', { latencyMs: 100, jitterMs: 30 });
    const c = await client();
    const started = Date.now();
    for (const part of ['a', 'b', 'c', 'd']) c.socket.write(part);
    assert.ok(await until(() => c.got().length === 4, 3000));
    assert.equal(c.got(), 'abcd');
    assert.ok(Date.now() - started >= 2 * 70, `round trip took ${Date.now() - started} ms, less than two held chunks`);
    proxy.set('pass');
  });

  it('blackhole: nothing arrives and nothing errors; when it heals, what was sent arrives in order', async () => {
    proxy.set('pass');
    const c = await client();
    serverGot = '';
    proxy.set('blackhole');
    c.socket.write('held');
    assert.equal(await until(() => c.got() !== '' || serverGot !== '', 300), false);
    assert.equal(c.error(), null);
    assert.equal(c.socket.destroyed, false);
    proxy.set('pass');
    c.socket.write('back');
    assert.ok(await until(() => c.got() === 'heldback', 2000), `got ${c.got()}`);
    assert.equal(serverGot, 'heldback');
  });

  it('half-open: requests reach the server, replies are dropped; the broken connection is reset when it ends', async () => {
    proxy.set('pass');
    const c = await client();
    serverGot = '';
    proxy.set('half-open');
    c.socket.write('ping');
    assert.ok(await until(() => serverGot === 'ping', 2000));
    assert.equal(await until(() => c.got() !== '', 300), false);
    const fresh = await client();
    proxy.set('pass');
    assert.ok(await until(() => c.error() !== null, 2000), 'the half-open connection was not reset');
    assert.equal(c.error()!.code, 'ECONNRESET');
    fresh.socket.write('ok');
    assert.ok(await until(() => fresh.got() === 'ok', 2000), 'a connection that lost no reply carries on');
  });

  it('reset: open connections are reset, new ones too', async () => {
    proxy.set('pass');
    const c = await client();
    proxy.set('reset');
    assert.ok(await until(() => c.error() !== null, 2000), 'the open connection was not reset');
    assert.equal(c.error()!.code, 'ECONNRESET');
    const late = connect({ host: '127.0.0.1', port: proxy.port });
    sockets.push(late);
    const failure = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      late.once('error', resolve);
      late.once('close', () => resolve(null));
    });
    assert.equal(failure?.code, 'ECONNRESET');
    assert.equal(proxy.connections, 0);
    proxy.set('pass');
  });
});
