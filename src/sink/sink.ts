/**
 * Where results go. A stream sink adds its writes to the shard batch's atomic commit, so a result exists
 * iff its input is acked. The stdout sink prints before the commit (at-least-once): for trying things out.
 */
import type { OpList } from '../commit/applyOps.js';
import type { PipelineConfig } from '../config/load.js';

export interface Sink {
  /** Appends the writes of results (flat field lists) and pass-through entries to a commit. */
  write(ops: OpList, results: string[][], passThrough: Buffer[][]): void;
}

/** `XADD key [MAXLEN ~ n] * fields…` arguments before the fields. */
export function xaddHead(stream: string, maxLen: number | undefined): Array<string | number> {
  return maxLen === undefined ? [stream, '*'] : [stream, 'MAXLEN', '~', maxLen, '*'];
}

class StreamSink implements Sink {
  private readonly head: Array<string | number>;

  constructor(stream: string, maxLen: number | undefined) {
    this.head = xaddHead(stream, maxLen);
  }

  write(ops: OpList, results: string[][], passThrough: Buffer[][]): void {
    for (const r of results) ops.op('XADD', this.head, r);
    for (const fields of passThrough) ops.op('XADD', this.head, fields);
  }
}

class StdoutSink implements Sink {
  write(_ops: OpList, results: string[][], passThrough: Buffer[][]): void {
    let text = '';
    for (const r of results) text += `${JSON.stringify(toObject(r))}\n`;
    for (const f of passThrough) text += `${JSON.stringify(toObject(f.map((b) => b.toString('utf8'))))}\n`;
    if (text !== '') process.stdout.write(text);
  }
}

function toObject(fields: string[]): Record<string, string> {
  const o: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) o[fields[i] as string] = fields[i + 1] as string;
  return o;
}

export function createSink(config: PipelineConfig): Sink {
  return config.sink.type === 'stdout'
    ? new StdoutSink()
    : new StreamSink(config.sink.stream, config.sink.maxLen);
}
