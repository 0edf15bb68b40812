/**
 * Per event type and status counts in a shard worker, sent as deltas with each batch (`ShardCounts.byType`)
 * and added on the main thread to `events_processed_total{type, status}` (metrics/typeLabels.ts bounds the
 * label set across shards).
 *
 *   slot:   0 "" or "other"   1 "unknown"   2… types in the order first seen (listed ones first)
 *   counts: Float64Array [slot × STATUSES]  — one increment per event at its fate, no allocation
 *
 * The type is read once per event by the decoder (`metrics.eventTypes.field`, a projected field: no whole
 * body decode for it) and its slot looked up in a
 * Map: a handful of types is the common case. Past `known + maxTypes` slots a new type counts in slot 0
 * ("other"), so a producer sending a random type per event costs one Map miss, never memory.
 * Without `metrics.eventTypes` there is one slot, type "" (Prometheus shows no `type` label then).
 */

/** An event's fate, the `status` label. Every entry gets exactly one, when it is decided. */
export const STATUSES = ['ok', 'filtered', 'duplicate', 'rate_limited', 'dead_lettered'] as const;
export type EventStatus = (typeof STATUSES)[number];
export const OK = 0;
export const FILTERED = 1;
export const DUPLICATE = 2;
export const RATE_LIMITED = 3;
export const DEAD_LETTERED = 4;
const N = STATUSES.length;

/** The `type` of events beyond the bound, and of events whose type could not be read. */
export const OTHER_TYPE = 'other';
export const UNKNOWN_TYPE = 'unknown';

export interface EventTypesConfig {
  field: string;
  known: string[];
  maxTypes: number;
}

/** `[type, status index, count]` per non-zero cell of one batch. */
export type TypeDelta = Array<[string, number, number]>;

export class TypeCounts {
  private readonly enabled: boolean;
  private readonly slots = new Map<string, number>();
  private readonly names: string[];
  private readonly maxSlots: number;
  private readonly counts: Float64Array;
  /** The slot of the event being processed. */
  private current = 0;

  constructor(cfg: EventTypesConfig | undefined) {
    this.enabled = cfg !== undefined;
    this.names = cfg === undefined ? [''] : [OTHER_TYPE, UNKNOWN_TYPE];
    this.maxSlots = cfg === undefined ? 1 : 2 + cfg.known.length + cfg.maxTypes;
    this.counts = new Float64Array(this.maxSlots * N);
    for (const t of cfg?.known ?? []) this.slotOf(t);
  }

  /** The current event's type could not be read (not decoded). */
  unknown(): void {
    this.current = this.enabled ? 1 : 0;
  }

  /** The current event's type: the raw value the decoder read at the type path (decode.ts `event.type`). */
  read(v: unknown): void {
    if (!this.enabled) return;
    const t = typeof v === 'string' ? v : typeof v === 'number' || typeof v === 'boolean' ? String(v) : '';
    this.current = t === '' ? 1 : this.slotOf(t);
  }

  /** Counts the current event with `status`. */
  count(status: number): void {
    const i = this.current * N + status;
    this.counts[i] = (this.counts[i] as number) + 1;
  }

  /** The batch's non-zero counts, then zero. */
  drain(): TypeDelta {
    const out: TypeDelta = [];
    const c = this.counts;
    for (let i = 0; i < this.names.length * N; i++) {
      const n = c[i] as number;
      if (n === 0) continue;
      out.push([this.names[Math.floor(i / N)] as string, i % N, n]);
      c[i] = 0;
    }
    return out;
  }

  private slotOf(t: string): number {
    const s = this.slots.get(t);
    if (s !== undefined) return s;
    if (this.names.length >= this.maxSlots || t === OTHER_TYPE || t === UNKNOWN_TYPE) return 0;
    const slot = this.names.length;
    this.names.push(t);
    this.slots.set(t, slot);
    return slot;
  }
}
