export { RedisStore, createRedisStore } from './store.js';
export type { RedisStoreOptions } from './store.js';
export type { IORedisLike, NodeRedisLike, RedisClient } from './client.js';
export { QuorumStore, quorum } from '../quorum/index.js';
export type { QuorumOptions } from '../quorum/index.js';
