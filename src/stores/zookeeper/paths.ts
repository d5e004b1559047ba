/**
 * Where an entry lives in ZooKeeper, in Apache Curator's layouts, so that a Curator recipe on
 * the same path and a baton lock exclude each other:
 * - a resource is the znode `<root>/<kind>/<escaped name>` (`resourcePath`);
 * - a mutex or semaphore entry is an ephemeral sequential child `_c_<uuid>-lock-<10 digits>`
 *   (Curator's protected `InterProcessMutex` / `InterProcessSemaphore` node), an election's is
 *   `_c_<uuid>-latch-<10 digits>` (`LeaderLatch`); the uuid is baton's owner id, so that after
 *   a lost connection the store finds the node it created (Curator's protected create);
 * - entries are ordered by their sequence suffix, as Curator's `StandardLockInternalsDriver` sorts them.
 */
import type { HoldMode, ResourceKey } from '../../store.js';

/**
 * Characters ZooKeeper refuses in a path (`PathUtils.validatePath`), `/` and `%` (the escape
 * itself): percent-escaped as UTF-8, so that every name is one znode name and names stay distinct.
 */
const UNSAFE = /[%/\u0000-\u001f\u007f-\u009f\ud800-\uf8ff\ufff0-\uffff]|[\u{10000}-\u{10ffff}]/gu;

/** escapeName keeps a name one znode name that ZooKeeper accepts; `.` and `..`, which it refuses, are escaped too. */
export function escapeName(name: string): string {
  const escaped = name.replace(UNSAFE, (c) => encodeURIComponent(c).replace(/[!'()*]/g, (x) => `%${x.charCodeAt(0).toString(16).toUpperCase()}`));
  return escaped === '.' ? '%2E' : escaped === '..' ? '%2E%2E' : escaped;
}

export function unescapeName(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** resourcePath: the znode of one resource, parent of its entries. */
export function resourcePath(root: string, key: ResourceKey): string {
  return `${root}/${key.kind}/${escapeName(key.name)}`;
}

/** Curator's lock name of a kind: `lock-` for its mutex and semaphore, `latch-` for its LeaderLatch. */
function lockName(key: ResourceKey): string {
  return key.kind === 'election' ? 'latch-' : 'lock-';
}

/** uuidOf: baton's owner id (32 hex digits) written as a UUID, as Curator's protected names carry one. */
export function uuidOf(owner: string): string {
  return /^[0-9a-f]{32}$/.test(owner) ? `${owner.slice(0, 8)}-${owner.slice(8, 12)}-${owner.slice(12, 16)}-${owner.slice(16, 20)}-${owner.slice(20)}` : owner;
}

/** nodePrefix: the name of an owner's entry without its sequence suffix, which ZooKeeper adds. */
export function nodePrefix(key: ResourceKey, owner: string): string {
  return `_c_${uuidOf(owner)}-${lockName(key)}`;
}

/** Child: one entry among a resource's children, as its name says. */
export interface Child {
  readonly name: string;
  /** The sequence suffix, 10 digits: the order. */
  readonly seq: string;
  /** The owner: the uuid of a protected name without its dashes, else the name. */
  readonly owner: string;
}

/**
 * sortedChildren: the entries of `key` among a resource's children, in sequence order. A child
 * whose name has no `<lock name><10 digits>` suffix is not an entry of this kind (a Curator
 * read-write lock's, a semaphore V2's `locks` and `leases`): it is left out.
 */
export function sortedChildren(key: ResourceKey, names: readonly string[]): Child[] {
  const lock = lockName(key);
  const children: Child[] = [];
  for (const name of names) {
    const at = name.lastIndexOf(lock);
    const seq = at < 0 ? '' : name.slice(at + lock.length);
    if (!/^\d{10}$/.test(seq)) continue;
    const protectedId = /^_c_([0-9a-f-]{36})-/.exec(name);
    children.push({ name, seq, owner: protectedId ? protectedId[1]!.replaceAll('-', '') : name.slice(0, at) || name });
  }
  return children.sort((a, b) => (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0));
}

/**
 * entryData: what an entry's znode holds: `mode limit owner`, then a line with the value if
 * there is one (the holder's description); an election's holds its value alone, as a
 * LeaderLatch's holds its participant id.
 */
export function entryData(key: ResourceKey, mode: HoldMode, limit: number, owner: string, value: string | undefined): Buffer {
  if (key.kind === 'election') return Buffer.from(value ?? '');
  return Buffer.from(value ? `${mode} ${limit} ${owner}\n${value}` : `${mode} ${limit} ${owner}`);
}

/** EntryInfo: how an entry holds, as its data says; a node that is not baton's (Curator's) is exclusive, one permit, states no limit. */
export interface EntryInfo {
  readonly mode: HoldMode;
  readonly limit: number;
  /** The limit the data states (none for an election's or a foreign node). */
  readonly statedLimit?: number;
  readonly value?: string;
  readonly foreign?: boolean;
}

export function entryInfo(key: ResourceKey, data: Buffer | undefined): EntryInfo {
  const text = data?.toString() ?? '';
  if (key.kind === 'election') return { mode: 'exclusive', limit: 1, value: text };
  const match = /^(exclusive|shared) (\d+) [0-9a-f]+(?:\n(.*))?$/s.exec(text);
  if (!match) return { mode: 'exclusive', limit: 1, foreign: true };
  const limit = Number(match[2]) || 1;
  return { mode: match[1] as HoldMode, limit, statedLimit: limit, ...(match[3] ? { value: match[3] } : {}) };
}

/** Data of the resource znodes baton creates: it removes only these once empty (never a Curator container, nor a node of yours). */
export const PARENT_MARK = Buffer.from('baton');
