/**
 * The fault suite, short version, on the DynamoDB store: dynalite in a process of its own on
 * loopback, its data on disk (a restart keeps it), each worker behind its own fault proxy.
 * Lock TTL 400 ms; ε 1 s (one poll + 500 ms: DynamoDB cannot notify, and a dead holder's
 * entry goes once a waiter has seen it unchanged for a whole lease). Holders hold 200 ms (a
 * hand-off waits for the next waiter's poll). Each scenario runs 10 s, about 2 minutes in all.
 */
import { runFaultSuite } from './suite.js';
import { dynamodbTarget } from './targets.js';

runFaultSuite(dynamodbTarget(), [
  'pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis',
  'latency-steps', 'blackhole-heal', 'half-open', 'reset', 'restart', 'stall-server',
], { seconds: 10 });
