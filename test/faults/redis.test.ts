/**
 * The fault suite, short version, on the Redis store: real redis-servers on loopback (one
 * without persistence, one with AOF), each worker behind its own fault proxy, ε 150 ms.
 */
import { runFaultSuite } from './suite.js';
import { redisTarget } from './targets.js';

runFaultSuite(redisTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'random-network',
  'restart-no-persistence', 'restart-aof', 'random-network-restarts',
  'stall-server',
]);
