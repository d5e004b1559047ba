/**
 * etcd over TLS and with authentication, on real members on loopback: certificates made with
 * `openssl` at test time, users and roles made with the real `etcdctl`. Store URLs carry the
 * CA, the client certificate and the credentials; no password ever shows in an error or in
 * the CLI's output.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { StoreUnavailableError, createBaton } from '../../src/index.js';
import { openStore } from '../../src/url.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';
import { makeCertificates, type Certificates } from '../helpers/tls.js';

const run = promisify(execFile);
const cli = resolve('build/src/cli/main.js');
const hostOf = (endpoint: string): string => endpoint.replace(/^https?:\/\//, '');

let dir: string;
let certs: Certificates;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'baton-etcd-tls-'));
  certs = makeCertificates(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** Takes a mutex, sees it held from a second store, and releases it: the store works end to end. */
async function exercise(url: string): Promise<void> {
  const a = createBaton(await openStore(url));
  const b = createBaton(await openStore(url));
  try {
    const lease = await a.mutex('tls').acquire({ ttlMs: 5000 });
    assert.equal(typeof lease.token, 'bigint');
    assert.equal(await b.mutex('tls').tryAcquire(), null);
    const waiting = b.mutex('tls').acquire({ ttlMs: 5000, timeoutMs: 20_000 });
    while ((await a.inspect('tls')).waiters.length < 1) await new Promise((r) => setTimeout(r, 10));
    await lease.release();
    const next = await waiting;
    assert.ok(next.token! > lease.token!);
    await next.release();
  } finally {
    await b.close();
    await a.close();
  }
}

describe('etcd over TLS (etcds://)', () => {
  let member: EtcdCluster;
  before(async () => {
    member = await startEtcd(1, { tls: { ...certs, clientCertAuth: false } });
  });
  after(() => member.stop());

  it('connects with the CA given in the URL, and fails with StoreUnavailableError without it or over plain etcd://', async () => {
    const host = hostOf(member.endpoints[0]!);
    await exercise(`etcds://${host}?ca=${certs.ca}&prefix=tls/`);
    // The members' certificate is signed by a CA the system does not trust.
    await assert.rejects(openStore(`etcds://${host}`), StoreUnavailableError);
    await assert.rejects(openStore(`etcd://${host}`), StoreUnavailableError);
  });
});

describe('etcd over TLS with client certificates (etcds://...?cert=&key=)', () => {
  let member: EtcdCluster;
  before(async () => {
    member = await startEtcd(1, { tls: { ...certs, clientCertAuth: true } });
  });
  after(() => member.stop());

  it('connects with the client certificate and key given in the URL; a member that requires one refuses a client without', async () => {
    const host = hostOf(member.endpoints[0]!);
    await exercise(`etcds://${host}?ca=${certs.ca}&cert=${certs.clientCert}&key=${certs.clientKey}`);
    await assert.rejects(openStore(`etcds://${host}?ca=${certs.ca}`), StoreUnavailableError);
  });
});

describe('etcd with authentication (etcd://user:password@)', () => {
  let member: EtcdCluster;
  // A password with characters that must be percent-escaped in a URL.
  const password = 's3cr@t/pw';
  const escaped = encodeURIComponent(password);
  before(async () => {
    member = await startEtcd(1);
    const etcdctl = (...args: string[]): Promise<unknown> => run('etcdctl', [`--endpoints=${member.endpoints[0]}`, ...args]);
    // The least a baton user needs: read and write under its prefix (leases and watches come with it).
    await etcdctl('user', 'add', 'root:rootpw');
    await etcdctl('user', 'grant-role', 'root', 'root');
    await etcdctl('role', 'add', 'baton-app');
    await etcdctl('role', 'grant-permission', 'baton-app', '--prefix=true', 'readwrite', 'baton/');
    await etcdctl('user', 'add', `app:${password}`);
    await etcdctl('user', 'grant-role', 'app', 'baton-app');
    await etcdctl('auth', 'enable');
  });
  after(() => member.stop());

  it('a user with read and write on the prefix only can lock, wait and release', async () => {
    await exercise(`etcd://app:${escaped}@${hostOf(member.endpoints[0]!)}`);
  });

  it('a wrong password or no credentials fail with StoreUnavailableError, and no message repeats the password', async () => {
    const host = hostOf(member.endpoints[0]!);
    const wrong = 'hunter2-wrong';
    for (const url of [`etcd://app:${wrong}@${host}`, `etcd://${host}`, `etcd://nobody:${escaped}@${host}`]) {
      await assert.rejects(openStore(url), (error: unknown) => {
        assert.ok(error instanceof StoreUnavailableError, String(error));
        for (const secret of [wrong, password, escaped]) {
          assert.ok(!error.message.includes(secret), `the message repeats a password: ${error.message}`);
          assert.ok(!String((error.cause as Error | undefined)?.message ?? '').includes(secret), 'the cause repeats a password');
        }
        return true;
      });
    }
  });

  it('the CLI lists and runs on an authenticated URL without printing the password; a wrong one fails without printing it', async () => {
    const url = `etcd://app:${escaped}@${hostOf(member.endpoints[0]!)}`;
    const holding = await run(process.execPath, [cli, '--store', url, 'run', 'job', '--', 'sh', '-c', `${process.execPath} ${cli} --store '${url}' ls; ${process.execPath} ${cli} --store '${url}' ls --json`]);
    assert.match(holding.stdout, /job/);
    for (const output of [holding.stdout, holding.stderr]) {
      assert.ok(!output.includes(password) && !output.includes(escaped), `the CLI printed the password: ${output}`);
    }
    const failed = await run(process.execPath, [cli, '--store', `etcd://app:hunter2-wrong@${hostOf(member.endpoints[0]!)}`, 'ls']).then(
      () => assert.fail('ls with a wrong password succeeded'),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    assert.notEqual(failed.code, 0);
    assert.match(failed.stderr, /etcd/);
    assert.ok(!`${failed.stdout}${failed.stderr}`.includes('hunter2-wrong'), `the CLI printed the password: ${failed.stderr}`);
  });
});
