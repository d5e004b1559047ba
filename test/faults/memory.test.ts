/** The fault suite, short version, on the memory store: worker tasks in this process (in-process.ts), ε 50 ms. */
import { runFaultSuite } from './suite.js';
import { memoryTarget } from './targets.js';

runFaultSuite(memoryTarget(), ['pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis']);
