/**
 * The package's public API (src/index.ts) is what a Node user imports by the package's name: the built
 * entry point resolves through package.json `exports`, and names nothing internal.
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

it("exports exactly the public names from the package's own name", () => {
  // A child process imports the package by name (self-reference through `exports`), as a user would.
  const names = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const m = await import('streamshard'); console.log(Object.keys(m).sort().join(','))",
    ],
    { cwd: ROOT, encoding: 'utf8' },
  ).trim();
  expect(names.split(',')).toEqual([
    'CommitRefusedError',
    'ConfigError',
    'DeadLetterCode',
    'FencedError',
    'LeaseLostError',
    'Pipeline',
    'StaleStateError',
    'StateLostError',
    'StreamshardError',
    'loadConfig',
    'parseConfig',
  ]);
});
