/** Scheduled-job acceptance (schedule-run.ts) with real processes on SQLite, Redis, a Redlock quorum and etcd. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startEtcd, type EtcdCluster } from '../helpers/etcd-server.js';
import { startRedis, type RedisServer } from '../helpers/redis-server.js';
import { runSchedule } from './schedule-run.js';

const dir = mkdtempSync(join(tmpdir(), 'baton-schedule-'));
const redis: RedisServer[] = [];
let etcd: EtcdCluster;
before(async () => {
  for (let i = 0; i < 3; i++) redis.push(await startRedis());
  etcd = await startEtcd(1);
});
after(async () => {
  for (const server of redis) await server.stop();
  await etcd?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it('a job every second on 3 processes 2 s apart runs each slot once on SQLite, and a killed run is not run again', async (t) => runSchedule(t, 'sqlite', `sqlite:${join(dir, 'locks.db')}`));
it('the same on Redis', async (t) => runSchedule(t, 'redis', redis[0]!.url));
it('the same on a Redlock quorum of 3 Redis servers', async (t) => runSchedule(t, 'quorum', `redis+quorum://${redis.map((s) => `127.0.0.1:${s.port}`).join(',')}?prefix=sched`));
it('the same on etcd', async (t) => runSchedule(t, 'etcd', `etcd://${etcd.endpoints[0]!.replace('http://', '')}?sessionTtlMs=1000`));
