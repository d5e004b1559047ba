import { Lock, type LockHost } from './lock.js';
import type { SemaphoreOptions } from './options.js';
import { checkName, checkOptions, checkPositiveInteger } from './validate.js';

/**
 * Semaphore: a lock with `permits` shared holders at a time. Its users agree on `permits`:
 * an acquisition with other permits than the current holders and waiters use is refused with
 * `PermitsMismatchError`, and permits change once no one holds or waits.
 */
export class Semaphore<Token extends bigint | null = bigint> extends Lock<Token> {
  /** @internal */
  constructor(host: LockHost<Token>, name: string, options: SemaphoreOptions) {
    const key = { kind: 'semaphore' as const, name: checkName(name) };
    const o = checkOptions<SemaphoreOptions>(options, 'options', ['permits']);
    super(host, key, 'shared', checkPositiveInteger(o.permits, 'permits'));
  }
}
