/**
 * Expiry without a shared clock, as Amazon's DynamoDB lock client does it: DynamoDB has no
 * server clock that a condition could compare with, so each entry carries its lease duration
 * and a record version (`rv`) that its owner changes on every write of it (a grant, a
 * renewal, a queued waiter's refresh). Another process may remove the entry only once it has
 * seen the same record version for a whole lease duration on its own monotonic clock.
 *
 * Why that is safe: the owner counts its lease from before it sent the write that made the
 * record version; whoever sees that version saw it after the write, so counting a lease from
 * then ends no earlier than the owner's own deadline, whatever the two wall clocks say. What
 * it costs: a process that first looks at a lock long after its holder died still waits one
 * whole lease from that first look.
 *
 * `Observations` keeps, per item and owner, the record version last seen and when it was
 * first seen. One instance is shared by every store made on one client object (they run on
 * one host's monotonic clock, so the first sight by any of them counts for all), and it stays
 * small: an item's record drops entries that are gone, and past `MAX_ITEMS` items the oldest
 * records are forgotten (a forgotten sight only makes the next one count from later).
 */

/** MAX_ITEMS: items whose sights are kept; past it the least recently seen are forgotten. */
const MAX_ITEMS = 10_000;

interface Sight {
  readonly rv: string;
  readonly at: number;
}

/** Observations: when this process first saw each entry's current record version. */
export class Observations {
  readonly #items = new Map<string, Map<string, Sight>>();

  /**
   * see records what a read (or a write of ours) showed of one item at `now`, taken once the
   * answer had arrived: entries with a new record version are first seen now; entries no
   * longer there are forgotten. `entries` empty, or the item gone, forgets the item.
   */
  see(item: string, entries: readonly { readonly owner: string; readonly rv: string }[], now: number): void {
    const before = this.#items.get(item);
    this.#items.delete(item);
    if (entries.length === 0) return;
    const after = new Map<string, Sight>();
    for (const { owner, rv } of entries) {
      const sight = before?.get(owner);
      after.set(owner, sight?.rv === rv ? sight : { rv, at: now });
    }
    this.#items.set(item, after);
    if (this.#items.size > MAX_ITEMS) this.#items.delete(this.#items.keys().next().value!);
  }

  /** seenSince: when the entry's record version `rv` was first seen, `now` if it was never seen (`see` runs before every decision, so that is rare). */
  seenSince(item: string, owner: string, rv: string, now: number): number {
    const sight = this.#items.get(item)?.get(owner);
    return sight?.rv === rv ? sight.at : now;
  }
}

const shared = new WeakMap<object, Observations>();

/** observationsOf: the one `Observations` of every store made on `client`. */
export function observationsOf(client: object): Observations {
  let observations = shared.get(client);
  if (!observations) {
    observations = new Observations();
    shared.set(client, observations);
  }
  return observations;
}
