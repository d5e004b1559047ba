/**
 * TLS and AUTH pass through the client the user gives: the store sends commands, the client
 * speaks TLS and authenticates. Real redis-servers on loopback that take TLS only (with
 * openssl-made certificates) and ask for a password; one also asks for client certificates.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { createBaton, StoreUnavailableError } from '../../src/index.js';
import { createRedisStore, type RedisClient } from '../../src/stores/redis/index.js';
import { openStore } from '../../src/url.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { makeCertificates, type Certificates } from '../helpers/tls.js';

const PASSWORD = 'tls-s3cret';
let dir: string;
let certs: Certificates;
let server: RedisServer;
let mutual: RedisServer;
let plain: RedisServer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'baton-redis-tls-'));
  certs = makeCertificates(dir);
  const tls = { ca: certs.ca, cert: certs.serverCert, key: certs.serverKey };
  server = await startRedis([], { tls, password: PASSWORD });
  mutual = await startRedis([], { tls: { ...tls, clientCertificates: true }, password: PASSWORD });
  plain = await startRedis([], { password: PASSWORD });
});
after(async () => {
  await Promise.all([server, mutual, plain].map((s) => s?.stop()));
  rmSync(dir, { recursive: true, force: true });
});

/** On two clients from `connect`: takes a lock, sees the second client wait for it, and hands it on; then `end`s both clients. */
async function exercise<C extends RedisClient>(connect: () => C | Promise<C>, end: (client: C) => void): Promise<void> {
  const [one, two] = await Promise.all([connect(), connect()]);
  const a = createBaton(createRedisStore(one));
  const b = createBaton(createRedisStore(two));
  try {
    const lease = await a.mutex('tls').acquire({ ttlMs: 5000 });
    assert.equal(typeof lease.token, 'bigint');
    assert.equal(await b.mutex('tls').tryAcquire(), null);
    const next = b.mutex('tls').acquire({ ttlMs: 5000 });
    await lease.release();
    const second = await next;
    assert.ok(second.token > lease.token);
    await second.release();
  } finally {
    await a.close();
    await b.close();
    end(one);
    end(two);
  }
}

describe('redis: TLS and AUTH through the client', () => {
  it('ioredis with TLS and a password', async () => {
    await exercise(() => new Redis({ host: '127.0.0.1', port: server.port, password: PASSWORD, tls: { ca: readFileSync(certs.ca) } }), (client) => client.disconnect());
  });

  it('node-redis with TLS and a password', async () => {
    await exercise(() => createClient({ url: `rediss://:${PASSWORD}@127.0.0.1:${server.port}`, socket: { tls: true, ca: readFileSync(certs.ca) } }).connect(), (client) => client.destroy());
  });

  it('ioredis with a client certificate, where the server asks for one', async () => {
    const tls = { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) };
    await exercise(() => new Redis({ host: '127.0.0.1', port: mutual.port, password: PASSWORD, tls }), (client) => client.disconnect());
  });

  it('a client without the password gets StoreUnavailableError from the store', async () => {
    const client = new Redis({ host: '127.0.0.1', port: server.port, tls: { ca: readFileSync(certs.ca) }, maxRetriesPerRequest: 0, lazyConnect: true });
    client.on('error', () => undefined);
    const baton = createBaton(createRedisStore(client));
    try {
      await assert.rejects(baton.mutex('tls').tryAcquire(), (error: unknown) => error instanceof StoreUnavailableError && /NOAUTH/.test(error.message));
    } finally {
      await baton.close();
      client.disconnect();
    }
  });

  it('a URL with the password opens the store; a wrong one fails without showing it', async () => {
    const baton = createBaton(await openStore(`redis://:${PASSWORD}@127.0.0.1:${plain.port}?prefix=auth`));
    try {
      await (await baton.mutex('auth').acquire({ ttlMs: 5000 })).release();
    } finally {
      await baton.close();
    }
    await assert.rejects(openStore(`redis://:wrong-horse@127.0.0.1:${plain.port}`), (error: unknown) => {
      assert.ok(error instanceof StoreUnavailableError, String(error));
      assert.doesNotMatch(error.message, /wrong-horse/);
      assert.doesNotMatch(JSON.stringify(error, Object.getOwnPropertyNames(error)), /wrong-horse/);
      return true;
    });
  });
});
