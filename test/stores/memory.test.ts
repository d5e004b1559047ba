import assert from 'node:assert/strict';
import { it } from 'node:test';
import { createBaton, monotonicNow } from '../../src/index.js';
import { createMemoryStore } from '../../src/stores/memory/index.js';
import { runContractSuite, sharedView } from '../contract/suite.js';

runContractSuite({
  name: 'memory',
  backing: async () => {
    const store = createMemoryStore();
    return { connect: () => sharedView(store), cleanup: () => store.close() };
  },
  skip: {
    'tokens keep increasing after every client and the store restart': 'the memory store lives and dies with its process; nothing survives a restart',
  },
});

it('memory: a holder that dies without releasing is replaced within TTL + 50 ms', async (t) => {
  const baton = createBaton(createMemoryStore());
  const ttlMs = 300;
  const granted = monotonicNow();
  await baton.mutex('crash').acquire({ ttlMs }); // its task "crashes": nobody releases or renews it
  const next = await baton.mutex('crash').acquire({ ttlMs, timeoutMs: 5000 });
  const delay = monotonicNow() - granted;
  t.diagnostic(`re-acquired ${delay.toFixed(1)} ms after the grant, TTL ${ttlMs} ms`);
  assert.ok(delay >= ttlMs && delay <= ttlMs + 50, `re-acquired after ${delay.toFixed(1)} ms`);
  assert.equal(next.token, 2n);
  await baton.close();
});
