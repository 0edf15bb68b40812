/**
 * The piscina worker entry. Each shard has its own single-thread pool, so this module's state is the
 * state of exactly one shard. It applies a batch (or an idle tick) and answers with the encoded commit.
 */
import { getHeapStatistics } from 'node:v8';
import { faults } from '../fault/faults.js';
import { jsonLine } from '../sink/sink.js';
import { CommitBuilder } from './commitBuilder.js';
import type { BatchResult, InitResult, ShardOutput, ShardTask } from './protocol.js';
import { Shard } from './shard.js';

let shard: Shard | null = null;
let builder: CommitBuilder | null = null;
let stdout = false;
let shardIndex = -1;
let generation = 0;
let batches = 0;

export default function run(task: ShardTask): ShardOutput | InitResult {
  switch (task.kind) {
    case 'init':
      shard = new Shard(task.config, { state: task.restored, now: task.now });
      builder = new CommitBuilder(task.config, task.shard);
      stdout = task.config.sink.type === 'stdout';
      shardIndex = task.shard;
      generation = task.generation;
      return {
        openWindows: shard.openWindows,
        dedupIds: shard.dedupIds,
        streamTime: shard.currentStreamTime,
        streamTimeCapped: shard.streamTimeCapped,
      };
    case 'batch': {
      const t0 = performance.now();
      batches++;
      const once = faults.crashWorkerOnce;
      if (once !== null && generation === 0 && once.shard === shardIndex && once.batch === batches) {
        process.exit(70); // ends this worker thread only
      }
      return answer(current().processBatch(task.buf, task.now), t0);
    }
    case 'tick': {
      const t0 = performance.now();
      return answer(current().tick(task.quietUntil, task.quietSince), t0);
    }
  }
}

function answer(r: BatchResult, t0: number): ShardOutput {
  const commit = (builder as CommitBuilder).build(r);
  const heap = getHeapStatistics(); // ~1 µs
  return {
    commit,
    printed: stdout ? printable(r) : [],
    acked: r.entryIds.length,
    resultsWritten: r.results.length + r.passThrough.length,
    counts: r.counts,
    eventTimes: r.eventTimes,
    openWindows: r.openWindows,
    dedupIds: (shard as Shard).dedupIds,
    streamTime: (shard as Shard).currentStreamTime,
    closePending: r.closePending,
    busyMs: performance.now() - t0,
    heapUsed: heap.used_heap_size,
    heapSize: heap.total_heap_size,
  };
}

/** The JSON lines a `stdout` sink prints for this batch: window results, or pass-through entries. */
function printable(r: BatchResult): string[] {
  const out = r.results.map(jsonLine);
  for (const i of r.passThrough) out.push(jsonLine(r.entryFields[i] as Uint8Array[]));
  return out;
}

function current(): Shard {
  if (shard === null) throw new Error('shard worker used before init');
  return shard;
}
