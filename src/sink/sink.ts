/**
 * The `stdout` sink: prints results as JSON lines on the main thread before the batch's commit
 * (at-least-once: a crash between the two prints them again). For trying pipelines out. A `stream` sink
 * needs nothing here: its XADDs are part of the commit built in the worker (shard/commitBuilder.ts).
 *
 * The worker formats each record (`jsonLine`), the main thread only writes the lines. A value whose bytes
 * are not valid UTF-8 (a key such as `\xff`) cannot be a JSON string without losing bytes — `\xff` and
 * `\xfe` would both print as U+FFFD — so it is printed as `{"hex":"ff"}`: an object never equals a string
 * value, so two keys stay as distinguishable as they are in Redis.
 */
import { isUtf8 } from 'node:buffer';
import type { ByteString } from '../util/bytes.js';

/** ignoreBOM: a leading BOM is part of the value. */
const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/** A record (`[name, value, …]`) as one JSON line; see the module comment for bytes that are not UTF-8. */
export function jsonLine(record: readonly ByteString[]): string {
  const o: Record<string, string | { hex: string }> = {};
  for (let i = 0; i + 1 < record.length; i += 2) {
    const name = record[i] as ByteString;
    // A field name that is not valid UTF-8 (pass-through entries only) is decoded with U+FFFD.
    o[typeof name === 'string' ? name : utf8.decode(name)] = printable(record[i + 1] as ByteString);
  }
  return JSON.stringify(o);
}

/** A value for JSON: its text when it is valid UTF-8, else `{hex}` (see the module comment). */
export function printable(v: ByteString): string | { hex: string } {
  if (typeof v === 'string') return v;
  return isUtf8(v) ? utf8.decode(v) : { hex: Buffer.from(v.buffer, v.byteOffset, v.length).toString('hex') };
}

/** Writes the JSON lines of one batch. */
export function printRecords(lines: string[]): void {
  if (lines.length > 0) process.stdout.write(`${lines.join('\n')}\n`);
}
