/**
 * The Lane's state transitions, without Redis: a real single-thread piscina pool runs a scripted stand-in
 * worker (fixtures/worker-scripted.mjs) that answers with fixed outputs and throws on cue. Each test plays
 * the engine's part — dispatch, output taken, output committed, crash, resubmission, tick — and checks
 * what the lane reports.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { Lane } from '../src/pipeline/lane.js';
import { NO_KEY } from '../src/routing/batchCodec.js';
import type { RestoredState, ShardOutput } from '../src/shard/protocol.js';

const WORKER = fileURLToPath(new URL('./fixtures/worker-scripted.mjs', import.meta.url));
/** The fixture's cue: a batch dispatched at this wall ms (or a tick quiet until it) throws. */
const CRASH_AT = 1;
const CONFIG = parseConfig(
  'source: { stream: in }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\nstages: []\n',
  't',
  { env: {} },
);
const FRESH: RestoredState = { windows: [], dedupLogs: [], streamTime: null };
const NO_FIELDS = new Int32Array(0);

const lanes: Lane[] = [];
afterEach(async () => {
  await Promise.all(lanes.splice(0).map((l) => l.close()));
});

async function startLane(): Promise<Lane> {
  const lane = new Lane(0, 32, WORKER);
  lanes.push(lane);
  await lane.init(CONFIG, FRESH);
  return lane;
}

/** Appends entries with these IDs (no fields) to the lane's open batch. */
function route(lane: Lane, ...ids: string[]): void {
  for (const id of ids) {
    const src = Buffer.from(id);
    const head = { keyGroup: 0, keyField: NO_KEY, deliveries: 1, flags: 0 };
    lane.batch.add(src, 0, src.length, 0, NO_FIELDS, NO_FIELDS, head);
  }
}

/** What the lane reports, in one object to compare whole. */
function state(lane: Lane) {
  const { inFlight, openWindows, epoch, generation, recovering, idle, heapUsed, heapSize } = lane;
  return { inFlight, openWindows, epoch, generation, recovering, idle, heapUsed, heapSize };
}

const START = {
  inFlight: 0,
  openWindows: 2,
  epoch: 0,
  generation: 0,
  recovering: false,
  idle: true,
  heapUsed: 0,
  heapSize: 0,
};

/** Resolves with `output`'s rejection message (the outputs of a crashed epoch reject). */
async function crashOf(output: Promise<ShardOutput>): Promise<string> {
  return output.then(
    () => 'no crash',
    (e: unknown) => (e as Error).message,
  );
}

describe('Lane', () => {
  it('counts a dispatched batch in flight until its output is committed, then keeps the worker figures', async () => {
    const lane = await startLane();
    expect(state(lane)).toEqual(START);
    route(lane, '1-1', '1-2', '1-3');
    const { count, output } = lane.dispatch(100);
    expect(count).toBe(3);
    expect(lane.batch.size).toBe(0);
    expect(lane.quietSince).toBe(100);
    expect(state(lane)).toEqual({ ...START, inFlight: 3, idle: false });
    const out = await output;
    expect(out.printed).toEqual(['1-1', '1-2', '1-3']);
    lane.outputTaken();
    expect(lane.nextCommitSeq()).toBe(0);
    expect([lane.streamTime, lane.dedupIds]).toEqual([null, 0]); // as restored, until committed
    lane.outputCommitted(count, out);
    expect(state(lane)).toEqual({ ...START, openWindows: 3, heapUsed: 1003, heapSize: 2003 });
    expect([lane.streamTime, lane.dedupIds]).toEqual([1003, 3]);
    expect(lane.utilization()).toBeGreaterThan(0); // the worker's 5 busy ms were counted
    expect(lane.nextCommitSeq()).toBe(1);
    expect(lane.nextCommitSeq()).toBe(2);
  });

  it('moves quietSince forward only when starved, never back', async () => {
    const lane = await startLane();
    route(lane, '1-1');
    const { output } = lane.dispatch(500);
    lane.starvedUntil(400);
    expect(lane.quietSince).toBe(500);
    lane.starvedUntil(600);
    expect(lane.quietSince).toBe(600);
    await output; // the task must settle before the lane is closed (an unsettled one errors in piscina)
  });

  it('is not idle while a tick is queued, whether the tick answers or throws; the tick carries quietSince', async () => {
    const lane = await startLane();
    lane.starvedUntil(Date.now() + 60_000); // a fixed quietSince ahead of the constructor's Date.now()
    const quietSince = lane.quietSince;
    const tick = lane.tick(50);
    expect(lane.idle).toBe(false);
    const out = await tick;
    expect(out.eventTimes).toEqual([50, quietSince]);
    expect(lane.idle).toBe(true);
    const failed = lane.tick(CRASH_AT);
    expect(lane.idle).toBe(false);
    expect(await crashOf(failed)).toBe('scripted crash on a tick');
    expect(lane.idle).toBe(true);
  });

  it('after crashes resubmits retained batches in order, splits the oldest, then poisons the entry', async () => {
    const lane = await startLane();
    const attempts = 2;
    route(lane, 'a-1', 'a-2');
    const a = lane.dispatch(CRASH_AT);
    route(lane, 'b-1');
    const b = lane.dispatch(200);
    expect(state(lane)).toEqual({ ...START, inFlight: 3, idle: false });
    expect(await crashOf(a.output)).toBe('scripted crash on a-1,a-2');
    await b.output; // answered, but discarded by the engine: its epoch is over after the crash

    // 1st crash of batch a: every retained batch goes again, whole, in order.
    expect(lane.crashed()).toBe(1);
    const crashed1 = { ...START, inFlight: 3, idle: false, epoch: 1, generation: 1, recovering: true };
    expect(state(lane)).toEqual(crashed1);
    await lane.init(CONFIG, FRESH);
    let again = lane.resubmit(attempts);
    expect(lane.recovering).toBe(false);
    expect(again.map((r) => r.count)).toEqual([2, 1]);
    expect(await crashOf(again[0]!.output)).toBe('scripted crash on a-1,a-2');
    expect((await again[1]!.output).printed).toEqual(['b-1']);

    // 2nd crash of batch a (= attempts): it is split into single entries.
    expect(lane.crashed()).toBe(2);
    expect(state(lane)).toEqual({ ...crashed1, epoch: 2, generation: 2 });
    await lane.init(CONFIG, FRESH);
    again = lane.resubmit(attempts);
    expect(again.map((r) => r.count)).toEqual([1, 1, 1]);
    expect(await crashOf(again[0]!.output)).toBe('scripted crash on a-1');
    expect(await crashOf(again[1]!.output)).toBe('scripted crash on a-2');
    await again[2]!.output;

    // The single entry a-1 crashes it `attempts` times: it goes marked POISON and is dead-lettered.
    expect(lane.crashed()).toBe(1);
    await lane.init(CONFIG, FRESH);
    again = lane.resubmit(attempts);
    expect(again.map((r) => r.count)).toEqual([1, 1, 1]);
    expect(await crashOf(again[0]!.output)).toBe('scripted crash on a-1');
    expect(lane.crashed()).toBe(2);
    await lane.init(CONFIG, FRESH);
    again = lane.resubmit(attempts);
    const poisoned = await again[0]!.output;
    expect([poisoned.printed, poisoned.counts.deadLettered]).toEqual([['a-1'], { E_WORKER_CRASH: 1 }]);
    lane.outputTaken();
    lane.outputCommitted(1, poisoned);
    expect(state(lane)).toEqual({
      ...START,
      inFlight: 2,
      idle: false,
      epoch: 4,
      generation: 4,
      openWindows: 3,
      heapUsed: 1001,
      heapSize: 2001,
    });

    // The next crash counts against a-2, now the oldest retained batch, from 0.
    expect(await crashOf(again[1]!.output)).toBe('scripted crash on a-2');
    await again[2]!.output;
    expect(lane.crashed()).toBe(1);
  });

  it('counts a crash with nothing retained (a tick threw) against no batch', async () => {
    const lane = await startLane();
    expect(await crashOf(lane.tick(CRASH_AT))).toBe('scripted crash on a tick');
    expect(lane.crashed()).toBe(0);
    await lane.init(CONFIG, FRESH);
    expect(lane.resubmit(2)).toEqual([]);
    expect(state(lane)).toEqual({ ...START, epoch: 1, generation: 1 });
  });
});
