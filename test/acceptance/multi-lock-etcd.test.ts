/** Multi-lock acceptance (multi-lock-run.ts) on one etcd member. */
import { after, before, it } from 'node:test';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';
import { runMultiLock } from './multi-lock-run.js';

let etcd: EtcdCluster;
before(async () => {
  etcd = await startEtcd(1);
});
after(async () => {
  await etcd?.stop();
});

it('lockAll across 8 processes on etcd: no deadlock, no two holders of a name', async (t) => runMultiLock(t, 'etcd', `etcd://${etcd.endpoints[0]!.replace('http://', '')}`, true));
