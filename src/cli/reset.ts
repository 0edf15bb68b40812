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

async function reset(redis: Redis, c: PipelineConfig, file: string, yes: boolean): Promise<number> {
  const { stream, group } = c.source;
  const keys = CheckpointKeys.of(c);
  const out = (line: string) => process.stdout.write(`${line}\n`);
  const held = await leaseStatus(redis, keys);
  if (held.held) {
    process.stderr.write(
      `refusing to reset: instance ${held.token} holds the lease of this pipeline (expires in ` +
        `${held.ttlMs} ms unless renewed). Stop it first (SIGTERM releases the lease after draining), ` +
        'then run reset again.\n',
    );
    return 1;
  }
  const s = await survey(redis, keys, c);
  out(`pipeline "${c.name}": stream "${stream}", group "${group}", on ${redactUrl(c.redis.url)}`);
  out('will delete:');
  if (s.group !== null) {
    out(
      `  consumer group "${group}" on stream "${stream}": ${s.group.consumers} consumer(s), ` +
        `${s.group.pending} pending entries, last delivered ${s.group.lastDelivered}`,
    );
  }
  const total = [...s.keys.values()].reduce((a, b) => a + b, 0);
  out(`  ${total} key(s) of the pipeline's state under ${keys.ns}:*`);
  for (const [kind, n] of s.keys) out(`    ${kind.padEnd(16)} ${n}`);
  out('will keep:');
  out(`  the input stream "${stream}", the output and dead-letter streams`);
  out(`  ${keys.epoch()} (the lease epoch: fencing tokens never repeat)`);
  if (s.replayMarks) out(`  ${replayMarksKey(keys)} (which dead letters \`dlq replay\` replayed already)`);
  if (s.foreign.length > 0) {
    out(`  ${s.foreign.length} key(s) under ${keys.ns}:* that are not this pipeline's, e.g. ${s.foreign[0]}`);
  }
  if (s.group === null && total === 0) {
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
  // Hold the lease while deleting: an instance starting now stands by instead of restoring half a state.
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
  lease.startRenewing();
  try {
    const destroyed = s.group !== null ? Number(await redis.xgroup('DESTROY', stream, group)) : 0;
    let deleted = 0;
    const skip = new Set([keys.lease(), keys.epoch(), ...protectedStreams(c)]);
    for await (const batch of scanKeys(redis, keys)) {
      const mine = batch.filter((k) => !skip.has(k) && keys.kindOf(k) !== null);
      for (let i = 0; i < mine.length; i += CHUNK) deleted += await redis.unlink(...mine.slice(i, i + CHUNK));
    }
    out(
      `reset: ${destroyed === 1 ? `destroyed group "${group}", ` : ''}deleted ${deleted} key(s), ` +
        `released the lease. The next run starts fresh (source.startId "${c.source.startId}").`,
    );
  } finally {
    await lease.release(); // deletes the lease key
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
