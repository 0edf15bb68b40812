/**
 * The public API of the `streamshard` package. Everything else under `src/` is internal and may change
 * in any release; the command line (`streamshard run|validate|reset|…`) is the other public surface.
 *
 *   import { Pipeline, loadConfig } from 'streamshard';
 *   const p = Pipeline.fromFile('pipeline.yaml');
 *   await p.start();            // leader or standby; serves /metrics, /healthz, /readyz
 *   await p.failed;             // rejects if the pipeline fails; SIGTERM handling is the caller's
 *   await p.stop();             // drain, commit, hand the lease over
 */
export { Pipeline, type PipelineOptions, type Role } from './pipeline/pipeline.js';
export { loadConfig, parseConfig, type LoadOptions, type PipelineConfig } from './config/load.js';
export {
  CommitRefusedError,
  ConfigError,
  type ConfigProblem,
  DeadLetterCode,
  FencedError,
  LeaseLostError,
  StaleStateError,
  StateLostError,
  StreamshardError,
} from './errors.js';
/**
 * The partition function (docs/partitions.md), for producers written in Node: `partitionOf(key,
 * keyGroups, partitions)` and the stream key of a partition, `partitionStream(template, stream, p, P)`.
 */
export { DEFAULT_PARTITION_TEMPLATE, partitionOf, partitionStream } from './partition/partitionOf.js';
