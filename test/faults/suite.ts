/**
 * runFaultSuite: the short fault suite for one store, as CI runs it. Each scenario runs a few
 * seconds with real processes and signals, and its histories must pass every checker; a
 * last test checks that the same faults make the unfenced twin lose updates.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { faultSeed, problems, runScenario, type RunResult, type Scenario } from './harness.js';
import type { FaultTarget } from './targets.js';

/**
 * Each scenario runs `BATON_FAULT_SECONDS` seconds, or `options.seconds` (default 5): a store
 * with a long TTL (etcd's 1 s) needs a little longer to see a few faults in each scenario.
 * Each run prints its seed when it starts, and every failure names it: `BATON_FAULT_SEED=N`
 * replays the faults of that run (in every scenario of the file).
 */
export function runFaultSuite(target: FaultTarget, names: string[], options?: { seconds?: number }): void {
  const seconds = Number(process.env.BATON_FAULT_SECONDS ?? options?.seconds ?? 5);
  const results: RunResult[] = [];
  let scenarios: Scenario[] = [];

  describe(`fault suite: ${target.name}`, () => {
    before(async () => {
      scenarios = await target.scenarios(seconds * 1000);
      assert.deepEqual(scenarios.map((s) => s.name), names, 'the test names the scenarios the target runs');
    });
    after(() => target.stop());

    for (const name of names) {
      it(name, async (t) => {
        const scenario = scenarios.find((s) => s.name === name)!;
        const seed = faultSeed();
        const replay = `seed ${seed}, replay with BATON_FAULT_SEED=${seed}`;
        t.diagnostic(replay);
        const result = await runScenario(scenario, seed).catch((error: unknown) => {
          throw new Error(`${name} (${replay}) failed: ${String(error)}`, { cause: error });
        });
        results.push(result);
        t.diagnostic(JSON.stringify({ ...result, examples: undefined }));
        assert.ok(result.grants > 5, `only ${result.grants} grants: the scenario did not exercise the lock (${replay})`);
        assert.ok(result.faults > 0, `no fault was injected (${replay})`);
        assert.deepEqual(problems(scenario, result), [], `${replay}\n${result.examples.join('\n')}`);
      });
    }

    it('self-check: without fencing the same faults lose updates', () => {
      const anomalies = results.reduce((sum, r) => sum + r.unfencedAnomalies, 0);
      assert.ok(anomalies > 0, `the unfenced twin showed no anomaly in ${results.length} runs (seeds ${results.map((r) => r.seed).join(', ')}): the faults do not bite`);
    });
  });
}
