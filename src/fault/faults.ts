/**
 * Fault injection for the reliability tests (like FoundationDB's "buggify", but opt-in): the environment
 * variable `STREAMSHARD_FAULTS` names faults to inject at exact points, so that a test can prove what
 * happens when a process dies between two steps — points a `kill -9` from outside hits only by chance.
 * Unset (always in production) it costs a few branches per commit, per batch and per event.
 *
 *   STREAMSHARD_FAULTS="kill-after-commit=3,stage-throw=k7:2"
 *
 * | fault                      | effect                                                                       |
 * | -------------------------- | ---------------------------------------------------------------------------- |
 * | `kill-before-commit=N`     | SIGKILL this process just before sending its Nth commit                      |
 * | `kill-after-commit=N`      | SIGKILL this process once its Nth commit was applied, before it handles the reply |
 * | `lose-commit-reply=N`      | treat the Nth commit's reply as lost (connection error) after it was applied |
 * | `stage-throw=KEY:T`        | a stage throws for events of KEY on their first T tries (`T` = `always`: every try) |
 * | `crash-on-key=KEY`         | the shard worker thread exits while processing an event of KEY (every time)  |
 * | `crash-worker-once=S:B`    | shard S's first worker thread exits at its Bth batch (restarted ones do not) |
 * | `hold-read-reply=N:MS`     | the Nth read that returns entries hands them over MS ms after its reply came (a slow read) |
 */

export interface Faults {
  killBeforeCommit: number | null;
  killAfterCommit: number | null;
  loseCommitReply: number | null;
  stageThrow: { key: string; times: number } | null;
  crashOnKey: string | null;
  crashWorkerOnce: { shard: number; batch: number } | null;
  holdReadReply: { read: number; ms: number } | null;
}

const NONE: Faults = {
  killBeforeCommit: null,
  killAfterCommit: null,
  loseCommitReply: null,
  stageThrow: null,
  crashOnKey: null,
  crashWorkerOnce: null,
  holdReadReply: null,
};

/** Parses `STREAMSHARD_FAULTS`; throws on an unknown fault so that a typo cannot silently test nothing. */
export function parseFaults(spec: string | undefined): Faults {
  if (spec === undefined || spec.trim() === '') return NONE;
  const f: Faults = { ...NONE };
  for (const part of spec.split(',')) {
    const [name, value = ''] = part.trim().split('=') as [string, string?];
    const int = (v: string) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0)
        throw new Error(`STREAMSHARD_FAULTS: ${name} needs a count, got "${v}"`);
      return n;
    };
    const pair = (v: string): [string, string] => {
      const i = v.lastIndexOf(':');
      if (i <= 0) throw new Error(`STREAMSHARD_FAULTS: ${name} needs A:B, got "${v}"`);
      return [v.slice(0, i), v.slice(i + 1)];
    };
    switch (name) {
      case 'kill-before-commit':
        f.killBeforeCommit = int(value);
        break;
      case 'kill-after-commit':
        f.killAfterCommit = int(value);
        break;
      case 'lose-commit-reply':
        f.loseCommitReply = int(value);
        break;
      case 'stage-throw': {
        const [key, times] = pair(value);
        f.stageThrow = { key, times: times === 'always' ? Number.POSITIVE_INFINITY : int(times) };
        break;
      }
      case 'crash-on-key':
        f.crashOnKey = value;
        break;
      case 'crash-worker-once': {
        const [shard, batch] = pair(value);
        f.crashWorkerOnce = { shard: int(shard), batch: int(batch) };
        break;
      }
      case 'hold-read-reply': {
        const [read, ms] = pair(value);
        f.holdReadReply = { read: int(read), ms: int(ms) };
        break;
      }
      default:
        throw new Error(`STREAMSHARD_FAULTS: unknown fault "${name}"`);
    }
  }
  return f;
}

/** The faults of this process (worker threads share the environment). */
export const faults: Faults = parseFaults(process.env.STREAMSHARD_FAULTS);

/** Ends this process as `kill -9` would: no handlers, no flushing. */
export function killSelf(): never {
  process.kill(process.pid, 'SIGKILL');
  throw new Error('unreachable');
}
