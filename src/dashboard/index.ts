export { createDashboardHandler } from './handler.js';
export type { DashboardHandler, DashboardOptions, Snapshot, SnapshotLock, StoreHealth } from './handler.js';
