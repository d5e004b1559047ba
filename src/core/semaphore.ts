import { Lock, type LockHost } from './lock.js';
import type { SemaphoreOptions } from './options.js';
import { checkName, checkOptions, checkPositiveInteger } from './validate.js';

/**
 * Semaphore: a lock with `permits` shared holders at a time. Every entry carries its own
 * limit, so a user who asks with a different count is judged by its own; every user of one
 * semaphore should agree on it.
 */
export class Semaphore<Token extends bigint | null = bigint> extends Lock<Token> {
  /** @internal */
  constructor(host: LockHost<Token>, name: string, options: SemaphoreOptions) {
    const key = { kind: 'semaphore' as const, name: checkName(name) };
    const o = checkOptions<SemaphoreOptions>(options, 'options', ['permits']);
    super(host, key, 'shared', checkPositiveInteger(o.permits, 'permits'));
  }
}
