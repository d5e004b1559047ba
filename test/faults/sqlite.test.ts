/** The fault suite, short version, on the SQLite store (`npm run faults` runs it for minutes). */
import { runFaultSuite } from './suite.js';

runFaultSuite({ name: 'SQLite', start: async () => 'sqlite:{dir}/locks.db', epsilonMs: 200 });
