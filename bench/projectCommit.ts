/**
 * Redis' side of the project stage: the commit script merging PROJECT ops into projection hashes. Applies
 * commits of 1,000 events (XACK of 1,000 IDs, as a real batch) spread over 10, 100 or 1,000 keys, with a
 * projection of 7 reducers and without one, on a private redis-server, and reports Redis CPU per event and
 * per key (INFO commandstats of EVALSHA) and the commits/s one connection achieves; a count-only projection
 * shows the fixed cost of a key.
 *
 *   npm run build && node dist/bench/projectCommit.js [--commits 300]
 */
import { Redis } from 'ioredis';
import { type CommitFence, applyOps } from '../src/commit/applyOps.js';
import { parseConfig } from '../src/config/load.js';
import type { BatchResult } from '../src/shard/protocol.js';
import { emptyOutput } from '../src/shard/batchOutput.js';
import { CommitBuilder } from '../src/shard/commitBuilder.js';
import { ProjectStage } from '../src/shard/stages/project/projectStage.js';
import { startLocalRedis } from '../src/tools/localRedis.js';
import { parseFlags } from './lib/flags.js';

const o = parseFlags(
  process.argv.slice(2),
  { commits: 300 },
  'node dist/bench/projectCommit.js [--commits N]',
);
const BATCH = 1000;
const config = parseConfig(
  'source: { stream: in, group: g }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\nshards: 1\n',
  'bench',
  { env: {} },
);
const fields = {
  orders: { fn: 'count' as const },
  total: { fn: 'sum' as const, field: 'amount' },
  smallest: { fn: 'min' as const, field: 'amount' },
  largest: { fn: 'max' as const, field: 'amount' },
  status: { fn: 'latest' as const, field: 'status' },
  firstId: { fn: 'first' as const, field: 'id' },
  lastSeen: { fn: 'last_seen' as const },
};

/** `commits` encoded commits of BATCH events over `keys` keys; with or without the projection. */
function commits(keys: number, project: 'none' | 'count' | 'all'): Uint8Array[] {
  const f = project === 'count' ? { orders: fields.orders } : fields;
  const stage = new ProjectStage({ key: 'proj:{tag}:{key}', fields: f }, '{in}');
  const builder = new CommitBuilder(config, 0);
  const enc = new TextEncoder();
  const out: Uint8Array[] = [];
  let n = 0;
  for (let c = 0; c < o.commits; c++) {
    const r: BatchResult = emptyOutput();
    for (let i = 0; i < BATCH; i++, n++) {
      const id = enc.encode(`${1_700_000_000_000 + n}-0`);
      r.entryIds.push(id);
      if (project === 'none') continue;
      const body = { id: `e${n}`, amount: Math.round(Math.random() * 100_000) / 100, status: 'paid' };
      if (stage.check(body, 1_700_000_000_000 + n)) stage.add(`c${n % keys}`, id);
    }
    r.projections = stage.drain();
    out.push(builder.build(r) as Uint8Array);
  }
  return out;
}

async function evalshaUsec(redis: Redis): Promise<number> {
  const info = await redis.info('commandstats');
  const m = /cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(info);
  return m ? Number(m[1]) : 0;
}

const server = await startLocalRedis();
const redis = new Redis(server.url);
await redis.xgroup('CREATE', 'in', 'g', '$', 'MKSTREAM');
await redis.set('lease', 'tok');
const fence: CommitFence = { leaseKey: 'lease', appliedKey: 'applied', token: 'tok', term: 't' };
const rows: Array<Record<string, string | number>> = [];
for (const keys of [10, 100, 1000]) {
  for (const project of ['none', 'count', 'all'] as const) {
    const list = commits(keys, project);
    await redis.config('RESETSTAT');
    const t0 = performance.now();
    const term = { ...fence, term: `t${keys}${project}` }; // a term per scenario: its commit 0 has no predecessor
    for (let i = 0; i < list.length; i++) await applyOps(redis, term, 0, i, list[i] as Uint8Array);
    const wall = performance.now() - t0;
    const usec = await evalshaUsec(redis);
    const events = list.length * BATCH;
    rows.push({
      keys: `${keys} per batch`,
      commit: { none: 'XACK only', count: 'XACK + project (count only)', all: 'XACK + project (7 reducers)' }[
        project
      ],
      'commits/s': Math.round((list.length * 1000) / wall),
      'Redis µs / event': Number((usec / events).toFixed(2)),
      'Redis µs / key·batch': project !== 'none' ? Number((usec / (list.length * keys)).toFixed(1)) : '—',
    });
  }
}
console.log(
  `project stage, Redis side (${o.commits} commits of ${BATCH} events each), node ${process.version}`,
);
console.table(rows);
await redis.quit();
await server.stop();
