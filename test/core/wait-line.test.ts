/**
 * On a store that cannot notify (a Redlock quorum), this process's waiters for one lock wait
 * in line: only the first asks the store again, a local release wakes it at once, and they
 * are served in the order they found the lock busy. So the store calls a hand-off costs do
 * not grow with the waiters. Run on the memory store with its wake-ups taken away.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createBaton, type Lease } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { until } from '../helpers/wait.js';
import { wrapStore } from '../helpers/wrap-store.js';

/** A memory store without `wait`, counting grant calls. */
function pollingStore() {
  const memory = createMemoryStore();
  const counted = { grants: 0 };
  const store = wrapStore(memory, {
    grant: (request, call) => {
      counted.grants++;
      return memory.grant(request, call);
    },
  });
  delete (store as { wait?: unknown }).wait;
  return { store, counted };
}

async function handOffs(waiters: number): Promise<{ grantsPerHandOff: number; servedInOrder: boolean }> {
  const { store, counted } = pollingStore();
  const baton = createBaton(store);
  try {
    const holder = await baton.mutex('line').acquire();
    const busyOrder: string[] = [];
    baton.on('contended', ({ owner }) => busyOrder.push(owner));
    const servedOrder: string[] = [];
    const all = Array.from({ length: waiters }, async () => {
      const lease: Lease<bigint> = await baton.mutex('line').acquire({ timeoutMs: 60_000 });
      servedOrder.push(lease.owner);
      await lease.release();
    });
    await until(() => busyOrder.length === waiters, 'every waiter to find the lock busy', { ms: 10_000 });
    const before = counted.grants;
    await holder.release();
    await Promise.all(all);
    return {
      grantsPerHandOff: (counted.grants - before) / waiters,
      servedInOrder: servedOrder.every((owner, i) => owner === busyOrder[i]),
    };
  } finally {
    await baton.close();
  }
}

describe('waiting in line on a store that cannot notify', () => {
  it('serves a process\'s waiters in the order they found the lock busy, at about one store try per hand-off, with 10 or 200 waiting', async () => {
    for (const waiters of [10, 200]) {
      const { grantsPerHandOff, servedInOrder } = await handOffs(waiters);
      assert.ok(servedInOrder, `${waiters} waiters were served out of order`);
      // Each hand-off: the next in line is woken by the release and asks once. A backoff
      // timer of the first in line that fires in between may add a try now and then.
      assert.ok(grantsPerHandOff <= 1.5, `${waiters} waiters: ${grantsPerHandOff} grant calls per hand-off`);
    }
  });
});
