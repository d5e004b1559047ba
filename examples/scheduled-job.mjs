// A job scheduled every second on three instances whose clocks disagree by up to 4 s (one
// is 2 s late, one 2 s early): each slot runs once, on whichever instance reaches it first,
// and `baton.jobs()` tells who ran the last slot, when, how long and how it ended. The three
// instances share one lock file, as separate processes on one host would; each reads its
// own clock (`now`), as separate hosts would. The lock file is BATON_EXAMPLE_DB (default
// .baton/example.db).
import { setTimeout as sleep } from 'node:timers/promises';
import { createBaton } from 'baton-lock';
import { createSqliteStore } from 'baton-lock/sqlite';

const path = process.env.BATON_EXAMPLE_DB ?? '.baton/example.db';
const offsets = { late: -2000, exact: 0, early: 2000 };
const runs = [];
const instances = Object.entries(offsets).map(([who, offset]) => {
  const baton = createBaton(createSqliteStore({ path }), { holder: { label: who } });
  const job = baton.schedule('heartbeat', 1000, async ({ slot, signal }) => {
    runs.push({ slot: slot.getTime(), who });
    await sleep(100, undefined, { signal }); // the work; it stops if the job's lock is lost
  }, { now: () => Date.now() + offset, lockAtMostForMs: 5000, label: who });
  return { baton, job };
});

// The jobs' timers do not keep a process alive: a server's own work does; here, a sleep.
await sleep(4500);
await Promise.all(instances.map(({ job }) => job.stop()));
const slots = runs.map((r) => r.slot);
console.log(`${runs.length} runs, ${new Set(slots).size} distinct slots: each slot ran ${slots.length === new Set(slots).size ? 'once' : 'MORE THAN ONCE'}`);
console.log(`runs by instance: ${JSON.stringify(Object.fromEntries(Object.keys(offsets).map((who) => [who, runs.filter((r) => r.who === who).length])))} (once all run, the earliest clock reaches every slot first)`);
const [last] = await instances[0].baton.jobs();
console.log(`last slot ${new Date(last.record.slot).toISOString()}: ${last.record.outcome} in ${last.record.durationMs} ms by ${JSON.parse(last.record.by).label}`);
await Promise.all(instances.map(({ baton }) => baton.close()));
if (slots.length !== new Set(slots).size) process.exitCode = 1;
