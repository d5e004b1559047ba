/**
 * The item of one resource, as the DynamoDB store keeps it (see docs/dynamodb.md):
 *
 *   pk       S   `${prefix}:${kind}:${name}` (the partition key; its attribute name is an option)
 *   kind     S   the lock kind; name S the lock name
 *   v        N   the item's version: every write is conditional on it and sets it one higher
 *   fence    N   the last fencing token issued; only ever raised (`ADD`), never reset
 *   seq      N   the next arrival number
 *   entries  L   the holders and queued waiters, each a map:
 *                owner S, seq N, mode S (exclusive | shared), limit N, held BOOL,
 *                ttlMs N (its lease, or its queued place's, duration), rv S (its record
 *                version, new on every write of it by its owner), token N (holders),
 *                value S (optional), expiresAt N (wall-clock mode only: the owner's
 *                Date.now() + ttlMs when it wrote it)
 *
 * No attribute of it is ever a DynamoDB TTL attribute: a TTL deletion would take the fence.
 */
import type { QueueEntry } from '../../core/queue.js';
import type { LockKind } from '../../store.js';
import type { Attr, AttrMap } from './client.js';

/** StoredEntry: one entry as it is in the item: a queue entry without an expiry on anyone's clock, with its record version. */
export interface StoredEntry extends Omit<QueueEntry, 'expiresAt'> {
  readonly rv: string;
  /** Wall-clock mode only: the owner's `Date.now()` + `ttlMs` when it wrote the entry. */
  readonly expiresAt?: number;
}

/** StoredItem: one resource's item; `version` 0 and no entries for an item that is not there. */
export interface StoredItem {
  readonly kind: LockKind;
  readonly name: string;
  readonly version: number;
  readonly fence: bigint;
  readonly nextSeq: number;
  readonly entries: readonly StoredEntry[];
}

const num = (attr: Attr | undefined, what: string): number => {
  const n = Number(attr?.N);
  if (attr?.N === undefined || !Number.isFinite(n)) throw new TypeError(`attribute ${what} is not a number`);
  return n;
};

const str = (attr: Attr | undefined, what: string): string => {
  if (typeof attr?.S !== 'string') throw new TypeError(`attribute ${what} is not a string`);
  return attr.S;
};

/** parseItem reads an item of the store; throws a `TypeError` naming the attribute for an item it did not write. */
export function parseItem(item: AttrMap): StoredItem {
  return {
    kind: str(item.kind, 'kind') as LockKind,
    name: str(item.name, 'name'),
    version: num(item.v, 'v'),
    fence: BigInt(item.fence?.N ?? '0'),
    nextSeq: num(item.seq, 'seq'),
    entries: (item.entries?.L ?? []).map((attr, i) => parseEntry(attr.M ?? {}, `entries[${i}]`)),
  };
}

function parseEntry(m: AttrMap, at: string): StoredEntry {
  const mode = str(m.mode, `${at}.mode`);
  if (mode !== 'exclusive' && mode !== 'shared') throw new TypeError(`attribute ${at}.mode is "${mode}"`);
  return {
    owner: str(m.owner, `${at}.owner`),
    seq: num(m.seq, `${at}.seq`),
    mode,
    limit: num(m.limit, `${at}.limit`),
    held: m.held?.BOOL === true,
    ttlMs: num(m.ttlMs, `${at}.ttlMs`),
    rv: str(m.rv, `${at}.rv`),
    token: m.token?.N === undefined ? null : BigInt(m.token.N),
    ...(m.value?.S === undefined ? {} : { value: m.value.S }),
    ...(m.expiresAt?.N === undefined ? {} : { expiresAt: Number(m.expiresAt.N) }),
  };
}

/** entryAttr writes an entry in the wire format. */
export function entryAttr(entry: StoredEntry): Attr {
  const m: Record<string, Attr> = {
    owner: { S: entry.owner },
    seq: { N: String(entry.seq) },
    mode: { S: entry.mode },
    limit: { N: String(entry.limit) },
    held: { BOOL: entry.held },
    ttlMs: { N: String(entry.ttlMs) },
    rv: { S: entry.rv },
  };
  if (entry.token !== null) m.token = { N: String(entry.token) };
  if (entry.value !== undefined) m.value = { S: entry.value };
  if (entry.expiresAt !== undefined) m.expiresAt = { N: String(entry.expiresAt) };
  return { M: m };
}
