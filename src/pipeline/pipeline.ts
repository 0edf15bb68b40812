/**
 * The public facade: validates once at the door (`fromFile` / `fromConfig`), then hands a trusted config
 * to the engine, and serves metrics and health over HTTP.
 */
import { loadConfig, type PipelineConfig } from '../config/load.js';
import { Metrics } from '../metrics/metrics.js';
import { type HttpEndpoint, startHttp } from '../metrics/server.js';
import { createLogger, type Logger } from '../util/log.js';
import { Engine } from './engine.js';

export interface PipelineOptions {
  logger?: Logger;
  /** Serve /metrics, /healthz, /readyz (default true). */
  http?: boolean;
}

export class Pipeline {
  private readonly engine: Engine;
  private readonly metrics: Metrics;
  private readonly log: Logger;
  private http: HttpEndpoint | null = null;
  private stopped: Promise<{ clean: boolean }> | null = null;
  /** Rejects when the engine fails; never resolves otherwise. */
  readonly failed: Promise<never>;

  private constructor(
    readonly config: PipelineConfig,
    private readonly opts: PipelineOptions,
  ) {
    this.log = opts.logger ?? createLogger('streamshard');
    const probe = {
      groupInfo: () => this.engine.groupInfo(),
      inFlight: (s: number) => this.engine.inFlight(s),
      utilization: (s: number) => this.engine.utilization(s),
      redisConnected: () => this.engine.readiness().redis === true,
    };
    this.metrics = new Metrics(config.metrics.prefix, config.shards, probe);
    this.engine = new Engine(config, this.metrics, this.log);
    this.failed = new Promise<never>((_, reject) => {
      this.engine.onFatal = reject;
    });
    this.failed.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection
  }

  static fromFile(file: string, opts: PipelineOptions = {}): Pipeline {
    return new Pipeline(loadConfig(file), opts);
  }

  /** Starts serving HTTP (so /healthz answers during restore), then restores and starts reading. */
  async start(): Promise<void> {
    const c = this.config;
    if (this.opts.http !== false) {
      this.http = await startHttp(
        this.metrics.registry,
        () => this.engine.readiness(),
        c.metrics.host,
        c.metrics.port,
      );
    }
    const t0 = performance.now();
    await this.engine.start();
    this.log.info(
      {
        pipeline: c.name,
        stream: c.source.stream,
        group: c.source.group,
        consumer: c.source.consumer,
        shards: c.shards,
        metricsPort: this.http?.port ?? null,
        startMs: Math.round(performance.now() - t0),
      },
      'ready',
    );
  }

  get metricsPort(): number | null {
    return this.http?.port ?? null;
  }

  get registry() {
    return this.metrics.registry;
  }

  /** Graceful stop within `shutdown.timeout`; idempotent. */
  stop(): Promise<{ clean: boolean }> {
    if (this.stopped === null) {
      this.stopped = (async () => {
        const r = await this.engine.stop(this.config.shutdown.timeout);
        await this.http?.close();
        this.log.info(
          { clean: r.clean },
          r.clean ? 'stopped' : 'stopped with uncommitted batches left pending',
        );
        return r;
      })();
    }
    return this.stopped;
  }
}
