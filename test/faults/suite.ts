/**
 * runFaultSuite: the short fault suite for one store, as CI runs it. Each scenario runs a few
 * seconds with real processes and signals, and its histories must pass every checker; a
 * last test checks that the same faults make the unfenced twin lose updates.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { localScenarios, runScenario, type RunResult } from './harness.js';

export interface FaultTarget {
  name: string;
  /** Starts what the store needs (a server) and returns its URL, with `{dir}` / `{run}` placeholders. */
  start(): Promise<string>;
  stop?(): Promise<void>;
  epsilonMs: number;
}

export function runFaultSuite(target: FaultTarget): void {
  const seconds = Number(process.env.BATON_FAULT_SECONDS ?? 5);
  const results: RunResult[] = [];
  let url = '';

  describe(`fault suite: ${target.name}`, () => {
    before(async () => {
      url = await target.start();
    });
    after(async () => target.stop?.());

    for (const scenario of localScenarios('{url}', seconds * 1000, target.epsilonMs)) {
      it(scenario.name, async (t) => {
        const result = await runScenario({ ...scenario, store: url });
        results.push(result);
        t.diagnostic(JSON.stringify({ ...result, examples: undefined }));
        assert.ok(result.grants > 5, `only ${result.grants} grants: the scenario did not exercise the lock`);
        assert.ok(result.faults > 0, 'no fault was injected');
        assert.deepEqual(
          { lostUpdates: result.lostUpdates, staleAccepted: result.staleAccepted, tokenRegressions: result.tokenRegressions, overlaps: result.overlaps, livenessViolations: result.livenessViolations },
          { lostUpdates: 0, staleAccepted: 0, tokenRegressions: 0, overlaps: 0, livenessViolations: 0 },
          result.examples.join('\n'),
        );
        assert.deepEqual(
          { leftover: result.leftover, slowExits: result.slowExits, unhandled: result.unhandled, workerFailures: result.workerFailures },
          { leftover: 0, slowExits: 0, unhandled: 0, workerFailures: [] },
        );
      });
    }

    it('self-check: without fencing the same faults lose updates', () => {
      const biting = results.filter((r) => ['pause-past-ttl', 'block-past-ttl', 'random-nemesis'].includes(r.scenario));
      const anomalies = biting.reduce((sum, r) => sum + r.unfencedAnomalies, 0);
      assert.ok(anomalies > 0, `the unfenced twin showed no anomaly in ${biting.length} runs: the faults do not bite`);
    });
  });
}
