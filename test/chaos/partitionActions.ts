/**
 * The actions of the `partitions` scenario (partitionScenario.ts) on the instances — join, SIGTERM
 * leave, kill -9 — and the final drain: every partition's group has read and acked its whole stream and
 * no window is open in any partition's checkpoint.
 */
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../../src/config/load.js';
import { CheckpointKeys } from '../../src/redis/checkpointKeys.js';
import type { Failure } from './cluster.js';
import { groupProgress, xpending } from './harness.js';
import { type PartitionInstance, PartitionInstances } from './partitionInstances.js';
import type { PlannedPartitionAction } from './partitionPlan.js';
import type { PartitionActionRecord } from './partitionReport.js';

export interface ActionContext {
  redis: Redis;
  instances: PartitionInstances;
  /** The partition streams, in partition order. */
  streams: string[];
  group: string;
  rand: () => number;
  /** How long a joining instance may take to join and to lead a partition. */
  readyTimeout: number;
  log: (msg: string) => void;
  fail: (f: Omit<Failure, 'at'>) => void;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Entries delivered to `consumer` and not acked, over every partition. */
async function pendingOf(ctx: ActionContext, consumer: string): Promise<number> {
  let n = 0;
  for (const s of ctx.streams) n += (await xpending(ctx.redis, s, ctx.group)).byConsumer[consumer] ?? 0;
  return n;
}

/** One action; returns when it is done (not yet settled). */
export async function performAction(
  ctx: ActionContext,
  p: PlannedPartitionAction,
  rec: PartitionActionRecord,
  quickNext: boolean,
): Promise<void> {
  const { instances, rand, readyTimeout, log, fail } = ctx;
  if (p.kind === 'join') {
    const { consumer, reused } = instances.consumerFor(rand() < 0.4, rand());
    rec.reusedName = reused;
    const inst = instances.spawn(consumer);
    Object.assign(rec, { consumer, pid: inst.proc.pid });
    log(
      `#${rec.n} at ${rec.at.toFixed(1)} s: join ${consumer}${rec.reusedName ? ' (a dead one’s name)' : ''}`,
    );
    if (quickNext) {
      // the kill that follows should land while partitions move to it: wait until it has joined
      await inst.proc
        .waitForMsg(['standby', 'ready'], readyTimeout)
        .catch((e: Error) =>
          fail({ what: 'joined instance never joined the membership', consumer, detail: e.message }),
        );
      return;
    }
    const started = Date.now();
    await inst.proc.waitForMsg(['ready'], readyTimeout).then(
      () => (rec.readyMs = Date.now() - started),
      (e: Error) => fail({ what: 'joined instance never led a partition', consumer, detail: e.message }),
    );
    return;
  }
  const alive = instances.alive;
  const victim = (
    p.quick ? alive[alive.length - 1] : alive[Math.floor(rand() * alive.length)]
  ) as PartitionInstance;
  Object.assign(rec, { consumer: victim.consumer, pid: victim.proc.pid });
  rec.ledBefore = await PartitionInstances.ledBy(victim);
  if (p.kind === 'leave') {
    const started = Date.now();
    const r = await instances.leave(victim, 60_000);
    rec.leaveMs = Date.now() - started;
    rec.released = r.released;
    log(
      `#${rec.n} at ${rec.at.toFixed(1)} s: SIGTERM ${victim.consumer}: exit ${r.code}, released ${r.released}`,
    );
    return;
  }
  if (!p.quick) {
    // land the kill while it holds a read (entries pending on it), for up to 3 s
    const deadline = Date.now() + 3000;
    while ((await pendingOf(ctx, victim.consumer)) === 0 && Date.now() < deadline) await sleep(5);
  }
  await instances.kill9(victim);
  rec.victimPending = await pendingOf(ctx, victim.consumer);
  log(
    `#${rec.n} at ${rec.at.toFixed(1)} s: kill -9 ${victim.consumer} leading ${JSON.stringify(rec.ledBefore)} ` +
      `(${rec.victimPending} unacked)${p.quick ? ' right after its join' : ''}`,
  );
}

/**
 * Waits until every partition's group has read and acked every entry and no window is open in any
 * partition's checkpoint. Gives up at the deadline, or when nothing has moved for idleClose + 20 s.
 */
export async function drainPartitions(
  ctx: ActionContext,
  o: { configs: PipelineConfig[]; outputs: string[]; timeoutMs: number; standstillMs: number },
): Promise<boolean> {
  const { redis, instances, log, fail } = ctx;
  const keys = o.configs.map((c) => CheckpointKeys.of(c));
  const deadline = Date.now() + o.timeoutMs;
  let last = '';
  let lastChange = Date.now();
  for (;;) {
    if (instances.alive.length === 0) {
      fail({ what: 'no instance alive for the drain' });
      instances.spawn(instances.consumerFor(false, 0).consumer);
    }
    const state: unknown[] = await Promise.all(o.outputs.map((k) => redis.xlen(k)));
    let done = true;
    for (const [p, c] of o.configs.entries()) {
      const g = await groupProgress(redis, c.source.stream, ctx.group);
      const batch = redis.pipeline();
      for (let kg = c.partition.from; kg < c.partition.to; kg++)
        batch.scard((keys[p] as CheckpointKeys).windowIndex(kg));
      const open = ((await batch.exec()) ?? []).reduce((n, [, v]) => n + Number(v ?? 0), 0);
      done &&= g.pending === 0 && g.deliveredAll && open === 0;
      state.push(g.lastDelivered, g.pending, open);
    }
    if (done) return true;
    const now = JSON.stringify(state);
    if (now !== last) {
      last = now;
      lastChange = Date.now();
    }
    if (Date.now() > deadline || Date.now() - lastChange > o.standstillMs) {
      log(`drain gave up: ${now}`);
      return false;
    }
    await sleep(500);
  }
}
