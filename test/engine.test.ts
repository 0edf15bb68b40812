/**
 * The engine's decisions without Redis: a whole term runs on the in-memory FakeStore
 * (helpers/fakeStore.ts) with real worker threads running a stand-in worker
 * (fixtures/worker-committing.mjs) whose commits list the IDs they ack. Each test scripts what Redis
 * would do — refuse, fence, restart, lose a reply — and checks what was committed and how the term ended.
 */
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import {
  CommitRefusedError,
  FencedError,
  LeaseLostError,
  NoGroupError,
  RedisReplyError,
  StaleStateError,
  StateLostError,
} from '../src/errors.js';
import type { LeaseState } from '../src/lease/lease.js';
import { MAX_COMMIT_REFUSALS } from '../src/pipeline/committer.js';
import { Engine } from '../src/pipeline/engine.js';
import type { TermLease } from '../src/pipeline/term.js';
import { type FakeEntry, FakeStore } from './helpers/fakeStore.js';

const WORKER = fileURLToPath(new URL('./fixtures/worker-committing.mjs', import.meta.url));
const TOKEN = '1:me';
const CONFIG = parseConfig(
  [
    'name: t',
    'shards: 2',
    'source: { stream: in, batchSize: 10 }',
    'sink: { stream: out }',
    'deadLetter: { stream: dlq }',
    'commit: { maxEvents: 5, maxDelay: 5 }',
    'stages: []',
  ].join('\n'),
  't',
  { env: {} },
);

interface Run {
  engine: Engine;
  store: FakeStore;
  lease: TermLease & { answer: LeaseState };
  logs: Array<{ msg: string; [k: string]: unknown }>;
  /** Resolves with the error that ended the term. */
  fatal: Promise<Error>;
}

const running: Engine[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((e) => e.abandon('(test over)')));
});

/** A term on a fresh FakeStore; the lease answers `lease.answer` when the engine asks after a fence. */
function term(): Run {
  const store = new FakeStore('in', CONFIG.source.batchSize);
  const lease = {
    token: TOKEN,
    answer: { held: true, token: TOKEN } as LeaseState,
    readBudget: () => 60_000,
    tryAcquire: async () => lease.answer,
  };
  const logs: Run['logs'] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const engine = new Engine(CONFIG, {
    lease,
    fenceKeys: { lease: 'lease', applied: 'applied' },
    store: () => store,
    metrics: null,
    log,
    worker: WORKER,
  });
  running.push(engine);
  const fatal = new Promise<Error>((resolve) => {
    engine.onFatal = resolve;
  });
  return { engine, store, lease, logs, fatal };
}

/** `n` entries with IDs `<ms>-<seq>` from `from`, keyed over 7 keys (so both shards get some). */
function entries(n: number, from = 1): FakeEntry[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `${from + i}-0`,
    fields: ['key', `k${(from + i) % 7}`],
  }));
}

/** The same entries, all with one key (so all go to one shard). */
function oneKey(list: FakeEntry[]): FakeEntry[] {
  return list.map((e) => ({ ...e, fields: ['key', 'k1'] }));
}

/** Every committed ID, by shard, in commit order. */
function committedIds(store: FakeStore): Map<number, string[]> {
  const by = new Map<number, string[]>();
  for (const c of store.commits) by.set(c.shard, [...(by.get(c.shard) ?? []), ...c.ops.split(',')]);
  return by;
}

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; !check(); i++) {
    if (i > 2000) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const committedCount = (s: FakeStore) => [...committedIds(s).values()].reduce((n, ids) => n + ids.length, 0);

/** IDs sort by their ms part here (sequence parts are 0, or 99 for a crash). */
const byTime = (a: string, b: string) => Number(a.split('-')[0]) - Number(b.split('-')[0]);

function expectExactlyOnceInOrder(store: FakeStore, input: FakeEntry[]): void {
  const by = committedIds(store);
  const all = [...by.values()].flat();
  expect([...all].sort(byTime)).toEqual(input.map((e) => e.id));
  for (const ids of by.values()) expect(ids).toEqual([...ids].sort(byTime));
  // Each shard's commits carry consecutive sequence numbers from 0 in this term.
  for (const shard of by.keys()) {
    const seqs = store.commits.filter((c) => c.shard === shard).map((c) => c.seq);
    expect(seqs).toEqual(seqs.map((_, i) => i));
  }
}

describe('Engine on a fake store', () => {
  it('commits every entry once, per shard in order with consecutive sequence numbers, and stops clean', async () => {
    const { engine, store } = term();
    const input = entries(103);
    store.add(...input);
    await engine.start();
    await until(() => committedCount(store) === 103, 'all 103 entries are committed');
    expect(await engine.stop(5000)).toEqual({ clean: true });
    expectExactlyOnceInOrder(store, input);
    expect(store.closed).toBe(true);
  });

  it('retries connection errors and a lost reply: each commit is applied once', async () => {
    const { engine, store, logs } = term();
    const lost = Object.assign(new Error('Connection is closed.'), { name: 'ConnectionError' });
    store.failNext('commit', lost, lost);
    store.failNext('commitReply', lost);
    const input = entries(40);
    store.add(...input);
    await engine.start();
    await until(() => committedCount(store) === 40, 'all entries are committed');
    expect(await engine.stop(5000)).toEqual({ clean: true });
    expectExactlyOnceInOrder(store, input);
    expect(logs.filter((l) => l.msg === 'commit failed; retrying')).toHaveLength(3);
    expect(logs.filter((l) => l.msg.startsWith('commit had already been applied'))).toHaveLength(1);
  });

  it(`fails the term with CommitRefusedError after ${MAX_COMMIT_REFUSALS} error replies; commits nothing after`, async () => {
    const { engine, store, fatal } = term();
    const oom = () =>
      new RedisReplyError('OOM', 'OOM command not allowed when used memory > maxmemory', true);
    store.failNext('commit', ...Array.from({ length: MAX_COMMIT_REFUSALS }, oom));
    store.add(...oneKey(entries(3))); // one shard: every refusal counts against the same commit
    await engine.start();
    const e = await fatal;
    expect(e).toBeInstanceOf(CommitRefusedError);
    expect((e as CommitRefusedError).refusals).toBe(MAX_COMMIT_REFUSALS);
    store.add(...oneKey(entries(20, 100)));
    expect((await engine.stop(2000)).clean).toBe(false);
    expect(store.commits).toEqual([]);
  });

  it('retries a fenced commit with the same token when nobody took the lease', async () => {
    const { engine, store, logs } = term();
    store.failNext('commit', new FencedError(`FENCED lease held by nobody, not ${TOKEN}`));
    const input = entries(12);
    store.add(...input);
    await engine.start();
    await until(() => committedCount(store) === 12, 'all entries are committed');
    expect(await engine.stop(5000)).toEqual({ clean: true });
    expectExactlyOnceInOrder(store, input);
    expect(logs.some((l) => l.msg === 'lease had lapsed; renewed with the same token')).toBe(true);
  });

  it('ends the term with LeaseLostError when a fenced commit finds the lease held by another instance', async () => {
    const { engine, store, lease, fatal } = term();
    lease.answer = { held: false, holder: '2:other', ttlMs: 1000 };
    store.failNext('commit', new FencedError('FENCED lease held by 2:other, not 1:me'));
    store.add(...entries(3));
    await engine.start();
    const e = await fatal;
    expect(e).toBeInstanceOf(LeaseLostError);
    expect((e as LeaseLostError).holder).toBe('2:other');
    expect(store.commits).toEqual([]);
  });

  it('ends the term with LeaseLostError when a fenced read finds the lease held by another instance', async () => {
    const { engine, store, lease, fatal } = term();
    lease.answer = { held: false, holder: '2:other', ttlMs: 1000 };
    store.failNext('read', new FencedError('FENCED lease held by 2:other, not 1:me'));
    store.add(...entries(3));
    await engine.start();
    expect(await fatal).toBeInstanceOf(LeaseLostError);
    expect(store.commits).toEqual([]);
  });

  it('ends the term with StateLostError when another server answers after a reconnect; commits nothing more', async () => {
    const { engine, store, fatal } = term();
    store.add(...entries(10));
    await engine.start();
    await until(() => committedCount(store) === 10, 'the first entries are committed');
    const before = store.commits.length;
    store.setConnected('main', false);
    store.serverIdValue = 'run-2'; // Redis restarted (or failed over) while the connection was down
    store.setConnected('main', true);
    store.add(...entries(10, 100));
    const e = await fatal;
    expect(e).toBeInstanceOf(StateLostError);
    expect(e.message).toContain('run_id run-1 → run-2');
    expect(store.commits).toHaveLength(before);
  });

  it("ends the term with StateLostError when the continuity check finds a shard's previous commit missing", async () => {
    const { engine, store, fatal } = term();
    store.failNext(
      'commit',
      StateLostError.proven(new Error('STATELOST last applied commit of shard 0 is x')),
    );
    store.add(...entries(3));
    await engine.start();
    expect(await fatal).toBeInstanceOf(StateLostError);
    expect(store.commits).toEqual([]);
  });

  it('restarts a crashed worker from the checkpoint and resubmits its uncommitted batches in order', async () => {
    const { engine, store, logs } = term();
    const input = [...entries(30), { id: '31-99', fields: ['key', 'k3'] }, ...entries(30, 32)];
    store.add(...input);
    await engine.start();
    await until(() => committedCount(store) === input.length, 'all entries are committed');
    expect(await engine.stop(5000)).toEqual({ clean: true });
    expectExactlyOnceInOrder(store, input);
    const crash = logs.find((l) => l.msg === 'shard worker crashed; restarting it from the checkpoint');
    expect(crash).toBeDefined();
    // Loaded once per shard at start, then again for the crashed shard only.
    expect(store.checkpointLoads).toHaveLength(3);
    expect(store.checkpointLoads[2]).toEqual(store.checkpointLoads[crash?.shard as number]);
  });

  it('stops with StaleStateError when a read finds no group and the group was re-created', async () => {
    const { engine, store, fatal } = term();
    store.failNext('read', new NoGroupError("NOGROUP No such key 'in' or consumer group 'g'"));
    store.failNext('verifyIncarnation', new StaleStateError('the group was re-created'));
    await engine.start();
    expect(await fatal).toBeInstanceOf(StaleStateError);
    expect(engine.readiness().group).toBe(false);
  });

  it('retries a read that finds no group while the group still has its incarnation', async () => {
    const { engine, store, logs } = term();
    store.failNext('read', new NoGroupError("NOGROUP No such key 'in' or consumer group 'g'"));
    const input = entries(8);
    store.add(...input);
    await engine.start();
    await until(() => committedCount(store) === 8, 'all entries are committed');
    expect(await engine.stop(5000)).toEqual({ clean: true });
    expectExactlyOnceInOrder(store, input);
    expect(logs.filter((l) => l.msg === 'read failed; retrying')).toHaveLength(1);
  });
});
