/**
 * The piscina worker entry. Each shard has its own single-thread pool, so this module's state is the
 * state of exactly one shard, and piscina's FIFO queue keeps that shard's batches in order.
 */
import type { InitResult, ShardOutput, ShardTask } from './protocol.js';
import { Shard } from './shard.js';

let shard: Shard | null = null;

export default function run(task: ShardTask): ShardOutput | InitResult {
  switch (task.kind) {
    case 'init':
      shard = new Shard(task.config, task.restored);
      return { openWindows: shard.openWindows };
    case 'batch':
      return current().processBatch(task.buf, task.now);
    case 'tick':
      return current().tick(task.now);
  }
}

function current(): Shard {
  if (shard === null) throw new Error('shard worker used before init');
  return shard;
}
