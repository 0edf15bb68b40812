/**
 * An in-memory Store (src/store/store.ts) for unit tests of the engine's decisions: no Redis. It keeps an
 * input of entries, hands them out in reads of at most `batchSize`, records every commit, and fails the
 * calls a test scripts (`failNext`). The integration tests run the real RedisStore.
 */
import type { CommitFence, ConnectionName, GroupInfo, ReadResult, Store } from '../../src/store/store.js';
import type { RestoredState } from '../../src/shard/protocol.js';
import { NO_ENTRIES, StreamReply } from '../../src/source/streamReply.js';
import type { StaleStateError } from '../../src/errors.js';

export interface FakeEntry {
  id: string;
  fields: string[];
}

export interface RecordedCommit {
  shard: number;
  seq: number;
  term: string;
  ops: string;
}

/**
 * What a test can make fail. `commitReply`: the commit is applied, then its reply is lost (the call
 * throws), as when a connection drops between the script's run and its answer.
 */
type Call = 'read' | 'commit' | 'commitReply' | 'serverId' | 'verifyIncarnation' | 'loadCheckpoint';

/** A nested RESP2 value: a bulk string, an array, or nil. */
type Resp = string | Resp[] | null;

function resp(v: Resp): string {
  if (v === null) return '*-1\r\n';
  if (typeof v === 'string') return `$${Buffer.byteLength(v)}\r\n${v}\r\n`;
  return `*${v.length}\r\n${v.map(resp).join('')}`;
}

/** An XREADGROUP reply holding `entries` of stream `stream`, as the reader connection receives it. */
export function streamReply(stream: string, entries: FakeEntry[]): StreamReply {
  if (entries.length === 0) return NO_ENTRIES;
  const value: Resp = [[stream, entries.map((e) => [e.id, e.fields])]];
  return new StreamReply(Buffer.from(resp(value)));
}

export class FakeStore implements Store {
  /** Entries not read yet, oldest first. */
  readonly input: FakeEntry[] = [];
  readonly commits: RecordedCommit[] = [];
  /** Shards whose checkpoint was loaded, in order (a restart after a crash loads one again). */
  readonly checkpointLoads: number[][] = [];
  serverIdValue: string | null = 'run-1';
  readonly up = { reader: true, main: true };
  /** Errors the next calls of a kind throw, in order; the call after them succeeds. */
  private readonly failures = new Map<Call, unknown[]>();
  private readonly listeners: Array<(which: ConnectionName, up: boolean, err?: Error) => void> = [];
  /** Commit IDs applied (`<term>#<seq>`), to answer "already applied" as the script does. */
  private readonly applied = new Set<string>();
  private waiting: (() => void) | null = null;
  closed = false;

  constructor(
    private readonly stream: string,
    private readonly batchSize: number,
    private readonly restored: RestoredState = { windows: [], dedupLogs: [], streamTime: null },
  ) {}

  /** Appends entries to the input and wakes a read waiting for them. */
  add(...entries: FakeEntry[]): void {
    this.input.push(...entries);
    this.waiting?.();
  }

  /** The next `errors.length` calls of `call` throw these, in order. */
  failNext(call: Call, ...errors: unknown[]): void {
    this.failures.set(call, [...(this.failures.get(call) ?? []), ...errors]);
  }

  /** Marks a connection up or down, telling the listeners as the real store does. */
  setConnected(which: ConnectionName, up: boolean): void {
    if (this.up[which] === up) return;
    this.up[which] = up;
    for (const l of this.listeners) l(which, up);
  }

  private failure(call: Call): void {
    const queued = this.failures.get(call);
    if (queued !== undefined && queued.length > 0) throw queued.shift();
  }

  async connect(): Promise<void> {}
  connected(which: ConnectionName): boolean {
    return this.up[which];
  }
  onConnection(listener: (which: ConnectionName, up: boolean, err?: Error) => void): void {
    this.listeners.push(listener);
  }
  async serverId(): Promise<string | null> {
    this.failure('serverId');
    return this.serverIdValue;
  }
  async checkFingerprint(): Promise<void> {}
  async establishIncarnation(): Promise<'same'> {
    return 'same';
  }
  async verifyIncarnation(): Promise<void> {
    this.failure('verifyIncarnation');
  }
  groupMovedBack(): Promise<StaleStateError> {
    throw new Error('not scripted');
  }
  async checkOutputKeys(): Promise<void> {}
  async loadCheckpoint(keyGroups: number[]): Promise<RestoredState> {
    this.failure('loadCheckpoint');
    this.checkpointLoads.push(keyGroups);
    return this.restored;
  }
  async othersPending(): Promise<{ others: Array<[string, number]>; total: number }> {
    return { others: [], total: 0 };
  }
  async claimIdle(): Promise<void> {}

  /** Hands out up to `batchSize` entries; with none, waits for some up to `budgetMs` (a blocking read). */
  async read(budgetMs: number): Promise<ReadResult> {
    await Promise.resolve();
    this.failure('read');
    if (this.input.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(budgetMs, 50));
        this.waiting = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiting = null;
    }
    const entries = this.input.splice(0, this.batchSize);
    return { entries: streamReply(this.stream, entries), deleted: [], replay: false, deliveries: null };
  }
  resumeAfterError(): void {}
  async ackDeleted(): Promise<void> {}

  async commit(fence: CommitFence, shard: number, seq: number, ops: Uint8Array): Promise<boolean> {
    await Promise.resolve();
    this.failure('commit');
    const id = `${fence.term}#${seq}/${shard}`;
    if (this.applied.has(id)) return false;
    this.applied.add(id);
    this.commits.push({ shard, seq, term: fence.term, ops: Buffer.from(ops).toString() });
    this.failure('commitReply');
    return true;
  }

  async trim(): Promise<{ floor: string; trimmed: number }> {
    return { floor: '0-0', trimmed: 0 };
  }
  async groupInfo(): Promise<GroupInfo | null> {
    return { pending: 0, lag: this.input.length };
  }
  async close(): Promise<void> {
    this.closed = true;
    this.waiting?.();
  }
  disconnect(): void {
    this.closed = true;
    this.waiting?.();
  }
  disconnectReader(): void {
    this.waiting?.();
  }
}
