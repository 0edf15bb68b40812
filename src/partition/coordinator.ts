/**
 * The coordinator of one instance: every tick it heartbeats into the membership, reads who holds each
 * partition's lease, computes the balanced sticky assignment (assignment.ts) and moves partitions:
 *
 *   tick ── heartbeat (MEMBERSHIP_1) → lease holders (GET per partition) → assign(P, members, holders)
 *        ├─ assigned here, not led here  → acquire (the lease arbitrates; free at once after a hand-over,
 *        │                                 after its TTL when the holder died)
 *        └─ led here, assigned elsewhere → hand over: drain, commit, release (the new owner acquires at once)
 *
 * Ticks come every min(ttl/4, 1s) — at {@link FAST_MS} while a partition assigned here is not led here
 * yet, so a released lease is picked up within {@link FAST_MS}. Every instance computes the same
 * assignment from the same records; when two read different ones for a moment (one heartbeat apart),
 * the leases keep every partition with at most one owner and the next ticks converge.
 */
import type { Redis } from 'ioredis';
import { Lease } from '../lease/lease.js';
import type { Logger } from '../util/log.js';
import { assign } from './assignment.js';
import type { Membership } from './membership.js';

/** A partition as the coordinator drives it (pipeline/partitionRunner.ts). */
export interface CoordinatedPartition {
  readonly index: number;
  readonly role: 'idle' | 'starting' | 'leader' | 'stopping';
  readonly keys: { lease(): string };
  acquire(reason: string, wantedSince: number): Promise<boolean>;
  handOver(reason: string, ms: number): Promise<{ clean: boolean }>;
}

/** Tick period while a partition assigned here is not led here yet. */
export const FAST_MS = 100;
/** Longest tick period: how soon a join or a graceful leave is noticed. */
const SLOW_MAX_MS = 1000;

export class Coordinator {
  /** The latest assignment as this instance computed it (null entries: no live member). */
  target: Array<string | null> = [];
  /** Live members as last seen. */
  members: string[] = [];
  /** Told when the partitions assigned here changed (a rebalance). */
  onRebalance: (assigned: number[], members: string[]) => void = () => {};
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<unknown> | null = null;
  private stopped = false;
  /** performance.now() since which each partition has been assigned here without being led here. */
  private readonly wantedSince = new Map<number, number>();
  private assignedKey = '';
  private failedTicks = 0;

  constructor(
    private readonly redis: Redis,
    private readonly membership: Membership,
    private readonly partitions: readonly CoordinatedPartition[],
    private readonly opts: {
      ttlMs: number;
      log: Logger;
      /** How long a rebalance's hand-over may take (`shutdown.timeout`). */
      handOverMs: number;
      /** A started term failed for good (not a lease question): the pipeline fails. */
      onError: (e: Error) => void;
    },
  ) {}

  /** The instance's ID (its leases' owner). */
  get id(): string {
    return this.membership.id;
  }

  /** The partitions assigned to this instance by the latest tick. */
  assigned(): number[] {
    const out: number[] = [];
    this.target.forEach((m, p) => {
      if (m === this.id) out.push(p);
    });
    return out;
  }

  /** Joins and acquires what is assigned and free; resolves once those acquisitions ended. */
  async start(): Promise<void> {
    await Promise.all(await this.tickNow());
  }

  /** Looks again soon (a partition became idle on its own). */
  poke(): void {
    this.schedule(0);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.ticking === null) void this.tickNow();
      else this.schedule(FAST_MS);
    }, ms);
  }

  /** Runs a tick; resolves, once its reads are done, with the acquisitions it started. */
  private tickNow(): Promise<Array<Promise<unknown>>> {
    const t = this.tick().finally(() => {
      this.ticking = null;
    });
    this.ticking = t;
    return t;
  }

  private async tick(): Promise<Array<Promise<unknown>>> {
    let next = Math.min(SLOW_MAX_MS, Math.max(FAST_MS, Math.floor(this.opts.ttlMs / 4)));
    const acquiring: Array<Promise<unknown>> = [];
    try {
      const members = await this.membership.heartbeat();
      const holders = await this.holders();
      if (this.stopped) return acquiring;
      this.failedTicks = 0;
      this.members = members;
      this.target = assign(this.partitions.length, members, holders);
      const mine = this.assigned();
      const key = mine.join(',');
      if (key !== this.assignedKey) {
        this.assignedKey = key;
        this.onRebalance(mine, members);
      }
      const now = performance.now();
      for (const part of this.partitions) {
        const p = part.index;
        const to = this.target[p] ?? null;
        if (to === this.id) {
          if (part.role === 'leader') {
            this.wantedSince.delete(p);
            continue;
          }
          next = FAST_MS;
          if (!this.wantedSince.has(p)) this.wantedSince.set(p, now);
          if (part.role !== 'idle') continue;
          const holder = holders[p] ?? null;
          const reason =
            holder === null
              ? 'free'
              : holder === this.id
                ? 'resume'
                : members.includes(holder)
                  ? `hand-over from ${holder}`
                  : `take-over from ${holder} (gone)`;
          acquiring.push(
            part.acquire(reason, this.wantedSince.get(p) as number).then(
              (led) => {
                if (led) this.wantedSince.delete(p);
              },
              (e: Error) =>
                this.opts.log.warn({ partition: p, err: e.message }, 'lease check failed; retrying'),
            ),
          );
        } else {
          this.wantedSince.delete(p);
          if (part.role === 'leader' && to !== null) {
            void part.handOver(`rebalance: assigned to ${to}`, this.opts.handOverMs).then(
              () => this.poke(),
              (e: Error) => this.opts.onError(e),
            );
          }
        }
      }
    } catch (e) {
      // Redis unreachable or refusing: the leases keep the partitions safe; try again.
      if (++this.failedTicks === 1 || this.failedTicks % 20 === 0)
        this.opts.log.warn(
          { err: (e as Error).message, attempts: this.failedTicks },
          'coordination failed; retrying',
        );
    }
    // Acquisitions (restores) run on; the heartbeat must not wait for them.
    this.schedule(next);
    return acquiring;
  }

  /** Who holds each partition's lease: its owner ID, or null when free. */
  private async holders(): Promise<Array<string | null>> {
    // One GET per key (not MGET): in a Redis Cluster the leases of different partitions are on other slots.
    const values = await Promise.all(this.partitions.map((p) => this.redis.get(p.keys.lease())));
    return values.map((v) => (v === null ? null : Lease.ownerOf(v)));
  }

  /**
   * Stops ticking and leaves the membership (the others take the partitions over at their next tick);
   * the caller then hands every partition over.
   */
  async stop(ms: number): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    const deadline = Date.now() + ms;
    if (this.ticking !== null) await Promise.race([this.ticking, sleepUntil(deadline)]);
    if (this.redis.status === 'ready')
      await Promise.race([this.membership.leave().catch(() => {}), sleepUntil(deadline)]);
  }
}

function sleepUntil(deadline: number): Promise<void> {
  return new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref());
}
