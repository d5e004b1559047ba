import { after, before } from 'node:test';
import { runContractSuite } from '../contract/suite.js';
import { startZooKeeper, zookeeperBacking, type ZooKeeperEnsemble } from '../helpers/zookeeper-server.js';

let server: ZooKeeperEnsemble;
before(async () => {
  server = await startZooKeeper(1);
});
after(() => server.stop());

runContractSuite({ name: 'zookeeper (one server)', scale: 2, sessionTtlMs: 1000, backing: zookeeperBacking(() => server) });
