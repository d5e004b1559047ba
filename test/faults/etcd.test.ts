/**
 * The fault suite, short version, on the etcd store: one real etcd member on loopback that
 * persists to disk (a restart keeps its data), each worker behind its own fault proxy. Lock
 * TTL and session TTL 1 s (etcd's leases last whole seconds); ε 1 s. Each scenario runs 8 s
 * (five TTLs of faults), about 1.5 minutes in all.
 */
import { runFaultSuite } from './suite.js';
import { etcdTarget } from './targets.js';

runFaultSuite(etcdTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'restart', 'random-network-restarts', 'stall-server',
], { seconds: 8 });
