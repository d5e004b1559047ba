/**
 * Register: the fenced register and its unfenced twin, as one object. `fenced` checks the
 * token on every access, reads included: an access with a token lower than the highest it
 * has seen is refused, and any other raises that highest token. (Checking only writes is not
 * enough for a read-modify-write: a stale holder's write can land between the new holder's
 * read and its write, and the new holder then overwrites it; the fault suite found exactly
 * that.) Its `unfenced` twin accepts everything. `register-server.ts` serves it to worker
 * processes; the in-process runner calls it directly.
 */
import { monotonicNow } from '../../src/index.js';
import type { RegisterWrite } from './checkers.js';

export class Register {
  readonly #fenced = { value: 0, token: 0n };
  readonly #unfenced = { value: 0 };
  readonly #record: (write: RegisterWrite) => void;

  /** record receives every write and its outcome, in the order they were applied. */
  constructor(record: (write: RegisterWrite) => void) {
    this.#record = record;
  }

  read(token: bigint): { fenced: { value: number; token: string; accepted: boolean }; unfenced: { value: number } } {
    const accepted = token >= this.#fenced.token;
    if (accepted) this.#fenced.token = token;
    return { fenced: { value: this.#fenced.value, token: String(this.#fenced.token), accepted }, unfenced: { ...this.#unfenced } };
  }

  write(write: { register: 'fenced' | 'unfenced'; worker: string; token: string; value: number }): boolean {
    const token = BigInt(write.token);
    let accepted: boolean;
    let previous: number;
    if (write.register === 'fenced') {
      previous = this.#fenced.value;
      accepted = token >= this.#fenced.token;
      if (accepted) Object.assign(this.#fenced, { value: write.value, token });
    } else {
      previous = this.#unfenced.value;
      accepted = true;
      this.#unfenced.value = write.value;
    }
    this.#record({ at: monotonicNow(), ...write, previous, accepted });
    return accepted;
  }
}
