/**
 * Where a pipeline's checkpoint lives. Everything is per key group, so a shard's state is the union of
 * its key groups' keys, and a different shard count later regroups keys without rewriting them.
 *
 *   <ns>:wi:<kg>          SET   window starts open in key group kg
 *   <ns>:w:<kg>:<start>   HASH  key → "count,slot1,slot2,…" for the window starting at <start>
 *   <ns>:w:<kg>:0         HASH  session and sliding windows: key → the key's whole state
 *                               (shard/stages/window/keyedState.ts)
 *   <ns>:dl:<kg>          LIST  dedup log: chunks of (stream time seen, event ID), oldest first
 *                               (shard/stages/dedup/checkpoint.ts)
 *   <ns>:rl:<kg>          HASH  rate limit per key: key → "tokens,last,touched"
 *   <ns>:rls              HASH  kg → rate limit per shard: "tokens,last" of the shard that owned kg
 *                               (shard/stages/rateLimit/rateLimitStage.ts)
 *   <ns>:ob:<kg>          HASH  order stage: key → next version and held entries (binary;
 *                               shard/stages/order/orderStage.ts)
 *   <ns>:st               HASH  kg → stream time of the shard that owned kg
 *   <ns>:meta             HASH  fingerprint → what the checkpoint's layout depends on (key groups, windows;
 *                               commit/fingerprint.ts);
 *                               incarnation → the marker consumer of the group the state belongs to
 *                               (commit/incarnation.ts)
 *   <ns>:lease            STRING the pipeline lease / fencing token (lease/lease.ts)
 *   <ns>:epoch            STRING lease epoch counter
 *   <ns>:applied          HASH  shard → ID of its last applied commit (commit/applyOps.ts)
 *
 * `<ns>` is `<keyPrefix>:<source stream>:<group>`: one namespace per pipeline (group on a stream).
 * `streamshard reset` (cli/reset.ts) deletes exactly the keys {@link CheckpointKeys.kindOf} recognises: a
 * new kind of key must be added there too.
 */

/** The kinds of key a pipeline owns, each with the pattern of what follows `<ns>:`. */
const KINDS = [
  ['window buckets', /^w:\d+:-?\d+$/],
  ['window indexes', /^wi:\d+$/],
  ['dedup logs', /^dl:\d+$/],
  ['rate-limit buckets', /^rl:\d+$/],
  ['shard rate limits', /^rls$/],
  ['order buffers', /^ob:\d+$/],
  ['stream time', /^st$/],
  ['meta', /^meta$/],
  ['applied commits', /^applied$/],
  ['lease', /^lease$/],
  ['lease epoch', /^epoch$/],
] as const;

export type StateKeyKind = (typeof KINDS)[number][0];

export class CheckpointKeys {
  readonly ns: string;

  constructor(keyPrefix: string, stream: string, group: string) {
    this.ns = `${keyPrefix}:${stream}:${group}`;
  }

  /** The keys of a pipeline's state, as its config names them (the one way the code builds them). */
  static of(c: { redis: { keyPrefix: string }; source: { stream: string; group: string } }): CheckpointKeys {
    return new CheckpointKeys(c.redis.keyPrefix, c.source.stream, c.source.group);
  }

  windowIndex(keyGroup: number): string {
    return `${this.ns}:wi:${keyGroup}`;
  }

  window(keyGroup: number, start: number): string {
    return `${this.ns}:w:${keyGroup}:${start}`;
  }

  dedup(keyGroup: number): string {
    return `${this.ns}:dl:${keyGroup}`;
  }

  rateLimit(keyGroup: number): string {
    return `${this.ns}:rl:${keyGroup}`;
  }

  shardRateLimit(): string {
    return `${this.ns}:rls`;
  }

  order(keyGroup: number): string {
    return `${this.ns}:ob:${keyGroup}`;
  }

  streamTime(): string {
    return `${this.ns}:st`;
  }

  meta(): string {
    return `${this.ns}:meta`;
  }

  lease(): string {
    return `${this.ns}:lease`;
  }

  epoch(): string {
    return `${this.ns}:epoch`;
  }

  applied(): string {
    return `${this.ns}:applied`;
  }

  /**
   * Which of this pipeline's keys `key` is, or null when it is not one (e.g. a key of the pipeline of
   * group `g:x` matches the SCAN pattern `<prefix>:<stream>:g:*` of group `g`, but no pattern here: each
   * ends right after digits or a fixed word, and every key of `g:x` has a segment more).
   */
  kindOf(key: string): StateKeyKind | null {
    if (!key.startsWith(`${this.ns}:`)) return null;
    const rest = key.slice(this.ns.length + 1);
    for (const [kind, re] of KINDS) if (re.test(rest)) return kind;
    return null;
  }

  /** A SCAN MATCH pattern for every key under the namespace (glob characters of names escaped). */
  scanPattern(): string {
    return `${this.ns.replace(/[*?[\]\\]/g, '\\$&')}:*`;
  }
}
