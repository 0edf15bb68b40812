/**
 * `streamshard reset -c FILE [--yes]`: deletes a pipeline's consumer group and its own state — checkpoint
 * (window buckets and indexes, dedup logs, stream time), meta (fingerprint, incarnation), applied commit
 * IDs, the lease — so that the next `run` starts fresh. It never deletes the input, output or dead-letter
 * streams, and keeps `<ns>:epoch`: fencing tokens must never repeat, or an instance paused since before
 * the reset could resume its old lease (lease/lease.ts) with its old state.
 *
 * It lists what it will delete, with counts, and asks on a terminal (`--yes` for scripts; without either
 * it refuses, exit 2). It refuses while an instance holds the lease (exit 1), and holds the lease itself
 * while deleting, so no instance starts on half-deleted state; standbys take over afterwards and start
 * fresh.
 */
import { createInterface } from 'node:readline/promises';
import type { Redis } from 'ioredis';
import type { PipelineConfig } from '../config/load.js';
import { Lease } from '../lease/lease.js';
import { CheckpointKeys, type StateKeyKind } from '../redis/checkpointKeys.js';
import { redactUrl } from '../redis/connect.js';
import { fieldOf } from '../source/redisSource.js';
import { replayMarksKey } from './dlq/select.js';
import { leaseStatus } from '../inspect/leadership.js';
import { partitionConfigs } from '../partition/scope.js';
import { withSession } from './session.js';

/** Keys per UNLINK. */
const CHUNK = 500;

interface Survey {
  group: { consumers: number; pending: number; lastDelivered: string } | null;
  keys: Map<StateKeyKind, number>;
  /** Keys under the namespace that are not this pipeline's (left alone). */
  foreign: string[];
  /** The dead-letter replay marks exist (kept, like the dead-letter stream they mark). */
  replayMarks: boolean;
}

export async function resetCommand(file: string, yes: boolean): Promise<number> {
  return withSession(file, 'reset', ({ redis, config }) => reset(redis, config, file, yes));
}

async function reset(redis: Redis, config: PipelineConfig, file: string, yes: boolean): Promise<number> {
  // Every partition has its own group, lease and state (partition/scope.ts); one partition: the pipeline's.
  const parts = partitionConfigs(config).map((c) => ({ c, keys: CheckpointKeys.of(c) }));
  const out = (line: string) => process.stdout.write(`${line}\n`);
  for (const { keys } of parts) {
    const held = await leaseStatus(redis, keys);
    if (held.held) {
      process.stderr.write(
        `refusing to reset: instance ${held.token} holds the lease of this pipeline` +
          `${parts.length > 1 ? ` (the lease of ${keys.lease()})` : ''} (expires in ` +
          `${held.ttlMs} ms unless renewed). Stop it first (SIGTERM releases the lease after draining), ` +
          'then run reset again.\n',
      );
      return 1;
    }
  }
  const surveys = await Promise.all(parts.map(({ c, keys }) => survey(redis, keys, c)));
  let anything = false;
  out(
    `pipeline "${config.name}": stream "${config.partition.stream}", group "${config.source.group}", on ${redactUrl(config.redis.url)}`,
  );
  if (parts.length > 1)
    out(
      `  ${parts.length} partitions: streams ${parts[0]?.c.source.stream} … ${parts[parts.length - 1]?.c.source.stream}`,
    );
  parts.forEach(({ c, keys }, i) => {
    const s = surveys[i] as Survey;
    const { stream, group } = c.source;
    out(parts.length > 1 ? `partition ${i}: will delete:` : 'will delete:');
    if (s.group !== null) {
      out(
        `  consumer group "${group}" on stream "${stream}": ${s.group.consumers} consumer(s), ` +
          `${s.group.pending} pending entries, last delivered ${s.group.lastDelivered}`,
      );
    }
    const total = [...s.keys.values()].reduce((a, b) => a + b, 0);
    out(`  ${total} key(s) of the pipeline's state under ${keys.ns}:*`);
    for (const [kind, n] of s.keys) out(`    ${kind.padEnd(16)} ${n}`);
    if (s.group !== null || total > 0) anything = true;
  });
  out('will keep:');
  out(
    `  the input stream "${config.partition.stream}"${parts.length > 1 ? " (every partition's)" : ''}, the output and dead-letter streams`,
  );
  parts.forEach(({ keys }, i) => {
    const s = surveys[i] as Survey;
    out(`  ${keys.epoch()} (the lease epoch: fencing tokens never repeat)`);
    if (s.replayMarks) out(`  ${replayMarksKey(keys)} (which dead letters \`dlq replay\` replayed already)`);
    if (s.foreign.length > 0) {
      out(
        `  ${s.foreign.length} key(s) under ${keys.ns}:* that are not this pipeline's, e.g. ${s.foreign[0]}`,
      );
    }
  });
  if (!anything) {
    out('nothing to reset');
    return 0;
  }
  if (!yes) {
    if (process.stdin.isTTY !== true) {
      process.stderr.write(
        `refusing to reset without confirmation: no terminal to ask on. Run \`streamshard reset -c ${file} --yes\`.\n`,
      );
      return 2;
    }
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const answer = await rl.question('Delete all of this? Type "yes" to confirm: ');
    rl.close();
    if (answer.trim() !== 'yes') {
      out('not reset');
      return 1;
    }
  }
  // Hold every lease while deleting: an instance starting now stands by instead of restoring half a state.
  const leases: Lease[] = [];
  try {
    for (const { c, keys } of parts) {
      const lease = new Lease(
        redis,
        { lease: keys.lease(), epoch: keys.epoch() },
        'streamshard-reset',
        c.lease.ttl,
      );
      const state = await lease.tryAcquire();
      if (!state.held) {
        process.stderr.write(
          `refusing to reset: instance ${state.holder} took the lease meanwhile; stop it first.\n`,
        );
        return 1;
      }
      leases.push(lease);
      lease.startRenewing();
    }
    let destroyed = 0;
    let deleted = 0;
    for (const [i, { c, keys }] of parts.entries()) {
      const { stream, group } = c.source;
      if ((surveys[i] as Survey).group !== null)
        destroyed += Number(await redis.xgroup('DESTROY', stream, group));
      const skip = new Set([keys.lease(), keys.epoch(), ...protectedStreams(c)]);
      for await (const batch of scanKeys(redis, keys)) {
        const mine = batch.filter((k) => !skip.has(k) && keys.kindOf(k) !== null);
        for (let j = 0; j < mine.length; j += CHUNK)
          deleted += await redis.unlink(...mine.slice(j, j + CHUNK));
      }
    }
    const groups =
      parts.length > 1
        ? `destroyed ${destroyed} group(s) "${config.source.group}", `
        : `destroyed group "${config.source.group}", `;
    out(
      `reset: ${destroyed > 0 ? groups : ''}deleted ${deleted} key(s), ` +
        `released the lease${parts.length > 1 ? 's' : ''}. The next run starts fresh (source.startId "${config.source.startId}").`,
    );
  } finally {
    for (const lease of leases) await lease.release(); // deletes the lease key
  }
  return 0;
}

async function survey(redis: Redis, keys: CheckpointKeys, c: PipelineConfig): Promise<Survey> {
  const s: Survey = { group: null, keys: new Map(), foreign: [], replayMarks: false };
  const groups = (await redis.xinfo('GROUPS', c.source.stream).catch(() => [])) as unknown[];
  const g = groups.find((x) => String(fieldOf(x, 'name')) === c.source.group);
  if (g !== undefined) {
    s.group = {
      consumers: Number(fieldOf(g, 'consumers')),
      pending: Number(fieldOf(g, 'pending')),
      lastDelivered: String(fieldOf(g, 'last-delivered-id')),
    };
  }
  const skip = new Set([keys.epoch(), ...protectedStreams(c)]);
  for await (const batch of scanKeys(redis, keys)) {
    for (const k of batch) {
      if (k === replayMarksKey(keys)) s.replayMarks = true;
      if (skip.has(k) || k === replayMarksKey(keys)) continue;
      const kind = keys.kindOf(k);
      if (kind === null) s.foreign.push(k);
      else s.keys.set(kind, (s.keys.get(kind) ?? 0) + 1);
    }
  }
  return s;
}

/** The streams reset never deletes, even if their names fall under the namespace. */
function protectedStreams(c: PipelineConfig): string[] {
  return [c.source.stream, c.deadLetter.stream, ...(c.sink.type === 'stream' ? [c.sink.stream] : [])];
}

/** SCAN over the namespace (never KEYS: it blocks Redis for the whole keyspace). */
async function* scanKeys(redis: Redis, keys: CheckpointKeys): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', keys.scanPattern(), 'COUNT', 1000);
    cursor = next;
    if (batch.length > 0) yield batch;
  } while (cursor !== '0');
}
