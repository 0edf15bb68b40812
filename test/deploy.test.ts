/**
 * The files of deploy/ that no engine runs here:
 * - compose.yaml through `docker compose config` (or docker-compose 1.x): it parses, has the services,
 *   Redis with AOF, and every file it mounts exists;
 * - the Kubernetes manifests: every YAML parses and has the fields its kind requires, the objects agree
 *   with each other (labels and selectors, ports, the ConfigMap's pipeline file, which must validate,
 *   and its shutdown.timeout against terminationGracePeriodSeconds), and the probe paths answer as the
 *   comments say on a real leader and a real standby;
 * - the Grafana dashboard and its provisioning: panels laid out without overlap, the topics there.
 * (No Kubernetes schema validator is installable here offline; see docs/deployment.md.)
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { parseConfig } from '../src/config/load.js';
import { httpGet, pipelineConfig, ROOT, startPipeline, testNames, useTestHooks } from './helpers/pipeline.js';

useTestHooks();

const DEPLOY = join(ROOT, 'deploy');
const K8S = join(DEPLOY, 'k8s');

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (typeof v === 'object' && v !== null ? (v as Obj) : {});
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

function run(cmd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ code, stdout, stderr });
    });
  });
}

/** `docker compose`, else `docker-compose`; null when neither answers. */
async function composeCommand(): Promise<string[] | null> {
  if ((await run('docker', ['compose', 'version'])).code === 0) return ['docker', 'compose'];
  if ((await run('docker-compose', ['version'])).code === 0) return ['docker-compose'];
  return null;
}

const hasDocker = (process.env.PATH ?? '')
  .split(delimiter)
  .some((dir) => dir !== '' && existsSync(join(dir, 'docker')));

describe('deploy/compose.yaml', () => {
  if (!hasDocker) console.warn('deploy/compose.yaml: `docker compose config` skipped, no docker binary here');

  it.skipIf(!hasDocker)(
    'parses with docker compose config, with every service and mounted file',
    async () => {
      const compose = await composeCommand();
      if (compose === null) {
        throw new Error(
          'docker is installed but neither `docker compose` nor `docker-compose` works: install the compose ' +
            "plugin, or Debian's docker-compose (.ci/run does)",
        );
      }
      const [cmd, ...pre] = compose as [string, ...string[]];
      const file = join(DEPLOY, 'compose.yaml');
      const r = await run(cmd, [...pre, '-f', file, '--profile', 'load', 'config']);
      expect(r.code, r.stderr).toBe(0);
      const config = parseYaml(r.stdout) as { services: Record<string, Obj> };
      expect(Object.keys(config.services).sort()).toEqual([
        'grafana',
        'producer',
        'prometheus',
        'redis',
        'streamshard',
      ]);

      const redisCommand = arr(config.services.redis?.command).join(' ');
      expect(redisCommand).toContain('--appendonly yes');
      const build = obj(config.services.streamshard?.build);
      expect(existsSync(join(String(build.context), 'Dockerfile'))).toBe(true);

      // every bind mount's source exists (compose prints them absolute: "src:dst:mode" or { source })
      const sources = Object.values(config.services).flatMap((s) =>
        arr(s.volumes).map((v) => (typeof v === 'string' ? v.split(':')[0] : String(obj(v).source))),
      );
      const binds = sources.filter((s): s is string => s !== undefined && isAbsolute(s));
      expect(binds.length).toBeGreaterThanOrEqual(4);
      for (const source of binds) expect(existsSync(source), source).toBe(true);
    },
  );

  it('mounts the files that Prometheus and Grafana expect where they expect them', () => {
    const compose = parseYaml(readFileSync(join(DEPLOY, 'compose.yaml'), 'utf8')) as {
      services: Record<string, { volumes?: string[]; command?: string[]; environment?: Obj }>;
    };
    const mounts = (service: string) =>
      new Map(
        (compose.services[service]?.volumes ?? []).map((v) => {
          const [src, dst] = v.split(':') as [string, string];
          return [dst, src.startsWith('.') ? resolve(DEPLOY, src) : src] as const;
        }),
      );
    const prom = mounts('prometheus');
    expect(prom.get('/etc/prometheus')).toBe(join(DEPLOY, 'prometheus'));
    expect(compose.services.prometheus?.command).toContain('--config.file=/etc/prometheus/prometheus.yml');
    const grafana = mounts('grafana');
    const provisioning = grafana.get('/etc/grafana/provisioning') as string;
    const providers = parseYaml(readFileSync(join(provisioning, 'dashboards/streamshard.yaml'), 'utf8')) as {
      providers: Array<{ options: { path: string } }>;
    };
    const dashboardDir = providers.providers[0]?.options.path as string;
    expect(grafana.get(`${dashboardDir}/streamshard.json`)).toBe(join(DEPLOY, 'grafana/streamshard.json'));
    const datasources = parseYaml(
      readFileSync(join(provisioning, 'datasources/prometheus.yaml'), 'utf8'),
    ) as {
      datasources: Array<{ type: string; url: string }>;
    };
    expect(datasources.datasources).toMatchObject([{ type: 'prometheus', url: 'http://prometheus:9090' }]);
    const pipeline = mounts('streamshard').get('/config/pipeline.yaml') as string;
    const env = compose.services.streamshard?.environment as Record<string, string>;
    const config = parseConfig(readFileSync(pipeline, 'utf8'), pipeline, { env });
    expect(config.metrics.port).toBe(9464);
    expect(config.redis.url).toBe('redis://redis:6379');
  });
});

/** Every object of every YAML file under deploy/k8s, with the file it came from. */
function manifests(): Array<{ file: string; doc: Obj }> {
  return readdirSync(K8S)
    .filter((f) => /\.ya?ml$/.test(f))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map((d) => {
        expect(d.errors, file).toEqual([]);
        return { file, doc: obj(d.toJS()) };
      }),
    );
}

function one(kind: string): Obj {
  const found = manifests().filter((m) => m.doc.kind === kind);
  expect(found, kind).toHaveLength(1);
  return (found[0] as { doc: Obj }).doc;
}

describe('deploy/k8s', () => {
  const REQUIRED: Record<string, { apiVersion: string; spec: string[] }> = {
    ConfigMap: { apiVersion: 'v1', spec: [] },
    Deployment: { apiVersion: 'apps/v1', spec: ['selector', 'template'] },
    PodDisruptionBudget: { apiVersion: 'policy/v1', spec: ['selector'] },
    Service: { apiVersion: 'v1', spec: ['selector', 'ports'] },
  };

  it('every manifest parses and has the fields its kind requires; kustomization lists them all', () => {
    const all = manifests();
    const kinds = all.map((m) => String(m.doc.kind)).sort();
    expect(kinds).toEqual(['ConfigMap', 'Deployment', 'Kustomization', 'PodDisruptionBudget', 'Service']);
    for (const { file, doc } of all) {
      if (doc.kind === 'Kustomization') continue;
      const want = REQUIRED[String(doc.kind)] as { apiVersion: string; spec: string[] };
      expect(doc.apiVersion, file).toBe(want.apiVersion);
      expect(obj(doc.metadata).name, file).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      for (const field of want.spec) expect(obj(doc.spec)[field], `${file}: spec.${field}`).toBeDefined();
    }
    const kustomization = all.find((m) => m.doc.kind === 'Kustomization')?.doc ?? {};
    const listed = arr(kustomization.resources).map(String).sort();
    expect(listed).toEqual(
      all
        .filter((m) => m.doc.kind !== 'Kustomization')
        .map((m) => m.file)
        .sort(),
    );
  });

  it('selectors, ports, probes, the pipeline file and the grace period agree', () => {
    const deployment = one('Deployment');
    const spec = obj(deployment.spec);
    const template = obj(spec.template);
    const podLabels = obj(obj(template.metadata).labels);
    const selector = obj(obj(spec.selector).matchLabels);
    expect(podLabels).toMatchObject(selector);
    expect(obj(obj(one('PodDisruptionBudget').spec).selector)).toEqual({ matchLabels: selector });
    expect(obj(obj(one('PodDisruptionBudget').spec).minAvailable)).toBeDefined();
    expect(Number(spec.replicas)).toBeGreaterThan(Number(obj(one('PodDisruptionBudget').spec).minAvailable));
    const service = obj(one('Service').spec);
    expect(podLabels).toMatchObject(obj(service.selector));

    const podSpec = obj(template.spec);
    const containers = arr(podSpec.containers).map(obj);
    expect(containers).toHaveLength(1);
    const c = containers[0] as Obj;
    const ports = arr(c.ports).map(obj);
    const metricsPort = ports.find((p) => p.name === 'metrics');
    expect(metricsPort?.protocol ?? 'TCP').toBe('TCP');
    expect(arr(service.ports).map(obj)).toMatchObject([
      { targetPort: 'metrics', port: metricsPort?.containerPort },
    ]);
    expect(obj(obj(template.metadata).annotations)['prometheus.io/port']).toBe(
      String(metricsPort?.containerPort),
    );
    expect(obj(c.livenessProbe).httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    expect(obj(c.readinessProbe).httpGet).toEqual({ path: '/readyz?standby=ok', port: 'metrics' });

    // the ConfigMap's pipeline is what the container runs, and it validates
    const configMap = one('ConfigMap');
    const args = arr(c.args).map(String);
    const file = args[args.indexOf('-c') + 1] as string;
    const mount = arr(c.volumeMounts)
      .map(obj)
      .find((m) => String(m.mountPath) === dirname(file));
    const volume = arr(podSpec.volumes)
      .map(obj)
      .find((v) => v.name === mount?.name);
    expect(obj(volume?.configMap).name).toBe(obj(configMap.metadata).name);
    const text = obj(configMap.data)[file.slice(dirname(file).length + 1)];
    expect(typeof text).toBe('string');
    const env = Object.fromEntries(arr(c.env).map((e) => [String(obj(e).name), String(obj(e).value)]));
    const pipeline = parseConfig(text as string, 'ConfigMap', { env });
    expect(pipeline.metrics.port).toBe(metricsPort?.containerPort);
    expect(Number(podSpec.terminationGracePeriodSeconds) * 1000).toBeGreaterThan(pipeline.shutdown.timeout);
  });

  it("the Deployment's probe paths answer 200 on a real leader and a real standby", async () => {
    const c = obj(arr(obj(obj(obj(one('Deployment').spec).template).spec).containers)[0]);
    const liveness = String(obj(obj(c.livenessProbe).httpGet).path);
    const readiness = String(obj(obj(c.readinessProbe).httpGet).path);
    const n = testNames('probes');
    const config = (consumer: string) =>
      pipelineConfig(n, { shards: 1, extra: { source: { ...sourceOf(n), consumer } } });
    const leader = await startPipeline(config('a'));
    const standby = await startPipeline(config('b'), {}, 30_000, 'standby');
    for (const p of [leader, standby]) {
      expect((await httpGet(p.metricsPort, liveness)).status).toBe(200);
      expect((await httpGet(p.metricsPort, readiness)).status).toBe(200);
    }
    expect(JSON.parse((await httpGet(standby.metricsPort, readiness)).body)).toMatchObject({
      status: 'ready',
      role: 'standby',
    });
    // plain /readyz still tells which one processes
    expect((await httpGet(leader.metricsPort, '/readyz')).status).toBe(200);
    expect((await httpGet(standby.metricsPort, '/readyz')).status).toBe(503);
    expect(await standby.stop()).toBe(0);
    expect(await leader.stop()).toBe(0);
  });
});

function sourceOf(n: ReturnType<typeof testNames>): Obj {
  return obj((JSON.parse(pipelineConfig(n)) as Obj).source);
}

describe('deploy/grafana/streamshard.json', () => {
  type Panel = {
    id: number;
    type: string;
    title: string;
    gridPos: { x: number; y: number; w: number; h: number };
  };
  const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana/streamshard.json'), 'utf8')) as {
    uid: string;
    panels: Array<Panel & { targets?: Array<{ expr: string; datasource: { uid: string } }> }>;
  };

  it('has unique ids, panels inside 24 columns that do not overlap, targets on the datasource variable', () => {
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const p of dashboard.panels) {
      const { x, y, w, h } = p.gridPos;
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      if (p.type === 'row') continue;
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets ?? []) expect(t.datasource.uid).toBe('${datasource}');
    }
  });

  it('covers throughput, lag, latency, stream time, dead letters, shard utilisation and commit latency', () => {
    const titles = dashboard.panels.map((p) => p.title);
    for (const topic of [
      'Throughput',
      'Lag',
      'End-to-end latency',
      'Stream time',
      'Dead letters by code',
      'Shard utilisation',
      'Commit latency',
    ]) {
      expect(titles, topic).toContain(topic);
    }
  });
});

describe('Dockerfile', () => {
  it("labels the image with the package's version by default", () => {
    const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(/^ARG VERSION=(\S+)$/m.exec(dockerfile)?.[1]).toBe(pkg.version);
    expect(dockerfile).toContain('org.opencontainers.image.version="${VERSION}"');
  });
});
