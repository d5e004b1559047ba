// Leader election with takeover: two candidates campaign to lead "scheduler"; one leads,
// the other waits in line. When the leader resigns, or its process shuts down (closing its
// baton instance releases its leadership), the one in line takes over. A third instance
// watches with `observe` and prints who leads.
//
// If a leader's process crashes instead, its lease is not renewed any more and the other
// candidate takes over one TTL later. Every term has a higher token than the one before:
// pass it with the leader's writes (see docs/fencing.md).
// The lock file is BATON_EXAMPLE_DB (default .baton/example.db).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const lockFile = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const open = () => createBaton(createSqliteStore({ path: lockFile }));
const options = { ttlMs: 10_000, autoRenew: true }; // leadership renews itself while held

// The watcher: prints each change of leader, and lets the steps below wait until it saw one.
const watcher = open();
const stopWatching = new AbortController();
const seen = [];
const waiting = new Map();
const watching = (async () => {
  for await (const leader of watcher.election('scheduler').observe({ signal: stopWatching.signal })) {
    console.log(leader ? `leader: ${leader.value} (token ${leader.token})` : 'leader: none');
    if (!leader) continue;
    seen.push(leader);
    waiting.get(leader.value)?.();
  }
})();
const watcherSees = (value) => new Promise((resolve) => waiting.set(value, resolve));

// Candidate A campaigns first and leads.
const a = open();
let seesA = watcherSees('node-a');
const termA = await a.election('scheduler').campaign('node-a', options);
await seesA;

// Candidate B campaigns: it waits until A steps down. `contended` tells it is in line.
const b = open();
const bInLine = once(b, 'contended');
const termB = b.election('scheduler').campaign('node-b', options);
await bInLine;

// A resigns: B takes over.
const seesB = watcherSees('node-b');
await a.election('scheduler').resign(termA);
console.log(`node-b leads from token ${(await termB).token}`);
await seesB;

// A campaigns again and waits in line; then B's process shuts down: A takes over.
seesA = watcherSees('node-a');
const aInLine = once(a, 'contended');
const termA2 = a.election('scheduler').campaign('node-a', options);
await aInLine;
await b.close();
console.log(`node-a leads again from token ${(await termA2).token}`);
await seesA;

stopWatching.abort();
await watching;
await a.close();
await watcher.close();

assert.deepEqual(seen.map((leader) => leader.value), ['node-a', 'node-b', 'node-a']);
assert.ok(seen[0].token < seen[1].token && seen[1].token < seen[2].token, 'every term has a higher token');
console.log('leaders in turn: node-a, node-b, node-a; each term with a higher token');
