// A lock on etcd, with your own etcd3 client. Two instances (each with its own client, as
// two processes would have) want the same lock: the second waits in line, and gets it when
// the first releases it, with a higher token (the token is the key's etcd revision).
//
// ETCD_URL names the members, comma-separated (default http://127.0.0.1:2379).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Etcd3 } from 'etcd3';
import { createBaton } from 'baton-lock';
import { createEtcdStore } from 'baton-lock/etcd';

const hosts = (process.env.ETCD_URL ?? 'http://127.0.0.1:2379').split(',');

// TLS and auth are the client's options (`credentials`, `auth`); closeClient: baton.close() also closes the client.
const connect = () => createBaton(createEtcdStore(new Etcd3({ hosts, dialTimeout: 2_000 }), { closeClient: true }));

const a = connect();
const b = connect();
try {
  const first = await a.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance a holds "invoice-run" on ${hosts.join(', ')} with token ${first.token}`);

  // b waits in line (`contended` says it does); a's release hands it the lock.
  const inLine = once(b, 'contended');
  const waiting = b.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  await inLine;
  console.log('instance b waits in line');
  await first.release();
  const second = await waiting;
  console.log(`instance b holds "invoice-run" with token ${second.token}`);
  assert.ok(second.token > first.token, 'the next holder gets a higher token');
  await second.release();
} finally {
  await Promise.all([a.close(), b.close()]);
}
