export { QuorumStore, quorum } from './store.js';
export type { QuorumOptions } from './store.js';
