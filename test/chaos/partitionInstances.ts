/**
 * The instances of the partitioned pipeline during a chaos run: `streamshard run` children that join
 * (a new consumer name, or the name of a dead one, as a restarted pod would), leave with SIGTERM and are
 * killed with -9. Every exit the harness did not cause is a failure with the process's last stderr lines.
 *
 * "Settled" means what the coordinator promises once hand-overs and take-overs are done: every partition
 * led by exactly one live instance (its /metrics has the partition's series), the partition's lease held by
 * that instance (the lease value's owner is `<consumer>/<random>`), and each instance leading ⌊P/N⌋ or
 * ⌈P/N⌉ partitions.
 */
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { Lease } from '../../src/lease/lease.js';
import { parseMetrics } from '../helpers/metricsText.js';
import { httpGet, type PipelineProcess, spawnPipeline } from '../helpers/pipeline.js';
import type { Failure } from './cluster.js';
import { PARTITIONS } from './partitionConfigs.js';

export interface PartitionInstance {
  consumer: string;
  serial: number;
  proc: PipelineProcess;
  /** Set before the harness kills or stops it: its exit is then expected. */
  expectedExit: boolean;
}

export interface Ownership {
  settled: boolean;
  /** Per live instance (`consumer: [partitions]`), or why it could not say. */
  led: Record<string, number[] | string>;
  /** Per partition: the consumer part of its lease's owner, or null when free. */
  leaseOwners: Array<string | null>;
  /** Why it is not settled ('' when it is). */
  problem: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class PartitionInstances {
  /** Running instances the harness has not killed or stopped. */
  readonly alive: PartitionInstance[] = [];
  /** Every instance ever started, for the report. */
  readonly started: Array<{ consumer: string; pid: number; serial: number }> = [];
  private serial = 0;
  private readonly dead = new Set<string>();

  constructor(
    private readonly yaml: (consumer: string) => string,
    private readonly leaseKeys: readonly string[],
    private readonly env: Record<string, string>,
    private readonly logDir: string,
    private readonly fail: (f: Omit<Failure, 'at'>) => void,
  ) {}

  /** A consumer name for a new instance: a dead instance's when `reuse` and there is one, else a new one. */
  consumerFor(reuse: boolean, pick: number): { consumer: string; reused: boolean } {
    const names = [...this.dead];
    if (reuse && names.length > 0)
      return { consumer: names[Math.floor(pick * names.length)] as string, reused: true };
    return { consumer: `p${this.serial + 1}`, reused: false };
  }

  /** Starts an instance and watches its exit. */
  spawn(consumer: string): PartitionInstance {
    const serial = ++this.serial;
    this.dead.delete(consumer);
    const proc = spawnPipeline(this.yaml(consumer), {
      env: this.env,
      logFile: join(this.logDir, `partitions-${String(serial).padStart(3, '0')}-${consumer}.log`),
    });
    const inst: PartitionInstance = { consumer, serial, proc, expectedExit: false };
    this.alive.push(inst);
    this.started.push({ consumer, pid: proc.pid, serial });
    void proc.exited.then(({ code, signal }) => {
      this.forget(inst);
      if (inst.expectedExit) return;
      this.fail({
        what: 'unexpected exit',
        consumer,
        pid: proc.pid,
        detail: `exited with ${signal ?? `code ${code}`}`,
        stderrTail: proc.logs().slice(-30),
      });
    });
    return inst;
  }

  private forget(inst: PartitionInstance): void {
    const at = this.alive.indexOf(inst);
    if (at >= 0) this.alive.splice(at, 1);
    this.dead.add(inst.consumer);
  }

  /** kill -9, expected. */
  async kill9(inst: PartitionInstance): Promise<void> {
    inst.expectedExit = true;
    this.forget(inst);
    await inst.proc.kill9();
  }

  /** SIGTERM: a graceful leave. A non-zero exit code or no exit in time is a failure. */
  async leave(
    inst: PartitionInstance,
    timeoutMs: number,
  ): Promise<{ code: number | null; released: number }> {
    inst.expectedExit = true;
    this.forget(inst);
    const code = await inst.proc.stop('SIGTERM', timeoutMs).catch((e: Error) => {
      this.fail({
        what: 'no exit after SIGTERM',
        consumer: inst.consumer,
        pid: inst.proc.pid,
        detail: e.message,
      });
      return null;
    });
    if (code !== 0) {
      this.fail({
        what: 'non-zero exit after SIGTERM',
        consumer: inst.consumer,
        pid: inst.proc.pid,
        detail: `exit code ${code}`,
        stderrTail: inst.proc.logs().slice(-30),
      });
    }
    const released = inst.proc
      .logs()
      .filter((l) => l.includes('"msg":"partition released"') && l.includes('"reason":"stop"')).length;
    return { code, released };
  }

  /** The partitions an instance leads, from its /metrics (series exist only for led partitions). */
  static async ledBy(inst: PartitionInstance): Promise<number[] | string> {
    const port = inst.proc.metricsPort();
    if (port === undefined) return 'no metrics port yet';
    try {
      const text = (await httpGet(port, '/metrics')).body;
      return parseMetrics(text)
        .samples.filter((x) => x.name === 'streamshard_partition_pending')
        .map((x) => Number(x.labels.partition))
        .sort((a, b) => a - b);
    } catch (e) {
      return `no answer: ${(e as Error).message}`;
    }
  }

  /** Who leads what, by the instances' own word and by the leases; settled or not (module comment). */
  async ownership(redis: Redis): Promise<Ownership> {
    const live = [...this.alive];
    const led: Record<string, number[] | string> = {};
    for (const inst of live) led[inst.consumer] = await PartitionInstances.ledBy(inst);
    const values = await Promise.all(this.leaseKeys.map((k) => redis.get(k)));
    const leaseOwners = values.map((v) => (v === null ? null : (Lease.ownerOf(v).split('/')[0] as string)));
    const out: Ownership = { settled: false, led, leaseOwners, problem: '' };
    if (live.length === 0) return { ...out, problem: 'no live instance' };
    const leader: Array<string[]> = Array.from({ length: PARTITIONS }, () => []);
    for (const [consumer, list] of Object.entries(led)) {
      if (typeof list === 'string') return { ...out, problem: `${consumer}: ${list}` };
      for (const p of list) leader[p]?.push(consumer);
    }
    const lo = Math.floor(PARTITIONS / live.length);
    for (let p = 0; p < PARTITIONS; p++) {
      const who = leader[p] as string[];
      if (who.length !== 1) return { ...out, problem: `partition ${p} led by ${who.length} instances` };
      if (leaseOwners[p] !== who[0])
        return { ...out, problem: `partition ${p}: led by ${who[0]}, lease held by ${leaseOwners[p]}` };
    }
    for (const [consumer, list] of Object.entries(led)) {
      const n = (list as number[]).length;
      if (n !== lo && n !== lo + 1) return { ...out, problem: `${consumer} leads ${n} partitions` };
    }
    return { ...out, settled: true };
  }

  /** Polls {@link ownership} until settled or `timeoutMs`; returns the last view and the time it took. */
  async waitSettled(redis: Redis, timeoutMs: number): Promise<{ ms: number; last: Ownership }> {
    const t0 = Date.now();
    for (;;) {
      const last = await this.ownership(redis);
      if (last.settled || Date.now() - t0 > timeoutMs) return { ms: Date.now() - t0, last };
      await sleep(100);
    }
  }

  /** SIGTERM every live instance (failures as in {@link leave}). */
  async stopAll(timeoutMs: number): Promise<void> {
    await Promise.all([...this.alive].map((inst) => this.leave(inst, timeoutMs)));
  }

  /** kill -9 whatever still runs (the harness's last resort). */
  async killAll(): Promise<void> {
    for (const inst of [...this.alive]) await this.kill9(inst);
  }
}
