export { MemoryStore, createMemoryStore } from './store.js';
export type { MemoryStoreOptions } from './store.js';
export { ManualClock } from '../../core/clock.js';
