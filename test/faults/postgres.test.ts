/**
 * The fault suite, short version, on the PostgreSQL store: one real server on loopback, each
 * worker (and its LISTEN connection) behind its own fault proxy; a restart SIGKILLs the
 * postmaster and its backends and starts it on the same data. Lock TTL as the suite sets it; ε 150 ms.
 */
import { runFaultSuite } from './suite.js';
import { postgresTarget } from './targets.js';

runFaultSuite(postgresTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'random-network', 'restart', 'random-network-restarts', 'stall-server',
], { seconds: 6 });
