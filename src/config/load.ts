/**
 * Loads a pipeline file: reads it, parses YAML (JSON is YAML), interpolates `${VAR}` / `${VAR:-default}` in values,
 * validates against the schema and resolves environment-dependent defaults. The only door into the engine:
 * everything behind it trusts a `PipelineConfig`.
 */
import { readFileSync } from 'node:fs';
import { availableParallelism, hostname } from 'node:os';
import { type Document, isPair, isScalar, isSeq, parse, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { ConfigError, type ConfigProblem } from '../errors.js';
import { redisUrlProblem } from '../redis/url.js';
import { logFormatProblem, logLevelProblem } from '../util/log.js';
import { type ParsedConfig, pipelineSchema } from './schema.js';

/** A validated config with every default resolved. */
export type PipelineConfig = Omit<ParsedConfig, 'shards' | 'redis' | 'source' | 'name'> & {
  name: string;
  shards: number;
  redis: ParsedConfig['redis'] & { url: string };
  source: ParsedConfig['source'] & { consumer: string };
  /**
   * The partition this config reads (`partitionConfig`), or the whole input before it is split: the
   * engine of one partition sees `source.stream` = the partition's stream and routes only key groups in
   * `[from, to)` (partition/partitionOf.ts). `stream` is the pipeline's `source.stream` as written.
   */
  partition: { index: number; from: number; to: number; stream: string };
};

const ENV_RE = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;
const WHOLE_REF = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;

/** Replaces `${VAR}` and `${VAR:-default}`; an unset variable without default is a problem, not "". */
export function interpolate(
  text: string,
  env: NodeJS.ProcessEnv,
  problems: ConfigProblem[],
  path = '(env)',
): string {
  return text.replace(ENV_RE, (_m, varName: string, fallback: string | undefined) => {
    const value = env[varName];
    if (value !== undefined && value !== '') return value;
    if (fallback !== undefined) return fallback;
    problems.push({
      path,
      message: `environment variable ${varName} is not set`,
      hint: `set it, or write \${${varName}:-default}`,
    });
    return '';
  });
}

/**
 * Interpolates the string values of a parsed document (never keys, never comments). An unquoted value
 * that is one reference and nothing else takes the type its text has in YAML, so `port: ${PORT:-9464}` is a
 * number while `stream: "${NAME}"` stays a string.
 */
function interpolateDocument(doc: Document, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): void {
  visit(doc, {
    Scalar(key, node, path) {
      if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${')) return;
      const where: PropertyKey[] = [];
      path.forEach((p, i) => {
        const child = path[i + 1] ?? node;
        if (isPair(p) && isScalar(p.key)) where.push(String(p.key.value));
        else if (isSeq(p)) where.push(p.items.indexOf(child as (typeof p.items)[number]));
      });
      const text = interpolate(node.value, env, problems, formatPath(where));
      const whole = WHOLE_REF.test(node.value) && node.type === 'PLAIN';
      node.value = whole ? typedScalar(text) : text;
    },
  });
}

/** A number or boolean when `text` reads as one in YAML (`9464`, `true`); otherwise the text itself. */
function typedScalar(text: string): unknown {
  try {
    const v: unknown = parse(text);
    return typeof v === 'number' || typeof v === 'boolean' ? v : text;
  } catch {
    return text;
  }
}

/** `stages[1].window.size` from zod's path array. */
export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? '(root)' : out;
}

function problemsFrom(error: z.ZodError): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  for (const issue of error.issues) {
    // A stage is a union: report the branch the user meant (the one named by the stage's key).
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      const branches = issue.errors.filter(
        (b) => !b.some((i) => i.code === 'unrecognized_keys' && i.path.length === 0),
      );
      if (branches.length === 1) {
        for (const sub of branches[0] ?? []) {
          out.push({ path: formatPath([...issue.path, ...sub.path]), message: sub.message });
        }
        continue;
      }
      out.push({
        path: formatPath(issue.path),
        message: 'not a known form',
        hint: hintForUnion(issue.path),
      });
      continue;
    }
    const message =
      issue.code === 'unrecognized_keys'
        ? `unknown option(s) ${issue.keys.map((k) => `"${k}"`).join(', ')}`
        : issue.message;
    out.push({ path: formatPath(issue.path), message });
  }
  return out;
}

function hintForUnion(path: ReadonlyArray<PropertyKey>): string {
  const last = path[0];
  if (last === 'stages')
    return 'a stage is one of { filter: {...} }, { map: {...} }, { dedup: {...} }, { rateLimit: {...} }, { order: {...} }, { project: {...} }, { window: {...} }';
  if (last === 'sink') return 'sink is { stream: name } or { type: stdout }';
  return 'see schema/pipeline.schema.json';
}

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  /** Overrides for resolved defaults, e.g. from CLI flags. */
  cpus?: number;
}

/** Parses and validates config text; throws ConfigError listing every problem. */
export function parseConfig(text: string, source = '(inline)', opts: LoadOptions = {}): PipelineConfig {
  const env = opts.env ?? process.env;
  const problems: ConfigProblem[] = [];
  const doc = parseDocument(text, { prettyErrors: true });
  for (const e of doc.errors) {
    problems.push({
      path: `line ${e.linePos?.[0]?.line ?? '?'}`,
      message: e.message.split('\n')[0] ?? e.message,
    });
  }
  if (problems.length > 0) throw new ConfigError(source, problems);
  interpolateDocument(doc, env, problems);
  if (problems.length > 0) throw new ConfigError(source, problems);
  const raw: unknown = doc.toJS();
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(source, [
      { path: '(root)', message: 'expected a mapping of options', hint: 'see config/*.yaml' },
    ]);
  }
  const parsed = pipelineSchema.safeParse(raw);
  const redisRaw = (raw as { redis?: unknown }).redis;
  const fileUrl = typeof redisRaw === 'object' && redisRaw !== null && 'url' in redisRaw;
  const envProblems = environmentProblems(env, fileUrl);
  if (!parsed.success) throw new ConfigError(source, [...problemsFrom(parsed.error), ...envProblems]);
  if (envProblems.length > 0) throw new ConfigError(source, envProblems);
  return resolve(parsed.data, env, opts.cpus ?? availableParallelism());
}

/**
 * What `run` would reject in the environment: `LOG_LEVEL`, `LOG_FORMAT`, and `REDIS_URL` when the file names no URL
 * (the schema checks the file's own). Messages never echo a URL: it may hold a password.
 */
function environmentProblems(env: NodeJS.ProcessEnv, fileUrl: boolean): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const level = logLevelProblem(env.LOG_LEVEL);
  if (level !== null) out.push({ path: 'LOG_LEVEL (environment)', message: level });
  const format = logFormatProblem(env.LOG_FORMAT);
  if (format !== null) out.push({ path: 'LOG_FORMAT (environment)', message: format });
  const fromEnv = env.REDIS_URL;
  if (!fileUrl && fromEnv !== undefined) {
    const url = redisUrlProblem(fromEnv);
    if (url !== null) {
      out.push({
        path: 'redis.url (from REDIS_URL)',
        message: url,
        hint: 'fix REDIS_URL, or set redis.url in the file',
      });
    }
  }
  return out;
}

function resolve(c: ParsedConfig, env: NodeJS.ProcessEnv, cpus: number): PipelineConfig {
  const auto = c.source.partitions > 1 ? 1 : Math.min(16, Math.max(1, cpus - 1), c.keyGroups);
  const shards = c.shards === 'auto' ? auto : c.shards;
  return {
    ...c,
    name: c.name ?? c.source.group,
    shards,
    redis: { ...c.redis, url: c.redis.url ?? env.REDIS_URL ?? 'redis://127.0.0.1:6379' },
    source: { ...c.source, consumer: c.source.consumer ?? env.HOSTNAME ?? hostname() },
    partition: { index: 0, from: 0, to: c.keyGroups, stream: c.source.stream },
  };
}

/** Reads and validates a pipeline file. */
export function loadConfig(file: string, opts: LoadOptions = {}): PipelineConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ path: '(file)', message: `cannot read: ${(e as Error).message}` }]);
  }
  return parseConfig(text, file, opts);
}
