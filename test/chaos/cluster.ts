/**
 * The processes of one pipeline during a chaos run: a leader, sometimes a standby, each a `streamshard run`
 * child with its own consumer name. Every exit the harness did not cause is recorded as a failure with
 * the process's last stderr lines.
 */
import { join } from 'node:path';
import { httpGet, type PipelineProcess, spawnPipeline } from '../helpers/pipeline.js';
import { type ChaosNames, type PipelineKind, pipelineYaml, type TemplateOptions } from './configs.js';

/** Log messages that say which role an instance has (see the lease design in the module comment). */
export const LEADER_MSG = 'ready';
export const STANDBY_MSG = 'standby';

export interface Instance {
  consumer: string;
  /** Serial number within the pipeline, for log file names. */
  serial: number;
  proc: PipelineProcess;
  /** Set before the harness kills or stops it: its exit is then expected. */
  expectedExit: boolean;
  startedAt: number;
}

export interface Failure {
  /** Seconds since the start of the run. */
  at: number;
  what: string;
  pipeline?: PipelineKind;
  consumer?: string;
  pid?: number;
  detail?: string;
  stderrTail?: string[];
}

export class PipelineCluster {
  leader: Instance | null = null;
  standby: Instance | null = null;
  private serial = 0;
  /** Every instance ever started, for the report. */
  readonly started: Array<{ consumer: string; pid: number; serial: number }> = [];

  constructor(
    readonly kind: PipelineKind,
    private readonly names: ChaosNames,
    private readonly template: TemplateOptions,
    private readonly env: Record<string, string>,
    private readonly logDir: string,
    private readonly fail: (f: Omit<Failure, 'at'>) => void,
  ) {}

  /** The consumer names instances use, in turn. */
  static readonly CONSUMERS = ['a', 'b', 'c'] as const;

  consumerName(suffix: string): string {
    return `${this.kind}-${suffix}`;
  }

  yaml(consumer: string): string {
    return pipelineYaml(this.kind, this.names, consumer, this.template);
  }

  /** Starts an instance (leader or standby is its own business) and watches its exit. */
  spawn(consumer: string): Instance {
    const serial = ++this.serial;
    const proc = spawnPipeline(this.yaml(consumer), {
      env: this.env,
      logFile: join(this.logDir, `${this.kind}-${String(serial).padStart(3, '0')}-${consumer}.log`),
    });
    const inst: Instance = { consumer, serial, proc, expectedExit: false, startedAt: Date.now() };
    this.started.push({ consumer, pid: proc.pid, serial });
    void proc.exited.then(({ code, signal }) => {
      if (inst.expectedExit) return;
      this.fail({
        what: 'unexpected exit',
        pipeline: this.kind,
        consumer,
        pid: proc.pid,
        detail: `exited with ${signal ?? `code ${code}`} (${this.leader === inst ? 'the leader' : this.standby === inst ? 'a standby' : 'an instance'})`,
        stderrTail: proc.logs().slice(-30),
      });
      if (this.leader === inst) this.leader = null;
      if (this.standby === inst) this.standby = null;
    });
    return inst;
  }

  /** kill -9, expected. */
  async kill9(inst: Instance): Promise<void> {
    inst.expectedExit = true;
    await inst.proc.kill9();
    if (this.leader === inst) this.leader = null;
    if (this.standby === inst) this.standby = null;
  }

  /**
   * Starts `consumer` and waits until it leads (logs "ready"). With a lease it may first log "standby"
   * while a dead predecessor's lease runs out. On a timeout the instance is killed and the failure is
   * recorded; returns null then.
   */
  async startLeader(
    consumer: string,
    timeoutMs: number,
  ): Promise<{ inst: Instance; readyMs: number } | null> {
    const t0 = Date.now();
    const inst = this.spawn(consumer);
    try {
      await inst.proc.waitForMsg([LEADER_MSG], timeoutMs);
    } catch (e) {
      if (!inst.expectedExit && inst.proc.running()) {
        this.fail({
          what: 'did not become leader',
          pipeline: this.kind,
          consumer,
          pid: inst.proc.pid,
          detail: (e as Error).message,
          stderrTail: inst.proc.logs().slice(-30),
        });
        await this.kill9(inst);
      }
      return null;
    }
    this.leader = inst;
    return { inst, readyMs: Date.now() - t0 };
  }

  /** Makes sure a leader runs (after an unexpected exit, say): restarts the last leader's consumer. */
  async ensureLeader(fallbackConsumer: string, timeoutMs: number): Promise<boolean> {
    if (this.leader?.proc.running()) return true;
    if (this.standby?.proc.running()) {
      // a standby takes over by itself once the lease lapses
      const s = this.standby;
      try {
        await s.proc.waitForMsg([LEADER_MSG], timeoutMs, 0);
        this.leader = s;
        this.standby = null;
        return true;
      } catch {
        // fall through: start another one
      }
    }
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await this.startLeader(fallbackConsumer, timeoutMs)) return true;
    }
    return false;
  }

  /** The instance's own view (GET /readyz): `leader`, `standby`, …, or `down` when it does not answer. */
  static async roleOf(inst: Instance): Promise<{ role: string; status: number | null }> {
    const port = inst.proc.metricsPort();
    if (port === undefined || !inst.proc.running()) return { role: 'down', status: null };
    try {
      const r = await httpGet(port, '/readyz');
      const role = (JSON.parse(r.body) as { role?: unknown }).role;
      return {
        role: typeof role === 'string' ? role : r.status === 200 ? 'leader' : 'unknown',
        status: r.status,
      };
    } catch {
      return { role: 'down', status: null };
    }
  }

  /** Every instance still running. */
  running(): Instance[] {
    return [this.leader, this.standby].filter((i): i is Instance => i !== null && i.proc.running());
  }

  /** SIGTERM every running instance; a non-zero exit code is a failure. */
  async stopAll(timeoutMs: number): Promise<void> {
    await Promise.all(
      this.running().map(async (inst) => {
        inst.expectedExit = true;
        try {
          const code = await inst.proc.stop('SIGTERM', timeoutMs);
          if (code !== 0) {
            this.fail({
              what: 'non-zero exit after SIGTERM',
              pipeline: this.kind,
              consumer: inst.consumer,
              pid: inst.proc.pid,
              detail: `exit code ${code}`,
              stderrTail: inst.proc.logs().slice(-30),
            });
          }
        } catch (e) {
          this.fail({
            what: 'no exit after SIGTERM',
            pipeline: this.kind,
            consumer: inst.consumer,
            pid: inst.proc.pid,
            detail: (e as Error).message,
            stderrTail: inst.proc.logs().slice(-30),
          });
        }
      }),
    );
    this.leader = null;
    this.standby = null;
  }
}
