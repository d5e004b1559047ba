/**
 * Key naming: where an entry lives in etcd and what its key and value say about it. A
 * resource is the prefix `<prefix><kind>/<escaped name>/`; an entry is one key under it,
 * attached to its session's lease, ordered among the others by create revision.
 */
import type { IKeyValue } from 'etcd3';
import type { HoldMode, ResourceKey } from '../../store.js';

/** escapeName keeps a name one path segment: `%` and `/` are percent-escaped, so that no name prefixes another. */
export function escapeName(name: string): string {
  return name.replaceAll('%', '%25').replaceAll('/', '%2F');
}

export function unescapeName(segment: string): string {
  return segment.replaceAll('%2F', '/').replaceAll('%25', '%');
}

/** resourcePrefix: the key prefix of one resource, `<prefix><kind>/<escaped name>/`. */
export function resourcePrefix(prefix: string, key: ResourceKey): string {
  return `${prefix}${key.kind}/${escapeName(key.name)}/`;
}

/** The end of the key range that starts with `prefix`. */
export function rangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i]!++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

/**
 * aheadRange: the range of the keys under `pfx` created before `maxRevision` (all of them
 * for 0n), newest first, at most `limit`: the keys just ahead of an entry. With `values`,
 * each key's value (which states its limit), else keys only. etcd's `count` is that of the
 * whole prefix (it ignores the revision bound).
 */
export function aheadRange(pfx: string, maxRevision: bigint, limit: number, values: boolean) {
  return {
    key: Buffer.from(pfx), range_end: rangeEnd(pfx), sort_order: 'Descend', sort_target: 'Create', keys_only: !values, limit,
    ...(maxRevision > 0n ? { max_create_revision: String(maxRevision) } : {}),
  } as const;
}

/**
 * reserveName names a new key of a session (lease `hex`) on `pfx`, not in `taken`, and adds it
 * there. Keys of mutexes and semaphores reuse a few names a session (`<lease hex>`, then
 * `<lease hex>_1`, `_2`, ... for entries held at once), and carry the owner in their value:
 * etcd keeps every deleted key in its index until the cluster is compacted (never, by
 * default), and a lock that wrote a new name for each acquisition would make every range over
 * its prefix slower as it is used. An election's key is named by its owner
 * (`<lease hex>_<owner>`), its value being the proclamation.
 */
export function reserveName(key: ResourceKey, pfx: string, hex: string, owner: string, taken: Set<string>): string {
  let name = key.kind === 'election' ? `${pfx}${hex}_${owner}` : `${pfx}${hex}`;
  for (let n = 1; taken.has(name); n++) name = `${pfx}${hex}_${n}`;
  taken.add(name);
  return name;
}

/**
 * entryValue: what an entry's key holds: `mode limit owner` (its mode and limit, which every
 * store keeps per entry), or an election's proclamation (as etcd's Election has it: one
 * exclusive leader).
 */
export function entryValue(key: ResourceKey, mode: HoldMode, limit: number, owner: string, value: string | undefined): string {
  if (key.kind === 'election') return value ?? '';
  return value ? `${mode} ${limit} ${owner}\n${value}` : `${mode} ${limit} ${owner}`;
}

/** EntryInfo: who an entry is for, and how it holds, as its key and value say. */
export interface EntryInfo {
  readonly owner: string;
  readonly mode: HoldMode;
  readonly limit: number;
  /** The value stored with the entry: an election's proclamation, another kind's holder description. */
  readonly value?: string;
  /** A key that is not baton's (`etcdctl lock`'s): exclusive, named by its lease. */
  readonly foreign?: boolean;
}

/**
 * The entry of a key: baton's mutex, semaphore (and future) keys hold `mode limit owner` in
 * their value, then a line with the holder's description if there is one; an election key is one exclusive leader with its owner after the lease in its
 * name (its value is the proclamation); a key that is not baton's (`etcdctl lock`'s, empty)
 * is exclusive, named by what follows the prefix (its lease).
 */
export function entryInfo(key: ResourceKey, kv: IKeyValue, pfx: string): EntryInfo {
  const suffix = kv.key.toString().slice(pfx.length);
  if (key.kind === 'election') return { owner: suffix.slice(suffix.indexOf('_') + 1), mode: 'exclusive', limit: 1, value: kv.value.toString() };
  const match = /^(exclusive|shared) (\d+) ([^\n]+)(?:\n(.*))?$/s.exec(kv.value.toString());
  if (!match) return { owner: suffix, mode: 'exclusive', limit: 1, foreign: true };
  return { owner: match[3]!, mode: match[1] as HoldMode, limit: Number(match[2]) || 1, ...(match[4] ? { value: match[4] } : {}) };
}

/**
 * statedLimit: the limit a baton key states in its value (`mode limit owner`); none for an
 * election's key (its value is the proclamation; an election is one exclusive leader) nor for
 * a key that is not baton's.
 */
export function statedLimit(key: ResourceKey, kv: IKeyValue): number | undefined {
  if (key.kind === 'election') return undefined;
  const match = /^(?:exclusive|shared) (\d+) /.exec(kv.value.toString());
  return match ? Number(match[1]) : undefined;
}
