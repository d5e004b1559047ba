/**
 * The full fault run: `npm run faults -- [--seconds 60] [--runs 3] [--store sqlite|redis|all]`.
 * Runs every scenario of each store `runs` times for `seconds` each, prints one table row
 * per scenario with totals, and exits 1 if any checker found anything.
 */
import { parseArgs } from 'node:util';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { localScenarios, runScenario, type RunResult, type Scenario } from './harness.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, runs: { type: 'string', default: '3' }, store: { type: 'string', default: 'sqlite' } } });
const seconds = Number(values.seconds);
const runs = Number(values.runs);
let redis: RedisServer | null = null;
const stores: Record<string, () => Promise<Scenario[]>> = {
  sqlite: async () => localScenarios('sqlite:{dir}/locks.db', seconds * 1000, 200),
  redis: async () => {
    redis ??= await startRedis();
    return localScenarios(`redis://127.0.0.1:${redis.port}?prefix={run}`, seconds * 1000, 150);
  },
};
const selected = values.store === 'all' ? Object.keys(stores) : [values.store!];
console.log(`fault run: ${selected.join(', ')}; ${runs} run(s) of ${seconds} s per scenario; started ${new Date().toISOString()}\n`);
console.log('| store | scenario | runs | grants | faults | lost updates | stale writes accepted | token regressions | overlaps | liveness violations | worst re-acquire (ms) | leftovers | slow exits | unhandled | unfenced twin anomalies |');
console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
let bad = 0;
for (const store of selected) {
  for (const scenario of await stores[store]!()) {
    const results: RunResult[] = [];
    for (let i = 0; i < runs; i++) results.push(await runScenario(scenario, i + 1));
    const sum = (key: keyof RunResult): number => results.reduce((total, r) => total + (r[key] as number), 0);
    const worst = Math.max(...results.map((r) => r.worstReacquireMs ?? -1));
    const failures = sum('lostUpdates') + sum('staleAccepted') + sum('tokenRegressions') + sum('overlaps') + sum('livenessViolations') + sum('leftover') + sum('slowExits') + sum('unhandled') + results.reduce((n, r) => n + r.workerFailures.length, 0);
    bad += failures;
    console.log(`| ${store} | ${scenario.name} | ${runs} | ${sum('grants')} | ${sum('faults')} | ${sum('lostUpdates')} | ${sum('staleAccepted')} | ${sum('tokenRegressions')} | ${sum('overlaps')} | ${sum('livenessViolations')} | ${worst < 0 ? '-' : worst.toFixed(0)} | ${sum('leftover')} | ${sum('slowExits')} | ${sum('unhandled')} | ${sum('unfencedAnomalies')} |`);
    for (const r of results) for (const example of r.examples) console.log(`  ${r.scenario}: ${example}`);
  }
}
await (redis as RedisServer | null)?.stop();
console.log(bad === 0 ? '\nEvery checker passed.' : `\n${bad} problem(s) found.`);
process.exitCode = bad === 0 ? 0 : 1;
