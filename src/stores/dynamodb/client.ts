/**
 * What the DynamoDB store calls on the user's client: `send` with a command of
 * `@aws-sdk/client-dynamodb` v3 and an abort signal, and nothing else. The client is typed by
 * that one method, so any `DynamoDBClient` (or a wrapper with the same `send`) fits, and the
 * SDK's types never reach the rest of baton.
 */

/** DynamoDbClient: a `DynamoDBClient` of `@aws-sdk/client-dynamodb` v3, as the store uses it. */
export interface DynamoDbClient {
  send(command: unknown, options?: { abortSignal?: AbortSignal }): Promise<unknown>;
}

/** Attr: one DynamoDB attribute value in the wire format the store reads and writes (a subset). */
export interface Attr {
  readonly S?: string;
  readonly N?: string;
  readonly BOOL?: boolean;
  readonly L?: readonly Attr[];
  readonly M?: Readonly<Record<string, Attr>>;
}

/** AttrMap: an item, or a key, in the wire format. */
export type AttrMap = Readonly<Record<string, Attr>>;

/** The DynamoDB error names that mean "too many requests, ask again later": retried with backoff within the call's deadline. */
export const THROTTLED = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'LimitExceededException',
  'InternalServerError',
  'InternalFailure',
  'ServiceUnavailable',
  'TransactionConflictException',
]);

/** errorName: the `name` of an SDK error (its exception's type), or '' for anything else. */
export function errorName(error: unknown): string {
  return error instanceof Error ? error.name : '';
}

/** isNetworkError: the request never got an answer from the endpoint (refused, reset, timed out, DNS). */
export function isNetworkError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|ENOTFOUND|EAI_AGAIN|ECONNABORTED)$/.test(code);
}
