/**
 * `REPLAY_DEAD_LETTER_1` (cli/dlq/replay.ts): re-drives one dead letter into the input stream, once.
 *
 * KEYS: the replay marks (a HASH: dead-letter ID → the ID of the entry its replay added), the input
 * stream. ARGV: the dead-letter ID, then the entry's fields (name, value, …). When the dead letter is
 * marked already, adds nothing and returns `{0, <the ID added then>}`; otherwise XADDs the fields with an
 * auto ID, marks it, and returns `{1, <new ID>}` — both in one script, so a replay that fails or is run
 * twice, or two replays at once, never add an entry twice.
 */
import { Script } from './script.js';

export const REPLAY_DEAD_LETTER_1 = `local done = redis.call('HGET', KEYS[1], ARGV[1])
if done then return {0, done} end
local id = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
redis.call('HSET', KEYS[1], ARGV[1], id)
return {1, id}`;

export const replayDeadLetterScript = new Script('REPLAY_DEAD_LETTER_1', REPLAY_DEAD_LETTER_1, 2);
