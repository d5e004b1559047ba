/** The fault suite, short version, on the SQLite store (`npm run faults` runs it for minutes). */
import { runFaultSuite } from './suite.js';
import { sqliteTarget } from './targets.js';

runFaultSuite(sqliteTarget(), ['pause-past-ttl', 'kill-holder', 'block-quarter-ttl', 'block-past-ttl', 'random-nemesis']);
