/**
 * A TCP proxy in front of a Redis, for outage tests that must not stop the shared test server: `down()`
 * closes the listening port and every connection through it (clients see ECONNREFUSED), `up()` listens on
 * the same port again.
 */
import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

export interface TcpProxy {
  port: number;
  /** `redis://127.0.0.1:<port>`. */
  url: string;
  up(): Promise<void>;
  down(): Promise<void>;
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** A proxy to `targetPort` on 127.0.0.1; starts down when `startDown`. */
export async function tcpProxy(targetPort: number, opts: { startDown?: boolean } = {}): Promise<TcpProxy> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | null = null;
  const track = (s: Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  };
  const up = () =>
    new Promise<void>((resolve, reject) => {
      if (server !== null) return resolve();
      const srv = createServer((client) => {
        const upstream = tcpConnect({ host: '127.0.0.1', port: targetPort });
        track(client);
        track(upstream);
        client.pipe(upstream);
        upstream.pipe(client);
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        client.on('close', () => upstream.destroy());
        upstream.on('close', () => client.destroy());
      });
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        server = srv;
        resolve();
      });
    });
  const down = () =>
    new Promise<void>((resolve) => {
      const srv = server;
      server = null;
      for (const s of sockets) s.destroy();
      if (srv === null) return resolve();
      srv.close(() => resolve());
    });
  if (!opts.startDown) await up();
  return { port, url: `redis://127.0.0.1:${port}`, up, down };
}
