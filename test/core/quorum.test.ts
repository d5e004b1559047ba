/**
 * The quorum's arithmetic (src/stores/quorum/index.ts): how many nodes make a majority, and
 * how long a grant stays valid after its round trip and the clock drift allowance. The nodes
 * are memory stores; what a quorum does with real servers is in test/stores/redis-quorum.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { QuorumStore } from '../../src/stores/quorum/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';

const nodes = (n: number) => Array.from({ length: n }, () => createMemoryStore());

describe('quorum arithmetic', () => {
  it('majority: floor(N / 2) + 1 of N nodes', () => {
    const expected = [[1, 1], [2, 2], [3, 2], [4, 3], [5, 3], [6, 4], [7, 4]] as const;
    for (const [n, majority] of expected) assert.equal(new QuorumStore(nodes(n)).majority, majority, `${n} nodes`);
  });

  it('any two majorities share a node: two holders cannot both get one', () => {
    for (let n = 1; n <= 9; n++) assert.ok(2 * new QuorumStore(nodes(n)).majority > n, `${n} nodes`);
  });

  it('validityMs: TTL - elapsed - floor(TTL × driftFactor) - 2 ms (the drift floor)', () => {
    const store = new QuorumStore(nodes(3));
    assert.equal(store.validityMs(10_000, 0), 10_000 - 100 - 2, 'default driftFactor 0.01');
    assert.equal(store.validityMs(10_000, 250), 10_000 - 250 - 100 - 2);
    assert.equal(store.validityMs(150, 0), 150 - 1 - 2, 'the drift allowance is whole ms, rounded down');
    assert.equal(store.validityMs(99, 0), 99 - 0 - 2);
    assert.equal(new QuorumStore(nodes(3), { driftFactor: 0 }).validityMs(1000, 10), 1000 - 10 - 2);
    assert.equal(new QuorumStore(nodes(3), { driftFactor: 0.1 }).validityMs(1000, 10), 1000 - 10 - 100 - 2);
  });

  it('validityMs reaches zero when the round trip took the whole TTL after drift: such a grant is not held', () => {
    const store = new QuorumStore(nodes(5));
    assert.equal(store.validityMs(1000, 988), 0);
    assert.ok(store.validityMs(1000, 989) < 0);
    assert.ok(store.validityMs(1000, 987) > 0);
  });

  it('grants once a majority of nodes grant, even with the others held by someone else', async () => {
    const members = nodes(5);
    const store = new QuorumStore(members, { closeStores: true });
    const key = { kind: 'mutex', name: 'q' } as const;
    const request = (owner: string) => ({ key, owner, mode: 'exclusive', limit: 1, ttlMs: 10_000, enqueue: false, queueTtlMs: 10_000 } as const);
    // Two nodes already held by "other": three of five are still a majority.
    for (const node of members.slice(0, 2)) assert.equal((await node.grant(request('other'))).granted, true);
    assert.equal((await store.grant(request('mine'))).granted, true);
    // A third node held by "other" leaves two: no majority, and the grants are given back.
    await store.release(key, 'mine');
    assert.equal((await members[2]!.grant(request('other'))).granted, true);
    assert.equal((await store.grant(request('mine'))).granted, false);
    for (const node of members.slice(3)) assert.deepEqual((await node.inspect(key)).holders, [], 'a failed grant is rolled back on every node');
    await store.close();
  });
});
