import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
import { createEtcdStore } from '../../src/stores/etcd/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';

let cluster: EtcdCluster;
before(async () => {
  cluster = await startEtcd(1);
});
after(() => cluster.stop());

runContractSuite({
  name: 'etcd (one member)',
  scale: 2,
  sessionTtlMs: 1000,
  backing: async () => {
    // A fresh key prefix is a fresh, empty place on the same member; each connect is a store with its own session.
    const prefix = `t${randomBytes(4).toString('hex')}/`;
    const client = cluster.client();
    return {
      connect: () => createEtcdStore(client, { prefix, sessionTtlMs: 1000 }),
      restart: () => cluster.restart(),
      cleanup: async () => client.close(),
    };
  },
});
