/**
 * A minimal RESP2 connection, for the reader only. Reading is the main thread's hot path: ioredis 6's
 * general reply decoder cost ~5–6 µs of main-thread CPU per stream entry (profiled; about a third of the
 * main thread), while the entries need nothing but byte ranges. This connection parses replies in one tight
 * pass into Buffers that are views of the received bytes (no copy), and does nothing else:
 *
 * - commands are sent at once or fail at once (no offline queue, never re-sent): a read must not go out
 *   later from a queue, since the lease fences it (see source/redisSource.ts);
 * - every command in flight fails when the connection closes (ioredis drops them unsettled), or when no
 *   reply came within `commandTimeoutMs` (then the connection is closed);
 * - it reconnects by itself with capped exponential backoff (50 ms doubling to 2 s), and emits `ready` and
 *   `close` like ioredis, plus `error` with the cause of a failed connection.
 *
 * Replies are read by respReader.ts (types there) from the chunks replyAssembler.ts puts together.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { ReplyAssembler } from './replyAssembler.js';
import { type Reply, ReplyError, type RespReader } from './respReader.js';
import { backoffMs } from '../util/backoff.js';

export { parseReply, type Reply, ReplyError, RespReader } from './respReader.js';

export type Arg = string | Buffer | number;

export interface RespOptions {
  url: string;
  /** CLIENT SETNAME on every connection. */
  name: string;
  connectTimeoutMs: number;
  commandTimeoutMs?: number;
  /** Extra TLS options for `rediss://` (e.g. `ca`); a private CA can also come from NODE_EXTRA_CA_CERTS. */
  tls?: tls.ConnectionOptions;
  /**
   * In replies to {@link RespConnection.sendRaw} (stream reads), a bulk string longer than this is not
   * buffered: its bytes are dropped as they arrive and `$-<length>` stays in its place
   * (replyAssembler.ts). Default: no limit.
   */
  maxRawBulkBytes?: number;
}

interface Pending {
  /** Replies still expected for this send. */
  left: number;
  /** Hand over each reply's RESP bytes instead of parsing them ({@link RespConnection.sendRaw}). */
  raw: boolean;
  replies: Array<Reply | Buffer>;
  resolve: (r: Array<Reply | Buffer>) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

export class RespConnection extends EventEmitter {
  private socket: net.Socket | null = null;
  private ready = false;
  private closing = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | null = null;
  /** Sends awaiting replies, oldest first (a few at a time: the reader waits for each read). */
  private readonly queue: Pending[] = [];
  /** Received bytes → whole replies. */
  readonly replies = new ReplyAssembler();
  private readonly target: URL;

  constructor(private readonly opts: RespOptions) {
    super();
    this.target = new URL(opts.url);
  }

  get status(): 'ready' | 'down' {
    return this.ready ? 'ready' : 'down';
  }

  /** Connects (with the handshake); rejects if the first attempt fails. Later drops reconnect by themselves. */
  connect(): Promise<void> {
    this.closing = false;
    return new Promise((resolve, reject) => {
      const onReady = () => {
        this.off('connect-failed', onFail);
        resolve();
      };
      const onFail = (e: Error) => {
        this.off('ready', onReady);
        this.closing = true; // the caller decides whether to try again
        reject(e);
      };
      this.once('ready', onReady);
      this.once('connect-failed', onFail);
      this.open();
    });
  }

  /** Closes the connection for good; commands in flight fail. */
  disconnect(): void {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.socket?.destroy();
  }

  /** Sends the commands in one write; resolves with one reply per command (errors as ReplyError values). */
  send(commands: Arg[][]): Promise<Reply[]> {
    return this.sendAs(commands, false) as Promise<Reply[]>;
  }

  /**
   * Like {@link send}, but each reply comes as its RESP bytes (a view of the received data), unparsed: for
   * stream reads, whose entries are routed straight from these bytes (source/streamReply.ts). An error
   * reply is not a ReplyError here: see {@link parseReply}.
   */
  sendRaw(commands: Arg[][]): Promise<Buffer[]> {
    return this.sendAs(commands, true) as Promise<Buffer[]>;
  }

  private sendAs(commands: Arg[][], raw: boolean): Promise<Array<Reply | Buffer>> {
    if (!this.ready || this.socket === null) {
      return Promise.reject(new Error('Connection is closed (the reader sends nothing while disconnected).'));
    }
    return this.write(this.socket, commands, raw);
  }

  /** One command; a ReplyError reply rejects. */
  async call(...args: Arg[]): Promise<Reply> {
    const [r] = await this.send([args]);
    if (r instanceof ReplyError) throw r;
    return r as Reply;
  }

  private write(socket: net.Socket, commands: Arg[][], raw = false): Promise<Array<Reply | Buffer>> {
    return new Promise((resolve, reject) => {
      const p: Pending = { left: commands.length, raw, replies: [], resolve, reject, timer: null };
      const t = this.opts.commandTimeoutMs;
      if (t !== undefined) {
        p.timer = setTimeout(() => {
          reject(new Error(`Command timed out (no reply within ${t} ms)`));
          socket.destroy(); // replies would now be matched to the wrong commands
        }, t);
      }
      this.queue.push(p);
      socket.write(encode(commands));
    });
  }

  private open(): void {
    const u = this.target;
    const port = Number(u.port || 6379);
    const host = u.hostname.replace(/^\[|\]$/g, '');
    const socket =
      u.protocol === 'rediss:'
        ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host, ...this.opts.tls })
        : net.connect({ host, port });
    socket.setNoDelay(true);
    this.socket = socket;
    this.replies.reset(); // no half-scanned reply from the old connection
    const timer = setTimeout(
      () =>
        socket.destroy(new Error(`connect timeout (no connection within ${this.opts.connectTimeoutMs} ms)`)),
      this.opts.connectTimeoutMs,
    );
    // rediss:// against a plain server: the server waits for a command line and the TLS handshake for a
    // reply, until the connect timeout. When the handshake is slow, a plain PING on the same port tells.
    const probe =
      u.protocol === 'rediss:'
        ? setTimeout(
            () =>
              void speaksPlainResp(host, port).then((plain) => {
                if (plain && this.socket === socket && !this.ready) socket.destroy(tlsMismatch(host, port));
              }),
            Math.min(TLS_PROBE_AFTER_MS, this.opts.connectTimeoutMs / 4),
          )
        : null;
    socket.once(u.protocol === 'rediss:' ? 'secureConnect' : 'connect', () => {
      clearTimeout(timer);
      if (probe) clearTimeout(probe);
      void this.handshake(socket);
    });
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (e: Error) => {
      this.emit('connect-failed', e);
      if (this.listenerCount('error') > 0) this.emit('error', e);
    });
    socket.on('close', () => {
      clearTimeout(timer);
      if (probe) clearTimeout(probe);
      this.onClose(socket);
    });
  }

  private async handshake(socket: net.Socket): Promise<void> {
    const u = this.target;
    const commands: Arg[][] = [];
    if (u.password) {
      const pass = decodeURIComponent(u.password);
      commands.push(u.username ? ['AUTH', decodeURIComponent(u.username), pass] : ['AUTH', pass]);
    }
    const db = Number(u.pathname.slice(1) || 0);
    if (db !== 0) commands.push(['SELECT', db]);
    commands.push(['CLIENT', 'SETNAME', this.opts.name]);
    try {
      const replies = await this.write(socket, commands);
      const failed = replies.find((r) => r instanceof ReplyError);
      if (failed) throw failed;
    } catch (e) {
      this.emit('connect-failed', e as Error);
      if (this.listenerCount('error') > 0) this.emit('error', e as Error);
      socket.destroy();
      return;
    }
    this.attempts = 0;
    this.ready = true;
    this.emit('ready');
  }

  private onClose(socket: net.Socket): void {
    if (this.socket !== socket) return;
    this.socket = null;
    this.ready = false;
    const failed = this.queue.splice(0);
    for (const p of failed) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new Error('Connection is closed.'));
    }
    this.emit('close');
    if (this.closing) return;
    const delay = backoffMs(this.attempts++);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.closing) this.open();
    }, delay);
  }

  private onData(chunk: Buffer): void {
    this.setBulkLimit();
    this.replies.push(chunk, this.onReply);
  }

  /** Long bulk strings are dropped from raw replies only: the limit follows the oldest send. */
  private setBulkLimit(): void {
    const raw = this.queue[0]?.raw === true;
    this.replies.limit = (raw ? this.opts.maxRawBulkBytes : undefined) ?? Number.POSITIVE_INFINITY;
  }

  /** One whole reply, `r.buf[start, r.pos)`; r is null for bytes that are not RESP. */
  private readonly onReply = (r: RespReader | null, start: number): boolean => {
    if (r === null) {
      this.socket?.destroy(new Error('unexpected RESP type byte'));
      return false;
    }
    const p = this.queue[0];
    if (p === undefined) {
      this.socket?.destroy(new Error('reply without a command'));
      return false;
    }
    if (p.raw) p.replies.push(r.buf.subarray(start, r.pos));
    else {
      const end = r.pos;
      r.pos = start;
      p.replies.push(r.parse());
      r.pos = end;
    }
    if (--p.left === 0) {
      this.queue.shift(); // a settled send must not keep its replies (the entries) alive
      if (p.timer) clearTimeout(p.timer);
      p.resolve(p.replies);
      this.setBulkLimit();
    }
    return true;
  };
}

/** The `name` of the error a `rediss://` connection fails with when the server speaks plain RESP. */
export const TLS_MISMATCH = 'TlsMismatchError';

/** How long a TLS handshake may take before the port is probed for a plain server. */
const TLS_PROBE_AFTER_MS = 1000;

function tlsMismatch(host: string, port: number): Error {
  const e = new Error(
    `the server at ${host}:${port} does not speak TLS (it answered a plain RESP PING); use redis:// ` +
      "for this port, or point rediss:// at the server's TLS port",
  );
  e.name = TLS_MISMATCH;
  return e;
}

/** True when a plain `PING` on host:port gets a RESP reply (`+PONG`, or an error such as `-NOAUTH`). */
function speaksPlainResp(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (plain: boolean) => {
      sock.destroy();
      resolve(plain);
    };
    sock.setTimeout(1000, () => done(false));
    sock.once('error', () => done(false));
    sock.once('connect', () => sock.write('PING\r\n'));
    sock.once('data', (b: Buffer) => done(b[0] === 0x2b || b[0] === 0x2d));
  });
}

/** RESP2 arrays of bulk strings for the commands, in one Buffer. */
export function encode(commands: Arg[][]): Buffer {
  const parts: Buffer[] = [];
  let text = '';
  for (const args of commands) {
    text += `*${args.length}\r\n`;
    for (const a of args) {
      if (Buffer.isBuffer(a)) {
        parts.push(Buffer.from(`${text}$${a.length}\r\n`, 'utf8'), a);
        text = '\r\n';
      } else {
        const s = String(a);
        text += `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
      }
    }
  }
  parts.push(Buffer.from(text, 'utf8'));
  return parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
}
