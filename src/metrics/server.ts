/**
 * The HTTP endpoint Prometheus and the orchestrator talk to:
 *   GET /metrics  Prometheus text format
 *   GET /healthz  200 while the process is alive and its event loop answers
 *   GET /readyz   200 on a leader — an instance leading at least one partition (with one partition: the
 *                 instance holding the pipeline lease) — when for every partition it leads Redis is
 *                 connected, the group exists and every shard worker is up; 503 otherwise — a standby
 *                 (leading none) answers 503 with `"role":"standby"` — with the role and the checks in
 *                 the JSON body
 *   GET /readyz?standby=ok
 *                 the same, except that a standby whose checks pass (its Redis connection) answers 200:
 *                 "this instance does its job", for orchestrators that run leader and standbys as one
 *                 set of replicas (a Kubernetes readiness probe; see deploy/k8s)
 *   GET /            the status page (status/page.html: static HTML, inline CSS and script)
 *   GET /api/status  the JSON the page polls (status/statusReport.ts)
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { statusPage } from './status/page.js';

export type ReadinessCheck = () => { role: string; checks: Record<string, boolean> };

/** The status page's JSON (status/statusReport.ts). */
export type StatusSource = () => Promise<unknown>;

export interface HttpEndpoint {
  port: number;
  close(): Promise<void>;
}

export async function startHttp(
  registry: Registry,
  ready: ReadinessCheck,
  host: string,
  port: number,
  status?: StatusSource,
): Promise<HttpEndpoint> {
  const server: Server = createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' }).end('bad request target\n');
      return;
    }
    const path = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      registry.metrics().then(
        (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
        (e: Error) =>
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${e.message}\n`),
      );
    } else if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
    } else if (path === '/readyz') {
      const { role, checks } = ready();
      const acceptedRole =
        role === 'leader' || (role === 'standby' && url.searchParams.get('standby') === 'ok');
      const ok = acceptedRole && Object.values(checks).every(Boolean);
      res
        .writeHead(ok ? 200 : 503, { 'content-type': 'application/json' })
        .end(`${JSON.stringify({ status: ok ? 'ready' : 'not ready', role, checks })}\n`);
    } else if (path === '/' && status !== undefined) {
      let page: ReturnType<typeof statusPage>;
      try {
        page = statusPage();
      } catch (e) {
        res
          .writeHead(500, { 'content-type': 'text/plain' })
          .end(`status page missing: ${(e as Error).message}\n`);
        return;
      }
      res.writeHead(200, page.headers).end(page.body);
    } else if (path === '/api/status' && status !== undefined) {
      status().then(
        (body) =>
          res
            .writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
            .end(`${JSON.stringify(body)}\n`),
        (e: Error) =>
          res.writeHead(500, { 'content-type': 'text/plain' }).end(`status failed: ${e.message}\n`),
      );
    } else {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end(`not found: try /metrics, /healthz, /readyz${status ? ', /, /api/status' : ''}\n`);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
