/**
 * The pipeline lease: at most one instance of a pipeline (stream + group) processes at a time.
 *
 *   <ns>:lease   STRING  "<epoch>:<owner>", with a TTL (PX); the holder renews it every ttl/3
 *   <ns>:epoch   STRING  counter, incremented on every new acquisition (the fencing epoch)
 *
 * Both scripts, `LEASE_ACQUIRE_1` (acquire, renew, resume) and `LEASE_RELEASE_1`, are in redis/scripts/.
 *
 * The lease value is the fencing token: every commit script checks `GET <ns>:lease == token` before it
 * writes (see commit/applyOps.ts), so a paused old owner's late commit is rejected once another instance
 * took over. An owner is `<consumer>/<random>`: a restarted process never mistakes a dead predecessor's
 * lease for its own, it waits for it to lapse.
 *
 * Reads of new entries are fenced too (source/redisSource.ts, readFenced): the XREADGROUP runs in a
 * transaction that WATCHes the lease after checking the token, so a late read by an old owner moves no
 * entry into its pending list.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { leaseAcquireScript } from '../redis/scripts/leaseAcquire-2.js';
import { leaseReleaseScript } from '../redis/scripts/leaseRelease-1.js';

export type LeaseState = { held: true; token: string } | { held: false; holder: string; ttlMs: number };

export class Lease {
  readonly owner: string;
  private mine = '';
  /** performance.now() before which our lease cannot have lapsed on the server (0 = not held). */
  private validUntil = 0;
  private renewTimer: NodeJS.Timeout | null = null;
  private renewGen = 0;
  /** Called once when a renewal finds the lease taken by another instance. */
  onLost: (holder: string) => void = () => {};
  /** Called after each renewal: with its error when it failed (Redis refused or unreachable), else null. */
  onRenewal: (err: Error | null) => void = () => {};

  constructor(
    private readonly redis: Redis,
    private readonly keys: { lease: string; epoch: string },
    consumer: string,
    readonly ttlMs: number,
    /** The owner string; the instance's ID when it holds leases of several partitions. */
    owner: string = Lease.ownerId(consumer),
  ) {
    this.owner = owner;
  }

  /** A new owner string for an instance: `<consumer>/<random>` (see the file's header). */
  static ownerId(consumer: string): string {
    return `${consumer}/${randomBytes(6).toString('hex')}`;
  }

  /** The owner part of a lease value `<epoch>:<owner>`. */
  static ownerOf(value: string): string {
    const at = value.indexOf(':');
    return at < 0 ? value : value.slice(at + 1);
  }

  /** The fencing token while held ("" before the first acquisition). */
  get token(): string {
    return this.mine;
  }

  get epoch(): number {
    return Number(this.mine.split(':')[0] ?? 0);
  }

  /** Tries once to acquire (or renew, or resume) the lease. */
  async tryAcquire(): Promise<LeaseState> {
    const sent = performance.now();
    const reply = (await leaseAcquireScript.run(
      this.redis,
      [this.keys.lease, this.keys.epoch],
      [this.owner, String(this.ttlMs), this.mine],
    )) as [number, string, number?];
    if (reply[0] === 1) {
      this.mine = reply[1];
      // Measured from before the request: the server's TTL started later, so this errs on the safe side.
      this.validUntil = sent + this.ttlMs;
      return { held: true, token: this.mine };
    }
    this.validUntil = 0;
    return { held: false, holder: reply[1], ttlMs: Number(reply[2] ?? 0) };
  }

  /** Renews every ttl/3 until {@link stopRenewing}; calls {@link onLost} if another instance holds it. */
  startRenewing(): void {
    this.stopRenewing();
    // Each loop has its own generation: a renewal still in flight when the loop was stopped (and perhaps
    // restarted for a new term) must not schedule itself again — that would leave a second, untracked loop
    // running (it kept the process alive after a stop, and would re-take a released lease).
    const gen = ++this.renewGen;
    const every = Math.max(50, Math.floor(this.ttlMs / 3));
    const renew = async (): Promise<void> => {
      try {
        const s = await this.tryAcquire();
        if (gen !== this.renewGen) return;
        if (!s.held) {
          this.stopRenewing();
          this.onLost(s.holder);
          return;
        }
        this.onRenewal(null);
      } catch (e) {
        // Redis unreachable or refusing (e.g. OOM): keep trying; commits and reads are fenced meanwhile.
        if (gen === this.renewGen) this.onRenewal(e as Error);
      }
      if (gen === this.renewGen) this.renewTimer = setTimeout(renew, every);
    };
    this.renewTimer = setTimeout(renew, every);
  }

  stopRenewing(): void {
    this.renewGen++;
    if (this.renewTimer !== null) clearTimeout(this.renewTimer);
    this.renewTimer = null;
  }

  /**
   * How long a read issued now may block so that it ends before the lease could lapse, keeping a safety
   * margin of ttl/10 for clock-rate differences and network delay; 0 = do not read now.
   */
  readBudget(): number {
    const left = this.validUntil - performance.now() - this.ttlMs / 10;
    return left > 0 ? Math.floor(left) : 0;
  }

  /** Gives the lease up (graceful stop), so a standby takes over without waiting for the TTL. */
  async release(): Promise<void> {
    this.stopRenewing();
    this.validUntil = 0;
    if (this.mine === '') return;
    await leaseReleaseScript.run(this.redis, [this.keys.lease], [this.mine]).catch(() => {});
  }
}
