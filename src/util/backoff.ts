/**
 * The one retry schedule: capped exponential backoff, `base × 2^attempt` up to `cap` ms (attempt capped
 * at 6 so the product never overflows). 50 ms and 2 s by default: a Redis restart is usually back within
 * a few seconds, and a dead one is not hammered.
 */
export function backoffMs(attempt: number, base = 50, cap = 2000): number {
  return Math.min(cap, base * 2 ** Math.min(Math.max(0, attempt), 6));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
