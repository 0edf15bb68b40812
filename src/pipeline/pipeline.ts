/**
 * The public facade: built from a config validated once at the door (`fromFile` loads and validates it;
 * `fromConfig` takes one `loadConfig` returned), serves metrics and health over HTTP, and runs the
 * pipeline's partitions that this instance is given:
 *
 *   Pipeline ── Coordinator (membership, assignment; partition/coordinator.ts)
 *            └─ PartitionRunner × source.partitions: lease + one Engine per led partition
 *
 * Every instance of a pipeline joins the membership; the partitions are shared among the live members,
 * each led by the one instance holding its lease (lease/lease.ts). With one partition this is one leader
 * and standbys, as before partitions existed: a standby takes over when the leader's lease lapses (kill
 * -9) or at once when it is released (SIGTERM).
 */
import type { Redis } from 'ioredis';
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { Lease } from '../lease/lease.js';
import { Metrics } from '../metrics/metrics.js';
import { PartitionMetrics } from '../metrics/partitionMetrics.js';
import { registerStateGauges } from '../metrics/stateGauges.js';
import { type HttpEndpoint, startHttp } from '../metrics/server.js';
import { DeadLetterCache } from '../metrics/status/recentDeadLetters.js';
import { StatusReporter } from '../metrics/status/statusReport.js';
import { Coordinator } from '../partition/coordinator.js';
import { Membership } from '../partition/membership.js';
import { partitionConfigs } from '../partition/scope.js';
import { closeRedis, connectRedis, openRedis, redactUrl, waitForRedis } from '../redis/connect.js';
import { maskSecrets } from '../redis/url.js';
import { withTimeout } from '../util/deadline.js';
import { createLogger, type Logger } from '../util/log.js';
import { OwnedPartitions } from './owned.js';
import { PartitionRunner } from './partitionRunner.js';
import { StatsLog } from './statsLog.js';

export interface PipelineOptions {
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz and the status page (/, /api/status) (default true). */
  http?: boolean;
  /** The pipeline file, named in messages that tell which command to run (`streamshard reset -c FILE`). */
  configFile?: string;
}

/** `leader`: leads at least one partition; `standby`: a member that leads none (yet). */
export type Role = 'starting' | 'standby' | 'leader' | 'stopped';

export class Pipeline {
  private readonly metrics: Metrics;
  private readonly log: Logger;
  /** The instance's connection for leases, membership and sampling (not the data path). */
  private readonly leaseRedis: Redis;
  private readonly runners: PartitionRunner[];
  private readonly owned: OwnedPartitions;
  private readonly coordinator: Coordinator;
  private readonly stats: StatsLog;
  /** The status page's JSON (GET /api/status). */
  private readonly status: StatusReporter;
  private http: HttpEndpoint | null = null;
  private stopped: Promise<{ clean: boolean }> | null = null;
  private joined = false;
  private statsRunning = false;
  private loggedStandby = false;
  private rejectFailed: (e: Error) => void = () => {};
  /** The start-up in progress (waits for Redis, first tick); null before start(). */
  private starting: Promise<void> | null = null;
  /** Aborts start-up's wait for Redis when the pipeline is stopped meanwhile. */
  private readonly startAbort = new AbortController();
  /** Rejects when the pipeline fails; never resolves otherwise. */
  readonly failed: Promise<never>;

  private constructor(
    readonly config: PipelineConfig,
    private readonly opts: PipelineOptions,
  ) {
    this.log = opts.logger ?? createLogger(config.name);
    const c = config;
    this.runners = [];
    const owned = new OwnedPartitions(this.runners);
    this.owned = owned;
    this.metrics = new Metrics(
      c.metrics.prefix,
      c.shards,
      {
        groupInfo: () => owned.groupInfo(),
        inFlight: (s) => owned.inFlight(s),
        utilization: (s) => owned.utilization(s),
        workerHeap: (s) => owned.workerHeap(s),
        redisConnected: () => owned.readiness()?.redis ?? this.leaseRedis.status === 'ready',
        isLeader: () => this.currentRole === 'leader',
        leaseEpoch: () => owned.epoch(),
      },
      c.metrics.eventTypes,
    );
    registerStateGauges(this.metrics.registry, c.metrics.prefix, c.shards, {
      shard: (s) => owned.shardState(s),
      sample: () => owned.sample(),
    });
    const partitionMetrics = new PartitionMetrics(this.metrics.registry, c.metrics.prefix, {
      owned: () => owned.owned(),
      membership: () => ({
        members: this.coordinator.members.length,
        assigned: this.coordinator.assigned().length,
      }),
    });
    this.leaseRedis = connectRedis({
      url: c.redis.url,
      name: `streamshard:${c.name}:lease`,
      connectTimeoutMs: c.redis.connectTimeout,
      onState: (state) => {
        if (state === 'ready') for (const r of this.runners) void r.checkServer();
      },
    });
    const id = Lease.ownerId(c.source.consumer);
    const ctx = {
      redis: this.leaseRedis,
      owner: id,
      metrics: this.metrics,
      partitionMetrics,
      log: this.log,
      resetCommand: `streamshard reset -c ${opts.configFile ?? '<pipeline file>'}`,
      metricsPort: () => this.http?.port ?? null,
    };
    for (const pc of partitionConfigs(c)) {
      const r = new PartitionRunner(pc, ctx);
      r.onFatal = (e) => this.rejectFailed(e);
      r.onIdle = () => this.coordinator.poke();
      r.onChange = () => this.roleChanged();
      this.runners.push(r);
    }
    const membership = new Membership(
      this.leaseRedis,
      Membership.keyOf(c.redis.keyPrefix, c.partition.stream, c.source.group),
      id,
      c.lease.ttl,
    );
    this.coordinator = new Coordinator(this.leaseRedis, membership, this.runners, {
      ttlMs: c.lease.ttl,
      log: this.log,
      handOverMs: c.shutdown.timeout,
      onError: (e) => this.rejectFailed(e),
    });
    this.coordinator.onRebalance = (assigned, members) => {
      partitionMetrics.rebalances.inc();
      if (c.source.partitions > 1)
        this.log.info({ assigned, members: members.length }, 'partitions assigned');
    };
    this.stats = new StatsLog(this.metrics, () => owned.sample(), this.log, c.metrics.statsEvery);
    this.status = new StatusReporter(
      c,
      this.metrics,
      {
        role: () => this.currentRole,
        leaseEpoch: () => owned.epoch(),
        shard: (s) => {
          const state = owned.shardState(s);
          if (state === null) return null;
          return { ...state, inFlight: owned.inFlight(s), busyMs: owned.busyMs(s) };
        },
        sample: () => owned.sample(),
      },
      new DeadLetterCache(this.leaseRedis, c.deadLetter.stream, c.key.field),
    );
    this.failed = new Promise<never>((_, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  }

  static fromFile(file: string, opts: PipelineOptions = {}): Pipeline {
    return new Pipeline(loadConfig(file), { configFile: file, ...opts });
  }

  /** For a config loaded with `loadConfig` (validated there). */
  static fromConfig(config: PipelineConfig, opts: PipelineOptions = {}): Pipeline {
    return new Pipeline(config, opts);
  }

  /**
   * Starts serving HTTP (so /healthz answers during restore), joins the pipeline's members and acquires
   * the partitions assigned to this instance that are free (restores them and starts reading; resolves
   * once they read). Partitions led by other live instances are handed over in the background, and a
   * dead instance's are taken over after their lease lapses.
   */
  async start(): Promise<void> {
    const c = this.config;
    if (this.opts.http !== false) {
      this.http = await startHttp(
        this.metrics.registry,
        () => this.readiness(),
        c.metrics.host,
        c.metrics.port,
        () => this.status.report(),
      );
    }
    this.starting = this.connectAndJoin();
    await this.starting;
  }

  private async connectAndJoin(): Promise<void> {
    const c = this.config;
    await waitForRedis({
      url: c.redis.url,
      name: `streamshard:${c.name}:lease`,
      connectTimeoutMs: c.redis.connectTimeout,
      startTimeoutMs: c.redis.startTimeout,
      signal: this.startAbort.signal,
      onRetry: (err, attempt, retryInMs) =>
        this.log.warn(
          { redis: redactUrl(c.redis.url), err, attempt, retryInMs },
          'cannot connect to Redis; retrying',
        ),
    });
    try {
      await openRedis(this.leaseRedis);
    } catch (e) {
      this.leaseRedis.disconnect();
      const why = maskSecrets((e as Error).message, c.redis.url);
      throw new Error(`cannot connect to Redis at ${redactUrl(c.redis.url)}: ${why}`, { cause: e });
    }
    if (this.stopped !== null) return;
    await this.coordinator.start();
    this.joined = true;
    this.roleChanged();
  }

  /** Keeps the stats line running while leading, and logs `standby` once each time leading ends. */
  private roleChanged(): void {
    if (this.stopped !== null) return;
    const leading = this.owned.count() > 0;
    if (leading && !this.statsRunning) {
      this.statsRunning = true;
      this.stats.start();
    } else if (!leading && this.statsRunning) {
      this.statsRunning = false;
      this.stats.stop();
    }
    if (leading) this.loggedStandby = false;
    else if (this.joined && !this.loggedStandby && !this.runners.some((r) => r.role === 'starting')) {
      this.loggedStandby = true;
      const first = this.runners[0] as PartitionRunner;
      this.log.info(
        {
          members: this.coordinator.members.length,
          assigned: this.coordinator.assigned(),
          holder: this.coordinator.target[first.index] ?? null,
          consumer: this.config.source.consumer,
          metricsPort: this.http?.port ?? null,
        },
        'standby',
      );
    }
  }

  private readiness(): { role: Role; checks: Record<string, boolean> } {
    const checks = this.owned.readiness() ?? { redis: this.leaseRedis.status === 'ready' };
    return { role: this.currentRole, checks };
  }

  get currentRole(): Role {
    if (this.stopped !== null && !this.statsRunning) return 'stopped';
    if (this.owned.count() > 0) return 'leader';
    return this.joined ? 'standby' : 'starting';
  }

  get metricsPort(): number | null {
    return this.http?.port ?? null;
  }

  get registry() {
    return this.metrics.registry;
  }

  /**
   * Graceful stop within `shutdown.timeout`: leaves the membership, then hands every led partition over
   * (drain, commit, release the lease, so the others take over at once); idempotent. Every step has a
   * deadline, also while Redis is unreachable (commands would wait in ioredis' queue forever): the drain
   * gets `shutdown.timeout`, releasing and closing get what is left of it, at least {@link HANDOVER_MIN_MS}.
   */
  stop(): Promise<{ clean: boolean }> {
    if (this.stopped === null) {
      this.stopped = (async () => {
        const deadline = Date.now() + this.config.shutdown.timeout;
        const left = () => Math.max(0, deadline - Date.now());
        this.startAbort.abort();
        for (const r of this.runners) r.close();
        // A start still running may yet start terms: let it finish first.
        const startDone = await withTimeout(this.starting?.catch(() => {}) ?? Promise.resolve(), left());
        await this.coordinator.stop(Math.max(HANDOVER_MIN_MS, left()));
        const results = await Promise.all(this.runners.map((r) => r.handOver('stop', left())));
        const clean = startDone && results.every((r) => r.clean);
        this.stats.stop();
        this.statsRunning = false;
        await closeRedis(this.leaseRedis, Math.max(HANDOVER_MIN_MS, left()));
        if (this.http !== null) await withTimeout(this.http.close(), HANDOVER_MIN_MS);
        this.log.info(
          { clean, ...(await this.stats.summary()) },
          clean ? 'stopped' : 'stopped with uncommitted batches left pending',
        );
        return { clean };
      })();
    }
    return this.stopped;
  }
}

/** After the drain: the least time the lease hand-over and closing get, even past `shutdown.timeout`. */
const HANDOVER_MIN_MS = 500;
