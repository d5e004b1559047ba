/**
 * The fault suite, short version, on the ZooKeeper store: one real standalone server on
 * loopback that persists its data and sessions (a restart keeps them), each worker behind its
 * own fault proxy. Lock TTL and session timeout 1 s; ε 300 ms. Each scenario runs 8 s (several
 * TTLs of faults), about 2 minutes in all.
 */
import { runFaultSuite } from './suite.js';
import { zookeeperTarget } from './targets.js';

runFaultSuite(zookeeperTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'restart', 'random-network-restarts', 'stall-server',
], { seconds: 8 });
