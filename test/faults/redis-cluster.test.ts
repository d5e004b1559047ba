/**
 * The fault suite, short version, on a Redis Cluster: three masters (no replicas) with AOF on
 * loopback, each worker reaching each master through its own fault proxy (its client maps the
 * masters' announced addresses to them), ε 150 ms.
 */
import { runFaultSuite } from './suite.js';
import { redisClusterTarget } from './targets.js';

runFaultSuite(redisClusterTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'random-network',
  'restart-slot-owner-aof', 'stall-slot-owner',
]);
