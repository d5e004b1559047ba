export { Baton, Lock, DEFAULTS, createBaton, newOwnerId } from './core/baton.js';
export type {
  AcquireOptions,
  BatonEvents,
  BatonOptions,
  LockInfo,
  SemaphoreOptions,
  TokenOf,
  TryAcquireOptions,
  WithLockOptions,
} from './core/baton.js';
export { Lease } from './core/lease.js';
export { Election } from './core/election.js';
export type { Leader, ObserveOptions } from './core/election.js';
export { ManualClock, systemClock, monotonicNow } from './core/clock.js';
export type { Clock, ClockTimer } from './core/clock.js';
export { MAX_DURATION_MS, MAX_NAME_LENGTH } from './core/validate.js';
export { canHold } from './core/queue.js';
export {
  BatonError,
  ClosedError,
  InvalidArgumentError,
  LeaseLostError,
  LockNotHeldError,
  LockTimeoutError,
  QuorumError,
  StoreUnavailableError,
  isBatonError,
} from './errors.js';
export type { BatonErrorCode, LeaseLostReason, QuorumAnswer } from './errors.js';
export { QuorumStore, quorum } from './stores/quorum/index.js';
export type { QuorumOptions } from './stores/quorum/index.js';
export { storageKey } from './store.js';
export type {
  ExtendResult,
  GrantRequest,
  GrantResult,
  HandOff,
  HoldMode,
  HolderInfo,
  LockKind,
  LockStore,
  ResourceKey,
  ResourceState,
  StoreGuarantees,
  WaiterInfo,
} from './store.js';
