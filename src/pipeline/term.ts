/**
 * A leadership term's shared state: what every step of the engine reads (config, store, lanes, whether
 * the term still runs) and the one way to end it (`fail`). One Term per engine; the steps — start-up,
 * reader, flush policy, committer — each hold it.
 *
 *   running   reads go on (false once stopping, stale or failed)
 *   stopping  stop() or abandon() was called: no new work, drain what is read
 *   failure   the first unrecoverable error: nothing more is committed (order would break)
 */
import type { PipelineConfig } from '../config/load.js';
import { LeaseLostError, StaleStateError, StateLostError } from '../errors.js';
import type { LeaseState } from '../lease/lease.js';
import type { Metrics } from '../metrics/metrics.js';
import type { Store } from '../store/store.js';
import type { Logger } from '../util/log.js';
import type { Lane } from './lane.js';

/** What a term needs of the pipeline lease (lease/lease.ts). */
export interface TermLease {
  /** The fencing token while held. */
  readonly token: string;
  /** Milliseconds the lease is certainly still ours (0 when it may have lapsed). */
  readBudget(): number;
  tryAcquire(): Promise<LeaseState>;
}

export class Term {
  running = false;
  stopping = false;
  failure: Error | null = null;
  readonly lanes: Lane[] = [];
  /** Wall ms after which a stopping term gives up retrying commits (∞ until stop() sets it). */
  deadline = Number.POSITIVE_INFINITY;
  /** performance.now() when this term began, until its first commit is applied (the recovery time). */
  recoveringSince: number | null = null;

  constructor(
    readonly config: PipelineConfig,
    readonly store: Store,
    readonly lease: TermLease,
    readonly log: Logger,
    readonly metrics: Metrics | null,
    /** Called once with the error that ended the term. */
    private readonly onFatal: (e: Error) => void,
  ) {}

  /** True while the term reads and commits. */
  get live(): boolean {
    return this.running && this.failure === null;
  }

  pastDeadline(): boolean {
    return Date.now() > this.deadline;
  }

  /**
   * Ends the term with `e` (the first error wins). A lost lease or lost state is the pipeline's business
   * (it stands by, or starts a new term) and is not logged as a failure here.
   */
  fail(e: unknown): void {
    if (this.failure !== null) return;
    const failure = e instanceof Error ? e : new Error(String(e));
    this.failure = failure;
    // Stale state is an operator's mistake, not a bug: its message says what to do, a stack would bury it.
    const stack = e instanceof StaleStateError ? undefined : failure.stack;
    if (!(failure instanceof LeaseLostError) && !(failure instanceof StateLostError))
      this.log.error({ err: failure.message, stack }, 'pipeline failed');
    this.onFatal(failure);
  }
}
