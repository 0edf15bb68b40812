/**
 * The tests file of `streamshard test`: cases of input events and what the pipeline must write for them.
 *
 *   tests:
 *     - name: totals per customer
 *       input:                                    # stream entries, in order
 *         - { key: c1, body: { id: a, ts: 1000, amount: 10 } }   # body encoded as body.encoding says
 *         - { key: c1, fields: { data: "not msgpack" } }         # raw stream fields
 *         - { id: "5-1", fields: { data: "{}" } }                # an explicit entry ID, no key field
 *       results:                                  # optional: exactly these results (any order)
 *         - { key: c1, window_start: 0, count: 1, sum_amount: 10 }
 *       deadLetters:                              # optional: exactly these dead letters (any order)
 *         - { code: E_BAD_BODY, key: c1 }
 *
 * An expected entry names the fields it cares about; the others may be anything. A number matches a
 * decimal string of the same value (`15` matches "15" and "15.0"), anything else matches its text.
 */
import { readFileSync } from 'node:fs';
import { encode } from '@msgpack/msgpack';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { formatPath } from '../../config/load.js';
import type { BodyConfig } from '../../config/schema.js';
import { ConfigError, type ConfigProblem, DeadLetterCode } from '../../errors.js';

const scalar = z.union([z.string(), z.number(), z.boolean()]);

const inputSchema = z
  .object({
    /** Explicit stream entry ID (`<ms>-<seq>`); IDs must increase. @defaultValue `*` */
    id: z
      .string()
      .regex(/^\d+-\d+$/, { message: 'expected a stream ID like 1000-0' })
      .optional(),
    /** The key field's value; absent: the entry has no key field. */
    key: z.string().optional(),
    /** The event body, encoded as the pipeline's body.encoding (flat: one stream field per body field). */
    body: z.record(z.string(), z.unknown()).optional(),
    /** Raw stream fields, added after the key and the body. */
    fields: z.record(z.string(), scalar).optional(),
  })
  .strict()
  .refine((i) => i.key !== undefined || i.body !== undefined || i.fields !== undefined, {
    message: 'an input needs a key, a body or fields',
  });

const deadLetterSchema = z
  .object({
    code: z.enum(Object.values(DeadLetterCode) as [string, ...string[]]),
    /** The key field's value. */
    key: z.string().optional(),
    /** Text the message must contain. */
    message: z.string().optional(),
    /** Fields of the original entry the dead letter carries. */
    fields: z.record(z.string(), scalar).optional(),
  })
  .strict();

const caseSchema = z
  .object({
    name: z.string().min(1),
    input: z.array(inputSchema).min(1, { message: 'needs at least one input' }),
    results: z.array(z.record(z.string(), scalar)).optional(),
    deadLetters: z.array(deadLetterSchema).optional(),
  })
  .strict();

const fileSchema = z
  .object({ tests: z.array(caseSchema).min(1, { message: 'needs at least one test' }) })
  .strict();

export type TestCase = z.output<typeof caseSchema>;
export type TestInput = z.output<typeof inputSchema>;
export type ExpectedDeadLetter = z.output<typeof deadLetterSchema>;
export type Scalar = z.output<typeof scalar>;

/** Reads and checks a tests file. @throws ConfigError listing every problem by its path */
export function loadTests(file: string): TestCase[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ path: '(file)', message: `cannot read: ${(e as Error).message}` }]);
  }
  const doc = parseDocument(text, { prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      file,
      doc.errors.map((e) => ({
        path: `line ${e.linePos?.[0]?.line ?? '?'}`,
        message: e.message.split('\n')[0] ?? '',
      })),
    );
  }
  const parsed = fileSchema.safeParse(doc.toJS());
  if (!parsed.success) {
    const problems: ConfigProblem[] = parsed.error.issues.map((i) => ({
      path: formatPath(i.path),
      message:
        i.code === 'unrecognized_keys'
          ? `unknown option(s) ${i.keys.map((k) => `"${k}"`).join(', ')}`
          : i.message,
    }));
    throw new ConfigError(file, problems);
  }
  const names = new Set<string>();
  const problems: ConfigProblem[] = [];
  parsed.data.tests.forEach((t, i) => {
    if (names.has(t.name)) problems.push({ path: `tests[${i}].name`, message: `"${t.name}" is used twice` });
    names.add(t.name);
  });
  if (problems.length > 0) throw new ConfigError(file, problems);
  return parsed.data.tests;
}

const text = (v: unknown): string =>
  typeof v === 'string' ? v : typeof v === 'object' ? JSON.stringify(v) : String(v);

/** The stream fields of an input: key, then the body as the pipeline expects it, then raw fields. */
export function inputFields(input: TestInput, keyField: string, body: BodyConfig): Array<string | Buffer> {
  const out: Array<string | Buffer> = [];
  if (input.key !== undefined) out.push(keyField, input.key);
  if (input.body !== undefined) {
    if (body.encoding === 'flat') for (const [k, v] of Object.entries(input.body)) out.push(k, text(v));
    else if (body.encoding === 'json') out.push(body.field, JSON.stringify(input.body));
    else {
      const u8 = encode(input.body);
      out.push(body.field, Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength));
    }
  }
  for (const [k, v] of Object.entries(input.fields ?? {})) out.push(k, text(v));
  return out;
}
