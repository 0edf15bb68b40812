// Transitional: the key naming moved to redis/checkpointKeys.ts and the fingerprint check to
// commit/fingerprint.ts. This file only keeps the old import path working for pipeline/engine.ts,
// pipeline/pipeline.ts, commit/restore.ts and commit/incarnation.ts, which are being restructured
// elsewhere; once they import from the new places, delete it.
export { CheckpointKeys, type StateKeyKind } from '../redis/checkpointKeys.js';
export { checkFingerprint, fingerprintOf } from './fingerprint.js';
