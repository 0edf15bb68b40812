/**
 * The chaos run's `partitions` scenario (issue #12): a seeded producer writes the usual input (duplicates,
 * out-of-order, malformed and hostile entries, plus a few on purpose to the wrong partition) into the 8
 * partition streams of one pipeline on a private Redis with AOF, while 1–4 instances share the partitions
 * and the harness keeps changing them (partitionPlan.ts):
 *
 *   kill   kill -9 of an instance (its partitions are taken over after the lease TTL, its pending entries
 *          claimed); some right after it joined, during its restore or hand-over
 *   leave  SIGTERM: it drains, commits and releases its partitions; the others acquire them at once
 *   join   a new instance (a new consumer name, or a dead one's): the owners hand partitions over to it
 *
 * After each action (unless a quick kill follows) it waits until the ownership settles again — every
 * partition led by exactly one live instance, balanced — and records how long that took. Then it lets the
 * instances drain, computes the expected output per partition with the oracle and reports lost /
 * duplicated / wrong results, per-key order violations, stuck pending entries per partition, dead letters
 * by code, and who leads what at the end (partitionReport.ts). Nothing here asserts on durations.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CheckpointKeys } from '../../src/redis/checkpointKeys.js';
import { startLocalRedis } from '../../src/tools/localRedis.js';
import { mulberry32 } from '../../src/tools/produce/generator.js';
import type { Failure } from './cluster.js';
import { generatorOptions, groupProgress, ID_MS } from './harness.js';
import { checkDeadLetters, checkWindows } from './oracle.js';
import {
  PARTITIONS,
  partitionNames,
  partitionOfEntry,
  partitionPipelineConfigs,
  partitionedYaml,
  START_ALIVE,
} from './partitionConfigs.js';
import { expectPartitioned, readPartitionedInput } from './partitionInput.js';
import { type ActionContext, drainPartitions, performAction } from './partitionActions.js';
import { PartitionInstances } from './partitionInstances.js';
import { type PlannedPartitionAction, planPartitionActions } from './partitionPlan.js';
import {
  type PartitionActionRecord,
  type PartitionChaosReport,
  type PerPartition,
  logFigures,
  partitionProblems,
  settleStats,
  writePartitionReport,
} from './partitionReport.js';
import { startProducer } from './producer.js';

export interface PartitionChaosOptions {
  events: number;
  /** kill -9s; leaves and joins come on top (partitionPlan.ts). */
  kills: number;
  seed: number;
  /** @defaultValue 1000 */
  keys?: number;
  /** Events per second; default: the input takes max(45 s, 3 s per planned action) to write. */
  rate?: number;
  /** @defaultValue 1 */
  minLeaves?: number;
  /** Where last-report-partitions.{json,md} go; unset: not written. */
  reportDir?: string;
  /** How long a joining instance may take to log "ready", and ownership to settle. @defaultValue 60 s */
  readyTimeoutMs?: number;
  /** How long the final drain may take. @defaultValue 120 s + 1 s per 5,000 events */
  drainTimeoutMs?: number;
  log?: (msg: string) => void;
}

const LEASE_TTL_MS = 2_000;
const IDLE_CLOSE_MS = 10_000;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runPartitionChaos(opts: PartitionChaosOptions): Promise<PartitionChaosReport> {
  const log = opts.log ?? ((m: string) => console.log(`[chaos:partitions] ${m}`));
  const t0 = Date.now();
  const since = () => (Date.now() - t0) / 1000;
  const gen = generatorOptions({ events: opts.events, kills: opts.kills, seed: opts.seed, keys: opts.keys });
  const rand = mulberry32(opts.seed ^ 0x9a27);
  const plan = planPartitionActions(opts.kills, rand, { minLeaves: opts.minLeaves ?? 1 });
  const rate = opts.rate ?? Math.ceil(opts.events / Math.max(45, plan.length * 3));
  const readyTimeout = opts.readyTimeoutMs ?? 60_000;
  const logDir = mkdtempSync(join(tmpdir(), 'streamshard-chaos-partitions-'));
  const names = partitionNames(`chaos:${randomBytes(4).toString('hex')}`);
  const template = { leaseTtl: `${LEASE_TTL_MS}ms`, idleClose: `${IDLE_CLOSE_MS}ms` };
  const configs = partitionPipelineConfigs(names, template);
  const streams = configs.map((c) => c.source.stream);
  const keys = configs.map((c) => CheckpointKeys.of(c));
  const failures: Failure[] = [];
  const fail = (f: Omit<Failure, 'at'>) => {
    failures.push({ ...f, at: since() });
    log(`FAILURE at ${since().toFixed(1)} s: ${f.what} ${f.consumer ?? ''} ${f.detail ?? ''}`);
  };
  log(
    `${opts.events} events at ${rate}/s into ${PARTITIONS} partitions, ${plan.length} actions ` +
      `(${plan.map((p) => (p.quick ? 'K' : p.kind[0])).join('')}), logs in ${logDir}`,
  );

  const server = await startLocalRedis({ appendOnly: true });
  const redis = new Redis(server.url, {
    protocol: 2,
    enableAutoPipelining: false,
    maxRetriesPerRequest: null,
  });
  redis.on('error', () => {});
  const instances = new PartitionInstances(
    (consumer) => partitionedYaml(names, consumer, template),
    keys.map((k) => k.lease()),
    { REDIS_URL: server.url },
    logDir,
    fail,
  );
  const ctx: ActionContext = { redis, instances, streams, group: names.group, rand, readyTimeout, log, fail };
  const records: PartitionActionRecord[] = [];
  const seconds = { total: 0, chaos: 0, drain: 0, oracle: 0 };
  let producerDone = false;
  let aliveMin = START_ALIVE;
  let aliveMax = START_ALIVE;

  try {
    for (let i = 0; i < START_ALIVE; i++) instances.spawn(instances.consumerFor(false, 0).consumer);
    const first = await instances.waitSettled(redis, readyTimeout);
    if (!first.last.settled)
      throw new Error(`the instances did not settle: ${first.last.problem}; logs in ${logDir}`);
    const producer = startProducer(redis, names.input, gen, {
      rate,
      idMs: ID_MS,
      routed: { streams, route: partitionOfEntry },
    });
    const producerResult = producer.done.then(
      (r) => {
        producerDone = true;
        log(`producer done: ${r.produced} events in ${r.seconds.toFixed(1)} s`);
        return r;
      },
      (e: Error) => {
        producerDone = true;
        fail({ what: 'producer failed', detail: e.message });
        return null;
      },
    );

    /* ---------------------------------------------- chaos ----------------------------------------------- */
    const tChaos = Date.now();
    const interval = ((opts.events / rate) * 1000) / (plan.length + 1);
    for (let i = 0; i < plan.length; i++) {
      const p = plan[i] as PlannedPartitionAction;
      const quickNext = plan[i + 1]?.quick === true;
      if (p.quick) await sleep(100 + rand() * 500);
      else
        await sleep(
          Math.max(100, tChaos + (i + 1) * interval + (rand() - 0.5) * 0.6 * interval - Date.now()),
        );
      if (instances.alive.length === 0) {
        fail({ what: 'no instance alive before an action' });
        instances.spawn(instances.consumerFor(false, 0).consumer);
      }
      const rec: PartitionActionRecord = {
        n: i + 1,
        at: since(),
        kind: p.kind,
        quick: p.quick,
        consumer: '',
        pid: 0,
        aliveBefore: instances.alive.length,
        aliveAfter: 0,
        produced: producer.progress(),
        duringProduction: !producerDone,
      };
      records.push(rec);
      const started = Date.now();
      await performAction(ctx, p, rec, quickNext);
      rec.aliveAfter = instances.alive.length;
      aliveMin = Math.min(aliveMin, rec.aliveAfter);
      aliveMax = Math.max(aliveMax, rec.aliveAfter);
      if (quickNext) continue;
      const settled = await instances.waitSettled(redis, readyTimeout);
      if (settled.last.settled) rec.settledMs = Date.now() - started;
      else
        fail({
          what: `ownership not settled ${readyTimeout} ms after the action`,
          detail: settled.last.problem,
        });
    }
    seconds.chaos = (Date.now() - tChaos) / 1000;
    log(`chaos over at ${since().toFixed(1)} s; waiting for the producer`);
    const prod = await producerResult;

    /* ---------------------------------------------- oracle ---------------------------------------------- */
    const tOracle = Date.now();
    const input = await readPartitionedInput(redis, streams, gen, ID_MS);
    const expected = expectPartitioned(input, configs);
    seconds.oracle = (Date.now() - tOracle) / 1000;
    log(
      `oracle: ${expected.sink.length} windows, ${expected.deadLetters.length} dead letters (${seconds.oracle.toFixed(1)} s)`,
    );

    /* ---------------------------------------------- drain ----------------------------------------------- */
    const tDrain = Date.now();
    const drained = await drainPartitions(ctx, {
      configs,
      outputs: [names.sink, names.dlq],
      timeoutMs: opts.drainTimeoutMs ?? 120_000 + opts.events / 5,
      standstillMs: IDLE_CLOSE_MS + 20_000,
    });
    seconds.drain = (Date.now() - tDrain) / 1000;
    const ownershipAtEnd = (await instances.waitSettled(redis, 30_000)).last;
    const perPartition: PerPartition[] = [];
    for (const [p, stream] of streams.entries()) {
      const g = await groupProgress(redis, stream, names.group);
      const entries = input.check.perPartition[p] as number;
      perPartition.push({ partition: p, stream, entries, ...pick(g) });
    }
    log(
      `drain: ${drained} after ${seconds.drain.toFixed(1)} s; ownership ${JSON.stringify(ownershipAtEnd.led)}`,
    );
    await instances.stopAll(30_000);

    const body: Omit<PartitionChaosReport, 'ok'> = {
      seed: opts.seed,
      events: opts.events,
      keys: gen.keys,
      rate,
      partitions: PARTITIONS,
      leaseTtlMs: LEASE_TTL_MS,
      startedAt: new Date(t0).toISOString(),
      seconds,
      input: {
        ...input.check,
        byKind: prod?.byKind ?? {},
        producerRetries: prod?.retries ?? 0,
        producerAlreadyWritten: prod?.alreadyWritten ?? 0,
      },
      actions: {
        total: records.length,
        kills: records.filter((a) => a.kind === 'kill').length,
        leaves: records.filter((a) => a.kind === 'leave').length,
        joins: records.filter((a) => a.kind === 'join').length,
        quickKills: records.filter((a) => a.quick).length,
        killsWithPending: records.filter((a) => (a.victimPending ?? 0) > 0).length,
        duringProduction: records.filter((a) => a.duringProduction).length,
        joinsReusingAName: records.filter((a) => a.reusedName).length,
        aliveMin,
        aliveMax,
      },
      settled: {
        kill: settleStats(records, 'kill'),
        leave: settleStats(records, 'leave'),
        join: settleStats(records, 'join'),
      },
      figures: logFigures(logDir),
      instancesStarted: instances.started.length,
      output: await checkWindows(redis, names.sink, expected.sink),
      deadLetters: await checkDeadLetters(redis, names.dlq, expected.deadLetters),
      perPartition,
      drained,
      ownershipAtEnd,
      failures,
      log: records,
      logDir,
      redisDataCopy: null,
    };
    const report: PartitionChaosReport = { ok: partitionProblems(body).length === 0, ...body };
    seconds.total = since();
    if (!report.ok) {
      report.redisDataCopy = join(logDir, 'redis-data');
      cpSync(server.dir, report.redisDataCopy, { recursive: true });
    }
    if (opts.reportDir) log(`report: ${writePartitionReport(report, opts.reportDir).md}`);
    return report;
  } finally {
    await instances.killAll();
    redis.disconnect();
    await server.stop();
  }
}

function pick(
  g: Awaited<ReturnType<typeof groupProgress>>,
): Omit<PerPartition, 'partition' | 'stream' | 'entries'> {
  return { pending: g.pending, deliveredAll: g.deliveredAll, lastDelivered: g.lastDelivered };
}
