/**
 * `LEASE_RELEASE_1` (lease/lease.ts). KEYS: `<ns>:lease`. ARGV: token. Deletes the lease only if it is
 * still ours (graceful hand-over).
 */
import { Script } from './script.js';

export const LEASE_RELEASE_1 = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export const leaseReleaseScript = new Script('LEASE_RELEASE_1', LEASE_RELEASE_1, 1, { send: 'eval' });
