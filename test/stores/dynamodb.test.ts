/**
 * The DynamoDB store against dynalite (DynamoDB's API, in a process of its own on loopback,
 * its data on disk so that a restart keeps it). The contract suite runs with the stores of
 * one backing sharing one client, as the stores of one process would: they share what they
 * have seen of each entry (observations.ts), so a lease's expiry counts from its write.
 * Expiry as other processes see it is tested with real processes in dynamodb-processes.test.ts.
 */
import { after, before } from 'node:test';
import { createDynamoDbStore } from '../../src/stores/dynamodb/index.js';
import { runContractSuite } from '../contract/suite.js';
import { startDynalite, type DynaliteServer } from '../helpers/dynalite-server.js';

let server: DynaliteServer;
before(async () => {
  server = await startDynalite();
});
after(() => server.stop());

runContractSuite({
  name: 'dynamodb (dynalite)',
  backing: async () => {
    // A fresh table is a fresh, empty place on the same server.
    const table = await server.table();
    const client = server.client();
    return {
      connect: () => createDynamoDbStore(client, { table }),
      restart: () => server.restart(),
      cleanup: async () => undefined,
    };
  },
  skip: {
    'a release wakes one waiter, not all of them': 'DynamoDB cannot notify (guarantees.notify is false): every queued waiter polls with backoff, one strongly consistent read a poll',
  },
});
