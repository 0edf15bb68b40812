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
    'DEFAULT_PARTITION_TEMPLATE',
    'DeadLetterCode',
    'FencedError',
    'LeaseLostError',
    'Pipeline',
    'StaleStateError',
    'StateLostError',
    'StreamshardError',
    'loadConfig',
    'parseConfig',
    'partitionOf',
    'partitionStream',
  ]);
});

it('partitionOf from the package matches the test vectors in docs/partitions.md', () => {
  const out = execFileSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      "const { partitionOf, partitionStream, DEFAULT_PARTITION_TEMPLATE: t } = await import('streamshard'); console.log(JSON.stringify([partitionOf('order-17', 256, 8), partitionOf('user:42', 256, 3), partitionStream(t, 'orders', 7, 8)]))",
    ],
    { cwd: ROOT, encoding: 'utf8' },
  ).trim();
  expect(JSON.parse(out)).toEqual([5, 1, 'orders:{orders:7}']);
});
