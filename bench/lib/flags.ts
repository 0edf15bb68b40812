/**
 * Command-line flags for the bench scripts: `--events 200000`, `--events=200000`, `--no-latency`. Every flag
 * can also come from the environment as `BENCH_<NAME>` (`BENCH_EVENTS=200000`); a flag wins over the
 * variable. The defaults object gives each flag its type.
 */

type Value = number | string | boolean;

const kebab = (camel: string): string => camel.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const envName = (camel: string): string => `BENCH_${kebab(camel).replaceAll('-', '_').toUpperCase()}`;

function coerce(name: string, raw: string, like: Value): Value {
  if (typeof like === 'number') {
    const n = Number(raw.replaceAll('_', ''));
    if (!Number.isFinite(n)) throw new Error(`--${kebab(name)}: expected a number, got "${raw}"`);
    return n;
  }
  if (typeof like === 'boolean') {
    if (raw === 'true' || raw === '1' || raw === '') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new Error(`--${kebab(name)}: expected true or false, got "${raw}"`);
  }
  return raw;
}

/**
 * Parses `argv` against `defaults`; prints `usage` and exits 0 on `--help`, exits 2 on an unknown flag or a
 * bad value.
 */
export function parseFlags<T extends Record<string, Value>>(argv: string[], defaults: T, usage: string): T {
  const out: Record<string, Value> = { ...defaults };
  try {
    for (const name of Object.keys(defaults)) {
      const env = process.env[envName(name)];
      if (env !== undefined && env !== '') out[name] = coerce(name, env, defaults[name] as Value);
    }
    for (let i = 0; i < argv.length; i++) {
      const arg = argv[i] as string;
      if (arg === '--help' || arg === '-h') {
        process.stdout.write(`${usage}\n`);
        process.exit(0);
      }
      const m = /^--(no-)?([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
      const name = m ? (m[2] as string).replace(/-([a-z0-9])/g, (_s, c: string) => c.toUpperCase()) : '';
      if (!m || !(name in defaults)) throw new Error(`unknown argument "${arg}" (try --help)`);
      const like = defaults[name] as Value;
      if (m[1] !== undefined) {
        if (typeof like !== 'boolean') throw new Error(`--no-${m[2]} only applies to on/off flags`);
        out[name] = false;
      } else if (m[3] !== undefined) out[name] = coerce(name, m[3], like);
      else if (typeof like === 'boolean') out[name] = true;
      else {
        const next = argv[++i];
        if (next === undefined) throw new Error(`--${m[2]} needs a value`);
        out[name] = coerce(name, next, like);
      }
    }
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n\n${usage}\n`);
    process.exit(2);
  }
  return out as T;
}
