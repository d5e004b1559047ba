/**
 * The fault suite, short version, on the SQLite store: each scenario runs a few seconds
 * with real processes and signals, and its histories must pass every checker. The full
 * version (`npm run faults`) runs the same scenarios for minutes.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { localScenarios, runScenario, type RunResult } from './harness.js';

const seconds = Number(process.env.BATON_FAULT_SECONDS ?? 5);
const results: RunResult[] = [];

describe('fault suite: SQLite', () => {
  for (const scenario of localScenarios('sqlite:{dir}/locks.db', seconds * 1000, 200)) {
    it(scenario.name, async (t) => {
      const result = await runScenario(scenario);
      results.push(result);
      t.diagnostic(JSON.stringify({ ...result, examples: undefined }));
      assert.ok(result.grants > 5, `only ${result.grants} grants: the scenario did not exercise the lock`);
      assert.ok(result.faults > 0, 'no fault was injected');
      assert.deepEqual(
        { lostUpdates: result.lostUpdates, staleAccepted: result.staleAccepted, tokenRegressions: result.tokenRegressions, overlaps: result.overlaps, livenessViolations: result.livenessViolations },
        { lostUpdates: 0, staleAccepted: 0, tokenRegressions: 0, overlaps: 0, livenessViolations: 0 },
        result.examples.join('\n'),
      );
      assert.deepEqual({ leftover: result.leftover, slowExits: result.slowExits, unhandled: result.unhandled, workerFailures: result.workerFailures }, { leftover: 0, slowExits: 0, unhandled: 0, workerFailures: [] });
    });
  }

  it('self-check: without fencing the same faults lose updates', () => {
    const biting = results.filter((r) => ['pause-past-ttl', 'block-past-ttl', 'random-nemesis'].includes(r.scenario));
    const anomalies = biting.reduce((sum, r) => sum + r.unfencedAnomalies, 0);
    assert.ok(anomalies > 0, `the unfenced twin showed no anomaly in ${biting.length} runs: the faults do not bite`);
  });
});
