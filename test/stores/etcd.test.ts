import { after, before } from 'node:test';
import { runContractSuite } from '../contract/suite.js';
import { etcdBacking, startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

runContractSuite({ name: 'etcd (one member)', scale: 2, sessionTtlMs: 1000, backing: etcdBacking(() => cluster) });
