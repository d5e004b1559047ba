/**
 * The full fault run: `npm run faults -- [--seconds 60] [--runs 3] [--store memory|sqlite|redis|redlock|redis-cluster|etcd|zookeeper|dynamodb|all] [--scenario NAME,...] [--seed N]`.
 * Runs every scenario of each store `runs` times for `seconds` each, prints one table row
 * per scenario with totals, and exits 1 if any checker found anything. Run i (from 0) of a
 * scenario uses seed N + i: each run prints its seed, and a failure names it, so that
 * `--seed S --runs 1 --scenario NAME` replays that run's faults. N is `BATON_FAULT_SEED`
 * when set, else 1.
 */
import { parseArgs } from 'node:util';
import { faultSeed, problems, runScenario, type RunResult } from './harness.js';
import { dynamodbTarget, etcdTarget, memoryTarget, redisClusterTarget, redisTarget, redlockTarget, sqliteTarget, zookeeperTarget, type FaultTarget } from './targets.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, runs: { type: 'string', default: '3' }, store: { type: 'string', default: 'sqlite' }, scenario: { type: 'string' }, seed: { type: 'string' } } });
const only = values.scenario?.split(',');
const seconds = Number(values.seconds);
const runs = Number(values.runs);
const firstSeed = values.seed !== undefined ? Number(values.seed) : process.env.BATON_FAULT_SEED ? faultSeed() : 1;
if (!Number.isInteger(firstSeed) || firstSeed < 1 || firstSeed + runs > 2 ** 32) throw new Error(`Expected \`--seed\` to be an integer from 1 to 2^32 - 1 - runs, got ${values.seed}`);
const targets: Record<string, () => FaultTarget> = { memory: memoryTarget, sqlite: sqliteTarget, redis: redisTarget, redlock: redlockTarget, 'redis-cluster': redisClusterTarget, etcd: etcdTarget, zookeeper: zookeeperTarget, dynamodb: dynamodbTarget };
const selected = values.store === 'all' ? Object.keys(targets) : values.store!.split(',');
for (const name of selected) if (!targets[name]) throw new Error(`Unknown store "${name}"; expected ${Object.keys(targets).join(', ')} or all`);
console.log(`fault run: ${selected.join(', ')}; ${runs} run(s) of ${seconds} s per scenario, seeds ${firstSeed} to ${firstSeed + runs - 1}; started ${new Date().toISOString()}\n`);
console.log('| store | scenario | runs | grants | faults | lost updates | stale writes accepted | token regressions | overlaps | liveness violations | worst re-acquire (ms) | worst re-acquire after a restart (ms) | leftovers | slow exits | unhandled | unfenced twin anomalies |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
let bad = 0;
const totals = { runs: 0, grants: 0, faults: 0, lostUpdates: 0, staleAccepted: 0, tokenRegressions: 0, unfencedAnomalies: 0 };
for (const name of selected) {
  const target = targets[name]!();
  try {
    for (const scenario of await target.scenarios(seconds * 1000)) {
      if (only && !only.includes(scenario.name)) continue;
      const results: RunResult[] = [];
      for (let i = 0; i < runs; i++) {
        const seed = firstSeed + i;
        const result = await runScenario(scenario, seed);
        results.push(result);
        const found = problems(scenario, result);
        bad += found.length;
        if (found.length > 0) console.log(`  ${scenario.name} run ${i + 1} (seed ${seed}; replay: --seed ${seed} --runs 1 --scenario ${scenario.name}): ${found.join(', ')}`);
      }
      const sum = (key: keyof RunResult): number => results.reduce((total, r) => total + (r[key] as number), 0);
      const worst = Math.max(...results.map((r) => r.worstReacquireMs ?? -1));
      const worstRestart = Math.max(...results.map((r) => r.worstRestartReacquireMs ?? -1));
      const overlaps = scenario.restartForgets ? `${sum('overlaps')} (all after a restart: ${sum('restartOverlaps')}; longest ${Math.max(...results.map((r) => r.worstOverlapMs)).toFixed(0)} ms)` : String(sum('overlaps'));
      console.log(`| ${target.name} | ${scenario.name} | ${runs} | ${sum('grants')} | ${sum('faults')} | ${sum('lostUpdates')} | ${sum('staleAccepted')} | ${sum('tokenRegressions')} | ${overlaps} | ${sum('livenessViolations') + sum('restartLivenessViolations')} | ${worst < 0 ? '-' : worst.toFixed(0)} | ${worstRestart < 0 ? '-' : worstRestart.toFixed(0)} | ${sum('leftover')} | ${sum('slowExits')} | ${sum('unhandled')} | ${sum('unfencedAnomalies')} |`);
      for (const r of results) for (const example of r.examples) console.log(`  ${r.scenario} (seed ${r.seed}): ${example}`);
      totals.runs += runs;
      for (const key of ['grants', 'faults', 'lostUpdates', 'staleAccepted', 'tokenRegressions', 'unfencedAnomalies'] as const) totals[key] += sum(key);
    }
  } finally {
    await target.stop();
  }
}
console.log(`\nTotals: ${JSON.stringify(totals)}; finished ${new Date().toISOString()}`);
console.log(bad === 0 ? 'Every checker passed.' : `${bad} problem(s) found.`);
process.exitCode = bad === 0 ? 0 : 1;
// Everything was stopped and closed: the process should end now. If something still keeps it
// alive (a client left open, a reconnection loop), say what, and end it.
setTimeout(() => {
  console.error(`fault run: still running 10 s after the end, kept alive by: ${process.getActiveResourcesInfo().join(', ')}`);
  process.exit(process.exitCode === 0 ? 1 : process.exitCode);
}, 10_000).unref();
