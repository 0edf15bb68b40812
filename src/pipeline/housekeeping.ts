/**
 * What a term does on timers besides reading and committing:
 *
 *   trim         every `source.trim.every`: delete input entries no group needs any more (source/trim.ts)
 *   incarnation  every VERIFY_EVERY_MS: the group still carries the marker of the state's incarnation —
 *                a destroy + re-create between two reads is not seen by the reader otherwise
 *
 * A failure is retried at the next tick, except stale state, which stops the term.
 */
import { VERIFY_EVERY_MS } from '../commit/incarnation.js';
import { StaleStateError } from '../errors.js';
import type { Term } from './term.js';

export class Housekeeping {
  private trimTimer: NodeJS.Timeout | null = null;
  private verifyTimer: NodeJS.Timeout | null = null;
  private verifying = false;

  constructor(
    private readonly term: Term,
    /** The state belongs to another incarnation of the group: the term stops. */
    private readonly stale: (e: StaleStateError) => void,
  ) {}

  start(): void {
    const trim = this.term.config.source.trim;
    if (trim !== undefined) this.trimTimer = setInterval(() => void this.trim(), trim.every);
    this.verifyTimer = setInterval(() => void this.verifyIncarnation(), VERIFY_EVERY_MS);
  }

  stop(): void {
    if (this.trimTimer !== null) clearInterval(this.trimTimer);
    if (this.verifyTimer !== null) clearInterval(this.verifyTimer);
    this.trimTimer = null;
    this.verifyTimer = null;
  }

  private async trim(): Promise<void> {
    const { term } = this;
    try {
      const { floor, trimmed } = await term.store.trim();
      if (trimmed > 0) {
        term.metrics?.entriesTrimmed.inc(trimmed);
        term.log.debug({ floor, trimmed }, 'trimmed the input stream');
      }
    } catch (e) {
      term.log.warn({ err: (e as Error).message }, 'trimming the input stream failed');
    }
  }

  private async verifyIncarnation(): Promise<void> {
    // One at a time, and not while the main connection is down: ioredis would queue a check per tick.
    const { term } = this;
    if (!term.live || this.verifying || !term.store.connected('main')) return;
    this.verifying = true;
    try {
      await term.store.verifyIncarnation();
    } catch (e) {
      if (e instanceof StaleStateError && term.running) this.stale(e);
    } finally {
      this.verifying = false;
    }
  }
}
