/**
 * The fault suite, short version, on Redlock: `quorum([...])` over five redis-servers without
 * persistence, each worker behind its own fault proxy to each server, ε 150 ms. No fencing
 * token: the register is used unfenced and the overlap checker carries the promise.
 */
import { runFaultSuite } from './suite.js';
import { redlockTarget } from './targets.js';

runFaultSuite(redlockTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'random-network-nodes',
  'minority-down', 'majority-down', 'stall-majority',
]);
