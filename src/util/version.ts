/**
 * The package's own version, read once from its package.json: the nearest one above this module whose
 * name is `streamshard`, so it is found from `src/` (tests), `dist/src/` (the build) and `/app/dist/src/`
 * (the image) alike.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | undefined;

/** The `version` of streamshard's package.json; `unknown` when no such file is found. */
export function packageVersion(): string {
  cached ??= findVersion(dirname(fileURLToPath(import.meta.url)));
  return cached;
}

function findVersion(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
        version?: unknown;
      };
      if (pkg.name === 'streamshard' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // no package.json here (or not ours): look further up
    }
    if (dirname(dir) === dir) return 'unknown';
  }
}
