/**
 * Logs failed lease renewals: the first of a run of failures, then at most every
 * {@link RENEWAL_LOG_EVERY_MS} (a renewal runs every ttl/3), and the recovery. Commits and reads stay
 * fenced meanwhile; the lease lapses at its TTL.
 */
import { maskSecrets } from '../redis/url.js';
import type { Logger } from '../util/log.js';

/** While lease renewals keep failing, one log line per this many ms. */
const RENEWAL_LOG_EVERY_MS = 10_000;

/** A `Lease.onRenewal` handler that logs as above; `validFor` tells how long the lease surely holds. */
export function renewalLogger(log: Logger, url: string, validFor: () => number): (err: Error | null) => void {
  const f = { count: 0, loggedAt: 0 };
  return (err) => {
    const now = Date.now();
    if (err === null) {
      if (f.count > 0) log.info({ failures: f.count }, 'lease renewed again');
      f.count = 0;
      return;
    }
    f.count++;
    if (f.count > 1 && now - f.loggedAt < RENEWAL_LOG_EVERY_MS) return;
    f.loggedAt = now;
    log.warn(
      { err: maskSecrets(err.message, url), failures: f.count, validForMs: validFor() },
      'lease renewal failed; retrying',
    );
  };
}
