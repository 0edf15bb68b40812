/**
 * The instance-wide figures of the partitions it leads, summed over their terms, for the metrics that
 * existed before partitions (per shard index, pipeline-wide) and the status page: shard s's figure is the
 * sum (or, for utilisation, the mean; for stream time, the earliest) over the owned partitions' shard s.
 * With one partition these are exactly that partition's figures. Per-partition figures are in
 * metrics/partitionMetrics.ts.
 */
import type { Sample } from '../inspect/sampler.js';
import type { GroupInfo } from '../store/store.js';
import type { Engine } from './engine.js';
import type { PartitionRunner } from './partitionRunner.js';

export class OwnedPartitions {
  constructor(private readonly runners: readonly PartitionRunner[]) {}

  /** The engines of the partitions led now. */
  engines(): Engine[] {
    const out: Engine[] = [];
    for (const r of this.runners) {
      const e = r.current;
      if (e !== null) out.push(e);
    }
    return out;
  }

  /** The partitions led now, with their latest samples. */
  owned(): Array<{ partition: number; sample: Sample | null }> {
    const out: Array<{ partition: number; sample: Sample | null }> = [];
    for (const r of this.runners)
      if (r.role === 'leader') out.push({ partition: r.index, sample: r.sampler.latest });
    return out;
  }

  count(): number {
    let n = 0;
    for (const r of this.runners) if (r.role === 'leader') n++;
    return n;
  }

  /** The highest lease epoch among the partitions led now (0 when none). */
  epoch(): number {
    let e = 0;
    for (const r of this.runners) if (r.role === 'leader') e = Math.max(e, r.lease.epoch);
    return e;
  }

  async groupInfo(): Promise<GroupInfo | null> {
    const infos = await Promise.all(this.engines().map((e) => e.groupInfo()));
    if (infos.length === 0 || infos.some((i) => i === null)) return null;
    let pending = 0;
    let lag: number | null = 0;
    for (const i of infos as GroupInfo[]) {
      pending += i.pending;
      lag = lag === null || i.lag === null ? null : lag + i.lag;
    }
    return { pending, lag };
  }

  inFlight(s: number): number {
    return this.sum((e) => e.inFlight(s));
  }

  busyMs(s: number): number {
    return this.sum((e) => e.busyMs(s));
  }

  utilization(s: number): number {
    const es = this.engines();
    return es.length === 0 ? 0 : this.sum((e) => e.utilization(s)) / es.length;
  }

  workerHeap(s: number): [number, number] {
    return [this.sum((e) => e.workerHeap(s)[0]), this.sum((e) => e.workerHeap(s)[1])];
  }

  shardState(s: number): { streamTime: number | null; openWindows: number; dedupIds: number } | null {
    let out: { streamTime: number | null; openWindows: number; dedupIds: number } | null = null;
    for (const e of this.engines()) {
      const st = e.shardState(s);
      if (st === null) continue;
      if (out === null) out = { ...st };
      else {
        out.openWindows += st.openWindows;
        out.dedupIds += st.dedupIds;
        if (st.streamTime !== null && (out.streamTime === null || st.streamTime < out.streamTime))
          out.streamTime = st.streamTime;
      }
    }
    return out;
  }

  /** Readiness of every term led now; null when none is. */
  readiness(): Record<string, boolean> | null {
    const es = this.engines();
    if (es.length === 0) return null;
    const out: Record<string, boolean> = {};
    for (const e of es) for (const [k, v] of Object.entries(e.readiness())) out[k] = (out[k] ?? true) && v;
    return out;
  }

  /**
   * One sample for the instance: lags and pending summed over the partitions led now, the oldest entry's
   * age the largest; the output and dead-letter streams are shared, so their lengths are taken once.
   */
  sample(): Sample | null {
    let out: Sample | null = null;
    for (const o of this.owned()) {
      const x = o.sample;
      if (x === null) continue;
      if (out === null) {
        out = { ...x, lengths: { ...x.lengths } };
        continue;
      }
      out.at = Math.max(out.at, x.at);
      out.lagSeconds = Math.max(out.lagSeconds, x.lagSeconds);
      out.pending += x.pending;
      out.lag = out.lag === null || x.lag === null ? null : out.lag + x.lag;
      out.lengths.input += x.lengths.input;
      out.checkpointBytes =
        out.checkpointBytes === null || x.checkpointBytes === null
          ? null
          : out.checkpointBytes + x.checkpointBytes;
    }
    return out;
  }

  private sum(f: (e: Engine) => number): number {
    let n = 0;
    for (const e of this.engines()) n += f(e);
    return n;
  }
}
