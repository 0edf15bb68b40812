// Transitional: the key naming moved to redis/checkpointKeys.ts and the fingerprint check to
// commit/fingerprint.ts. This file only keeps the old import path working for pipeline/pipeline.ts,
// store/redisStore.ts, commit/restore.ts and commit/incarnation.ts, which are edited elsewhere; once they
// import from the new places, delete it.
export { CheckpointKeys, type StateKeyKind } from '../redis/checkpointKeys.js';
export { checkFingerprint, fingerprintOf } from './fingerprint.js';
