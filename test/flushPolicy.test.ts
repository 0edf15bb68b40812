/**
 * The flush policy's decisions (pipeline/flushPolicy.ts), on stand-in lanes and a fake clock: when an
 * open batch goes to its worker (group commit) and when a quiet lane is ticked. No workers, no Redis.
 */
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../src/config/load.js';
import { FlushPolicy } from '../src/pipeline/flushPolicy.js';
import type { Lane } from '../src/pipeline/lane.js';
import { Term } from '../src/pipeline/term.js';
import type { ShardOutput } from '../src/shard/protocol.js';
import { FakeStore } from './helpers/fakeStore.js';

const MAX_DELAY = 100;
const IDLE_CLOSE = 1000;
const CONFIG = parseConfig(
  `source: { stream: in, batchSize: 10 }\nsink: { stream: out }\ndeadLetter: { stream: dlq }\ncommit: { maxEvents: 5, maxDelay: ${MAX_DELAY} }\nstages: []\n`,
  't',
  { env: {} },
);
const OUTPUT = { closePending: false } as ShardOutput;

/** What the policy reads and calls of a lane, recording what was sent. */
class StubLane {
  readonly batch = { size: 0, since: 0 };
  inFlight = 0;
  recovering = false;
  openWindows = 0;
  quietSince = 0;
  /** Event counts of the batches dispatched. */
  readonly sent: number[] = [];
  /** `quietUntil` of each tick. */
  readonly ticks: number[] = [];

  get idle(): boolean {
    return this.inFlight === 0 && this.batch.size === 0;
  }
  /** `n` entries arrive in the open batch at `at` (wall ms). */
  fill(n: number, at = Date.now()): this {
    if (this.batch.size === 0) this.batch.since = at;
    this.batch.size += n;
    return this;
  }
  dispatch(): { count: number; output: Promise<ShardOutput> } {
    const count = this.batch.size;
    this.batch.size = 0;
    this.inFlight += count;
    this.sent.push(count);
    return { count, output: Promise.resolve(OUTPUT) };
  }
  starvedUntil(now: number): void {
    if (this.quietSince < now) this.quietSince = now;
  }
  tick(quietUntil: number): Promise<ShardOutput> {
    this.ticks.push(quietUntil);
    return Promise.resolve(OUTPUT);
  }
}

let policy: FlushPolicy;
let store: FakeStore;
let stalled = false;

function setUp(...lanes: StubLane[]): void {
  store = new FakeStore('in', 10);
  const lease = {
    token: 't',
    readBudget: () => 1000,
    tryAcquire: async () => ({ held: true, token: 't' }) as const,
  };
  const term = new Term(CONFIG, store, lease, pino({ level: 'silent' }), null, () => {});
  term.running = true;
  term.lanes.push(...(lanes as unknown as Lane[]));
  policy = new FlushPolicy(
    term,
    IDLE_CLOSE,
    () => {},
    () => stalled,
  );
}

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
  stalled = false;
});
afterEach(() => {
  policy.stop();
  vi.useRealTimers();
});

describe('FlushPolicy', () => {
  it('after a caught-up read sends an idle lane’s partial batch at once, holds a busy one’s, sends a full one', () => {
    const idle = new StubLane().fill(2);
    const busy = new StubLane().fill(3);
    busy.inFlight = 7;
    const full = new StubLane().fill(5);
    full.inFlight = 7;
    setUp(idle, busy, full);
    policy.afterRead(4, Date.now(), false); // 4 < batchSize: the reader has caught up
    expect([idle.sent, busy.sent, full.sent]).toEqual([[2], [], [5]]);
  });

  it('while reads are full, sends a partial batch when its oldest entry has waited commit.maxDelay', () => {
    const lane = new StubLane().fill(2);
    setUp(lane);
    policy.afterRead(10, Date.now(), false); // a full read: more is coming
    expect(lane.sent).toEqual([]);
    vi.advanceTimersByTime(MAX_DELAY - 1);
    expect(lane.sent).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(lane.sent).toEqual([2]);
  });

  it('never sends the batch of a lane recovering from a worker crash', () => {
    const lane = new StubLane().fill(5);
    lane.recovering = true;
    setUp(lane);
    policy.afterRead(1, Date.now(), false);
    vi.advanceTimersByTime(10 * MAX_DELAY);
    policy.flushAll();
    expect(lane.sent).toEqual([]);
  });

  it('after a commit sends what gathered while the lane was busy, and ticks a close spread over commits', () => {
    const lane = new StubLane().fill(3);
    lane.inFlight = 4;
    setUp(lane);
    policy.afterRead(1, Date.now(), false);
    expect(lane.sent).toEqual([]);
    lane.inFlight = 0; // its commit is done
    policy.afterCommit(lane as unknown as Lane, OUTPUT);
    expect(lane.sent).toEqual([3]);
    lane.inFlight = 0;
    policy.afterCommit(lane as unknown as Lane, { closePending: true } as ShardOutput);
    expect(lane.ticks).toHaveLength(1);
  });

  it('ticks a quiet lane with open windows once quiet for idleClose up to the last caught-up read', () => {
    const quiet = new StubLane();
    quiet.openWindows = 3;
    quiet.quietSince = Date.now();
    const noWindows = new StubLane();
    noWindows.quietSince = Date.now();
    setUp(quiet, noWindows);
    policy.start();
    vi.advanceTimersByTime(2 * IDLE_CLOSE);
    expect(quiet.ticks).toEqual([]); // no read has found the stream caught up: quiet time is not known
    const readStart = Date.now();
    policy.afterRead(0, readStart, false);
    vi.advanceTimersByTime(IDLE_CLOSE);
    expect(quiet.ticks[0]).toBe(readStart);
    expect(noWindows.ticks).toEqual([]);
  });

  it('does not tick while Redis is unreachable or the reader waits for room: the shards are starved, not quiet', () => {
    const lane = new StubLane();
    lane.openWindows = 1;
    lane.quietSince = Date.now();
    setUp(lane);
    policy.start();
    store.setConnected('reader', false);
    policy.afterRead(0, Date.now() + 5 * IDLE_CLOSE, false);
    vi.advanceTimersByTime(2 * IDLE_CLOSE);
    expect(lane.ticks).toEqual([]);
    expect(lane.quietSince).toBeGreaterThan(1_000_000); // starved until the last tick of the timer
    store.setConnected('reader', true);
    stalled = true;
    vi.advanceTimersByTime(2 * IDLE_CLOSE);
    expect(lane.ticks).toEqual([]);
  });
});
