import { Lock, type LockHost } from './lock.js';
import { checkName } from './validate.js';

/** Mutex: a lock with one exclusive holder at a time. Waiters are served in arrival order. */
export class Mutex<Token extends bigint | null = bigint> extends Lock<Token> {
  /** @internal */
  constructor(host: LockHost<Token>, name: string) {
    super(host, { kind: 'mutex', name: checkName(name) }, 'exclusive', 1);
  }
}
