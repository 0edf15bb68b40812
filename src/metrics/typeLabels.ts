/**
 * The `type` label of `events_processed_total{type, status}`, bounded across shards: each worker bounds
 * its own slots (shard/typeCounts.ts), and here the main thread grants a label to the listed types and to
 * the first `maxTypes` others it sees from any shard; every later type is counted as `other`, forever
 * (a label never moves, so a series never splits). Series at most: (known + maxTypes + 2) × 5 statuses —
 * the 2 being `other` and `unknown` (no readable type: the body could not be decoded, or has no type).
 */
import type { EventTypesConfig } from '../shard/typeCounts.js';
import { OTHER_TYPE, UNKNOWN_TYPE } from '../shard/typeCounts.js';

export class TypeLabels {
  private readonly granted = new Set<string>();
  private others = 0;

  constructor(private readonly cfg: EventTypesConfig | undefined) {
    for (const t of cfg?.known ?? []) this.granted.add(t);
  }

  /** The label for a type a worker reported. */
  label(type: string): string {
    const c = this.cfg;
    if (c === undefined || this.granted.has(type) || type === UNKNOWN_TYPE) return type;
    if (type === OTHER_TYPE || this.others >= c.maxTypes) return OTHER_TYPE;
    this.others++;
    this.granted.add(type);
    return type;
  }
}
