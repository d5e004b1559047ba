/**
 * The lock table: its definition, and `ensureTable`, which makes it when it is missing.
 *
 * One string partition key (`pk` unless told otherwise), no sort key, on-demand billing
 * (`PAY_PER_REQUEST`): locks are bursty and small. No DynamoDB TTL on any attribute of the
 * store's items: a TTL deletion would take a lock's fence with it, and tokens would go back.
 */
import { CreateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { monotonicNow } from '../../core/clock.js';
import { checkDuration, checkOptions, checkSignal } from '../../core/validate.js';
import { InvalidArgumentError, StoreUnavailableError } from '../../errors.js';
import { errorName, type DynamoDbClient } from './client.js';

/** EnsureTableOptions configures `ensureTable`. */
export interface EnsureTableOptions {
  /** The table's name. Required. */
  table: string;
  /** The partition key attribute's name, as the store is told. Default `pk`. */
  partitionKey?: string;
  /** Longest wait for the table to become active, in ms. Default 60 000. */
  timeoutMs?: number;
  /** Aborts the wait. */
  signal?: AbortSignal;
}

/** tableDefinition: the `CreateTable` input of a lock table, for infrastructure code (CloudFormation, CDK, Terraform say the same). */
export function tableDefinition(table: string, partitionKey = 'pk'): {
  TableName: string;
  AttributeDefinitions: { AttributeName: string; AttributeType: 'S' }[];
  KeySchema: { AttributeName: string; KeyType: 'HASH' }[];
  BillingMode: 'PAY_PER_REQUEST';
} {
  return {
    TableName: table,
    AttributeDefinitions: [{ AttributeName: partitionKey, AttributeType: 'S' }],
    KeySchema: [{ AttributeName: partitionKey, KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
  };
}

interface TableDescription {
  TableStatus?: string;
  KeySchema?: { AttributeName?: string; KeyType?: string }[];
  AttributeDefinitions?: { AttributeName?: string; AttributeType?: string }[];
}

/**
 * ensureTable makes the lock table when it is missing and waits until it is active; an
 * existing table is checked: its key must be one string partition key of the expected name.
 * Answers `created` or `exists`. Rejects with `StoreUnavailableError` when DynamoDB cannot
 * be reached or the table is not active by `timeoutMs`, with `InvalidArgumentError` for a
 * table whose key is another.
 */
export async function ensureTable(client: DynamoDbClient, options: EnsureTableOptions): Promise<'created' | 'exists'> {
  const o = checkOptions<EnsureTableOptions>(options, 'options', ['table', 'partitionKey', 'timeoutMs', 'signal']);
  if (typeof o.table !== 'string' || !/^[A-Za-z0-9_.-]{3,255}$/.test(o.table)) {
    throw new InvalidArgumentError('table', `Expected \`table\` to be a DynamoDB table name (3 to 255 of A-Z a-z 0-9 _ . -), got ${JSON.stringify(o.table)}`);
  }
  const table = o.table;
  const partitionKey = o.partitionKey ?? 'pk';
  const deadline = monotonicNow() + checkDuration(o.timeoutMs ?? 60_000, 'timeoutMs');
  const signal = checkSignal(o.signal);
  const send = async (command: unknown): Promise<unknown> => {
    const left = deadline - monotonicNow();
    if (left <= 0) throw new StoreUnavailableError('dynamodb', `The DynamoDB table "${table}" was not active within ${o.timeoutMs ?? 60_000} ms`);
    const bound = AbortSignal.timeout(Math.ceil(left));
    return client.send(command, { abortSignal: signal ? AbortSignal.any([signal, bound]) : bound });
  };
  const fail = (error: unknown): never => {
    signal?.throwIfAborted();
    if (error instanceof StoreUnavailableError || error instanceof InvalidArgumentError) throw error;
    throw new StoreUnavailableError('dynamodb', `Cannot make sure the DynamoDB table "${table}" exists: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  };
  let created = false;
  try {
    for (;;) {
      let description: TableDescription | undefined;
      try {
        description = ((await send(new DescribeTableCommand({ TableName: table }))) as { Table?: TableDescription }).Table;
      } catch (error) {
        if (errorName(error) !== 'ResourceNotFoundException') throw error;
      }
      if (!description) {
        try {
          await send(new CreateTableCommand(tableDefinition(table, partitionKey)));
          created = true;
        } catch (error) {
          // Made meanwhile by someone else: wait for it like for ours.
          if (errorName(error) !== 'ResourceInUseException') throw error;
        }
        continue;
      }
      checkKey(table, partitionKey, description);
      if (description.TableStatus === 'ACTIVE') return created ? 'created' : 'exists';
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  } catch (error) {
    return fail(error);
  }
}

/** checkKey: the table's key is one string partition key named `partitionKey`, as the store writes it. */
function checkKey(table: string, partitionKey: string, description: TableDescription): void {
  const keys = description.KeySchema ?? [];
  const type = description.AttributeDefinitions?.find((a) => a.AttributeName === partitionKey)?.AttributeType;
  if (keys.length !== 1 || keys[0]!.AttributeName !== partitionKey || keys[0]!.KeyType !== 'HASH' || type !== 'S') {
    const has = keys.map((k) => `${k.AttributeName} (${k.KeyType})`).join(', ');
    throw new InvalidArgumentError('table', `The DynamoDB table "${table}" has the key ${has || 'none'}; a lock table has one string partition key named "${partitionKey}" and no sort key`);
  }
}
