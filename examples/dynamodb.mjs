// A lock in a DynamoDB table, with your own DynamoDBClient. Two instances (each with its own
// client, as two processes would have) want the same lock: the second waits in line (it polls:
// DynamoDB cannot notify), and gets it once the first releases it, with a higher token.
//
// DYNAMODB_ENDPOINT names an endpoint of your own (DynamoDB Local, dynalite); without it, the
// SDK's default endpoint for AWS_REGION. Credentials come from the SDK's usual chain.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createBaton } from 'baton-lock';
import { createDynamoDbStore, ensureTable } from 'baton-lock/dynamodb';

const endpoint = process.env.DYNAMODB_ENDPOINT;
const client = () => new DynamoDBClient({ region: process.env.AWS_REGION ?? 'us-east-1', ...(endpoint ? { endpoint } : {}) });

// Once, or in your infrastructure code: one string partition key `pk`, on-demand billing, no TTL.
const admin = client();
await ensureTable(admin, { table: 'example-locks' });
admin.destroy();

// closeClient: baton.close() also destroys the client.
const connect = () => createBaton(createDynamoDbStore(client(), { table: 'example-locks', closeClient: true }));
const a = connect();
const b = connect();
try {
  const first = await a.mutex('invoice-run').acquire({ ttlMs: 10_000, timeoutMs: 5_000 });
  console.log(`instance a holds "invoice-run" with token ${first.token}`);

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
