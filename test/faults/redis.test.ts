/**
 * The fault suite, short version, on the Redis store (one real redis-server on loopback):
 * the client-side scenarios, with the same checkers as SQLite and Redis's ε of 150 ms.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { localScenarios, runScenario, type RunResult } from './harness.js';

const seconds = Number(process.env.BATON_FAULT_SECONDS ?? 5);
const results: RunResult[] = [];
let server: RedisServer;

describe('fault suite: Redis', () => {
  before(async () => {
    server = await startRedis();
  });
  after(() => server.stop());

  for (const scenario of localScenarios('redis://127.0.0.1:PORT?prefix={run}', seconds * 1000, 150)) {
    it(scenario.name, async (t) => {
      const result = await runScenario({ ...scenario, store: scenario.store.replace('PORT', String(server.port)) });
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
    assert.ok(biting.reduce((sum, r) => sum + r.unfencedAnomalies, 0) > 0, 'the unfenced twin showed no anomaly: the faults do not bite');
  });
});
