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
