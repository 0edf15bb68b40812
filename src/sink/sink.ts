/**
 * The `stdout` sink: prints results as JSON lines on the main thread before the batch's commit
 * (at-least-once: a crash between the two prints them again). For trying pipelines out. A `stream` sink
 * needs nothing here: its XADDs are part of the commit built in the worker (commit/commitBuilder.ts).
 */
export function printRecords(records: string[][]): void {
  let text = '';
  for (const r of records) {
    const o: Record<string, string> = {};
    for (let i = 0; i + 1 < r.length; i += 2) o[r[i] as string] = r[i + 1] as string;
    text += `${JSON.stringify(o)}\n`;
  }
  if (text !== '') process.stdout.write(text);
}
