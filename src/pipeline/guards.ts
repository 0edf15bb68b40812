/**
 * The two checks a read or commit passes before it may touch Redis again, and what their failures mean:
 *
 *   fenced(err)   a read or commit was FENCED: the lease lapsed. Nobody took it → same token again, retry;
 *                 someone did → LeaseLostError (the term ends, the instance stands by).
 *   sameServer()  after a reconnect: the server's run_id is the term's. Another one (a restart, a failover)
 *                 may have lost writes → StateLostError (the term restarts from what Redis has).
 */
import { LeaseLostError, StateLostError } from '../errors.js';
import type { Term } from './term.js';

export class Guards {
  /** The server's run_id at the start of the term. */
  private runId: string | null = null;
  /** Resolved while the server is known to be the term's; null after a reconnect (ask again). */
  private verified: Promise<void> | null = Promise.resolve();

  constructor(private readonly term: Term) {}

  /** Records the server the term starts on. */
  async begin(): Promise<void> {
    this.runId = await this.term.store.serverId();
    this.verified = Promise.resolve();
  }

  /** A connection came back: the next read and commit first check that it is the same server. */
  reconnected(): void {
    this.verified = null;
  }

  /**
   * A read or commit was fenced: our lease lapsed (e.g. the event loop or Redis stalled past the TTL). If
   * nobody took it, the same token is valid again and the call can be retried; otherwise we must stand
   * down. @throws LeaseLostError
   */
  async fenced(err: Error): Promise<void> {
    const { lease, log } = this.term;
    const token = lease.token;
    const state = await lease.tryAcquire().catch(() => null);
    if (state !== null && !state.held) throw new LeaseLostError(state.holder);
    if (state !== null && state.token !== token) throw new LeaseLostError(state.token);
    log.warn({ err: err.message }, 'lease had lapsed; renewed with the same token');
  }

  /**
   * Resolves when the server is the one the term started on — before a stale read or commit could mix old
   * in-memory state with data a restarted server restored. Another server fails the term.
   * @throws StateLostError; connection errors (asked again next time)
   */
  sameServer(): Promise<void> {
    this.verified ??= this.term.store.serverId().then(
      (now) => {
        if (now !== null && this.runId !== null && now !== this.runId) {
          const e = StateLostError.serverChanged(this.runId, now);
          this.term.fail(e);
          throw e;
        }
      },
      (e: unknown) => {
        this.verified = null; // could not ask: ask again next time
        throw e;
      },
    );
    return this.verified;
  }
}
