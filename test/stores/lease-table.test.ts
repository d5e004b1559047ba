// LeaseTable over a driver whose every answer is a promise, as PostgreSQL's will be (SQLite's are values).
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { it } from 'node:test';
import { storeCall, type GrantRequest } from '../../src/index.js';
import { LeaseTable, type TableDriver, type TableEntry, type TableResource, type TableTx } from '../../src/stores/table/lease-table.js';

/** An in-memory table: one transaction at a time, each answer given a turn of the event loop later, writes kept only on commit. */
function asyncTable(clock: { now: number }, failOn?: string): TableDriver<string> {
  let resources = new Map<string, TableResource & { fence: bigint; next: number }>();
  let entries = new Map<string, TableEntry<string>[]>();
  let floor = 0n;
  let tail: Promise<unknown> = Promise.resolve();
  const later = async <T>(name: string, answer: () => T): Promise<T> => {
    await turn();
    if (name === failOn) throw new Error(`${name} failed`);
    return answer();
  };
  return {
    transaction(_mode, _call, body) {
      const run = async () => {
        const copy = { resources: new Map([...resources].map(([k, v]) => [k, { ...v }])), entries: new Map([...entries].map(([k, v]) => [k, [...v]])), floor };
        const rows = (id: string) => copy.entries.get(id) ?? [];
        const tx: TableTx<string> = {
          now: () => later('now', () => clock.now),
          entries: (id) => later('entries', () => [...rows(id)].sort((a, b) => a.seq - b.seq)),
          fence: (id) => later('fence', () => copy.resources.get(id)?.fence),
          bump: (resource, tokens, arrivals) => later('bump', () => {
            const row = copy.resources.get(resource.id) ?? { ...resource, fence: copy.floor, next: 0 };
            row.fence += BigInt(tokens);
            row.next += arrivals;
            copy.resources.set(resource.id, row);
            return { fence: row.fence, seq: row.next };
          }),
          putEntry: (id, entry) => later('putEntry', () => void copy.entries.set(id, [...rows(id).filter((e) => e.owner !== entry.owner), entry])),
          extendEntry: (id, owner, ttlMs, expiresAt) => later('extendEntry', () => void copy.entries.set(id, rows(id).map((e) => (e.owner === owner && e.held ? { ...e, ttlMs, expiresAt } : e)))),
          deleteEntry: (id, owner) => later('deleteEntry', () => void copy.entries.set(id, rows(id).filter((e) => e.owner !== owner))),
          deleteHolders: (id) => later('deleteHolders', () => {
            const before = rows(id).length;
            copy.entries.set(id, rows(id).filter((e) => !e.held));
            return before - rows(id).length;
          }),
          resources: (prefix, after, limit) => later('resources', () => [...copy.resources.values()].filter((r) => r.id.startsWith(prefix) && (after === undefined || r.id > after)).sort((x, y) => (x.id < y.id ? -1 : 1)).slice(0, limit ?? Infinity)),
          dropResource: (id) => later('dropResource', () => {
            const fence = copy.resources.get(id)?.fence ?? 0n;
            if (fence > copy.floor) copy.floor = fence;
            copy.resources.delete(id);
            copy.entries.delete(id);
          }),
        };
        const result = await body(tx);
        resources = copy.resources;
        entries = copy.entries;
        floor = copy.floor;
        return result;
      };
      const result = tail.then(run);
      tail = result.catch(() => undefined);
      return result;
    },
  };
}

const request = (owner: string): GrantRequest => ({ key: { kind: 'mutex', name: 'm' }, owner, mode: 'exclusive', limit: 1, ttlMs: 1000, enqueue: true, queueTtlMs: 500 });

it('LeaseTable grants, queues in arrival order and wakes the next entry over a driver that answers with promises', async () => {
  const clock = { now: 100 };
  const table = new LeaseTable(asyncTable(clock), { prefix: 'p' });
  const call = () => storeCall(1000);
  assert.deepEqual((await table.grant(request('a'), null, call())).result, { granted: true, token: 1n });
  const [b, c] = await Promise.all([table.grant(request('b'), 'to-b', call()), table.grant(request('c'), 'to-c', call())]);
  // a expires at 1100, b's queue entry at 600.
  assert.deepEqual([b.result, c.result], [{ granted: false, position: 1, retryAfterMs: 1000 }, { granted: false, position: 2, retryAfterMs: 500 }]);
  const released = await table.release(request('a').key, 'a', call());
  assert.equal(released.result, true);
  assert.deepEqual(released.wakes.map((e) => [e.owner, e.wake]), [['b', 'to-b']]);
  assert.deepEqual((await table.grant(request('b'), 'to-b', call())).result, { granted: true, token: 2n });
  clock.now += 2000; // b and c expire; the next writer removes them
  assert.deepEqual((await table.grant(request('d'), null, call())).result, { granted: true, token: 3n });
  const [state] = await table.list(undefined, call());
  assert.equal(state!.fence, 3n);
  assert.deepEqual(state!.holders.map((h) => h.owner), ['d']);
  assert.equal(await table.forceRelease(request('d').key, call()).then((o) => o.result), 1);
});

it('LeaseTable rejects with the error of a failed answer and commits nothing', async () => {
  const table = new LeaseTable(asyncTable({ now: 0 }, 'putEntry'), { prefix: 'p' });
  await assert.rejects(table.grant(request('a'), null, storeCall(1000)), /putEntry failed/);
  assert.deepEqual((await table.inspect(request('a').key, storeCall(1000))).fence, 0n);
});

it('LeaseTable prunes idle resources in batches over a driver that answers with promises, keeps live ones, and a pruned name issues higher tokens', async () => {
  const clock = { now: 100 };
  const table = new LeaseTable(asyncTable(clock), { prefix: 'p' });
  const call = storeCall(60_000);
  const grant = (name: string, owner: string, ttlMs = 1000) => table.grant({ key: { kind: 'mutex', name }, owner, mode: 'exclusive', limit: 1, ttlMs, enqueue: false, queueTtlMs: 500 }, null, call);
  // More names than one transaction looks at, so that the prune takes several.
  for (let i = 0; i < 1100; i++) {
    await grant(`n${String(i).padStart(4, '0')}`, 'a');
    await table.release({ kind: 'mutex', name: `n${String(i).padStart(4, '0')}` }, 'a', call);
  }
  const first = (await grant('kept', 'a')).result;
  const old = (await grant('old', 'b', 10)).result;
  clock.now += 20; // old's holder is dead
  assert.equal(await table.prune(undefined, call), 1101);
  assert.deepEqual((await table.list(undefined, call)).map((state) => state.key.name), ['kept']);
  const again = (await grant('old', 'c')).result;
  assert.ok(first.granted && old.granted && again.granted);
  assert.ok(again.token > old.token && again.token > first.token, `token ${again.token} after ${old.token} (the floor is the highest pruned fence)`);
});
