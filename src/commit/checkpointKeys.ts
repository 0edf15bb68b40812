/**
 * Where a pipeline's checkpoint lives. Everything is per key group, so a shard's state is the union of
 * its key groups' keys, and a different shard count later regroups keys without rewriting them.
 *
 *   <ns>:wi:<kg>          SET   window starts open in key group kg
 *   <ns>:w:<kg>:<start>   HASH  key → "count,slot1,slot2,…" for the window starting at <start>
 *   <ns>:d:<kg>           ZSET  event ID → stream time it was first seen (dedup memory)
 *   <ns>:st               HASH  kg → stream time of the shard that owned kg
 *
 * `<ns>` is `<keyPrefix>:<source stream>:<group>`: one namespace per pipeline (group on a stream).
 */
export class CheckpointKeys {
  readonly ns: string;

  constructor(keyPrefix: string, stream: string, group: string) {
    this.ns = `${keyPrefix}:${stream}:${group}`;
  }

  windowIndex(keyGroup: number): string {
    return `${this.ns}:wi:${keyGroup}`;
  }

  window(keyGroup: number, start: number): string {
    return `${this.ns}:w:${keyGroup}:${start}`;
  }

  dedup(keyGroup: number): string {
    return `${this.ns}:d:${keyGroup}`;
  }

  streamTime(): string {
    return `${this.ns}:st`;
  }
}
