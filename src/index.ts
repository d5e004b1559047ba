export { Baton, createBaton } from './core/baton.js';
export { DEFAULTS } from './core/options.js';
export type {
  AcquireOptions,
  BatonEvents,
  BatonOptions,
  CallOptions,
  LockInfo,
  HolderDescription,
  Logger,
  SemaphoreOptions,
  TokenOf,
  TryAcquireOptions,
  WithLockOptions,
} from './core/options.js';
export { newOwnerId } from './core/owner.js';
export { Lock } from './core/lock.js';
export { Mutex } from './core/mutex.js';
export { Semaphore } from './core/semaphore.js';
export { RwLock } from './core/rwlock.js';
export { MultiLease, canonicalOrder } from './core/multi-lock.js';
export { Lease } from './core/lease.js';
export { Election } from './core/election.js';
export type { Leader, ObserveOptions } from './core/election.js';
export { ManualClock, systemClock, monotonicNow } from './core/clock.js';
export type { Clock, ClockTimer } from './core/clock.js';
export { MAX_DURATION_MS, MAX_NAME_LENGTH } from './core/validate.js';
export { canHold } from './core/queue.js';
export { storeCall, timeLeft } from './core/call.js';
export {
  BatonError,
  ClosedError,
  InvalidArgumentError,
  LeaseLostError,
  LockNotHeldError,
  LockTimeoutError,
  LockUpgradeError,
  PermitsMismatchError,
  QueueFullError,
  QuorumError,
  StoreUnavailableError,
  UnsupportedError,
  isBatonError,
} from './errors.js';
export type { BatonErrorCode, LeaseLostReason, QuorumAnswer } from './errors.js';
export { QuorumStore, quorum } from './stores/quorum/index.js';
export type { QuorumOptions } from './stores/quorum/index.js';
export { CLOSE_TIMEOUT_MS, LOCK_KINDS, storageKey } from './store.js';
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
  StoreCall,
  MarkRequest,
  MarkState,
  StoreGuarantees,
  WaiterInfo,
} from './store.js';
