/**
 * The DynamoDB store (`baton-lock/dynamodb`): locks in a DynamoDB table, one item per lock,
 * every change a conditional write, expiry without a trusted clock.
 * - `store.ts`: DynamoDbStore, the store contract on one item per lock.
 * - `observations.ts`: the expiry rule, a record version seen unchanged for a whole lease.
 * - `item.ts`: what an item holds.
 * - `table.ts`: the table's definition and `ensureTable`.
 * - `client.ts`: what the store calls on a `DynamoDBClient`.
 */
export type { DynamoDbClient } from './client.js';
export { createDynamoDbStore, DynamoDbStore, type DynamoDbStoreOptions } from './store.js';
export { ensureTable, tableDefinition, type EnsureTableOptions } from './table.js';
