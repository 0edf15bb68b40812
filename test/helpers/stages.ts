/**
 * One-call forms of what the shard does per event, for tests that drive a stage directly: the shard feeds
 * the window stage a range of the batch buffer with the key's hash, and runs dedup as a check and, once
 * every step has passed, a record.
 */
import { fnv1a } from '../../src/routing/hash.js';
import type { DedupStage } from '../../src/shard/stages/dedup/dedupStage.js';
import type { AddResult, WindowOperator } from '../../src/shard/stages/window/windowStage.js';
import type { ByteString } from '../../src/util/bytes.js';

const encoder = new TextEncoder();

/** `WindowStage.addBytes` with a whole key: text is added as its UTF-8 bytes. */
export function addEvent(
  stage: WindowOperator,
  key: ByteString,
  keyGroup: number,
  ts: number,
  values: Float64Array,
  streamTime: number,
): AddResult {
  const bytes = typeof key === 'string' ? encoder.encode(key) : key;
  return stage.addBytes(bytes, 0, bytes.length, fnv1a(bytes), keyGroup, ts, values, streamTime);
}

/** True when the event is new (and remembers it); false for a duplicate within the TTL. */
export function admit(stage: DedupStage, id: string, keyGroup: number, streamTime: number): boolean {
  if (stage.isDuplicate(id, streamTime)) return false;
  stage.record(id, keyGroup, streamTime);
  return true;
}
