/**
 * Reading RESP2 replies from bytes: {@link RespReader} steps over a whole reply without allocating
 * (resumably, as bytes arrive) and parses one once it is whole. Used by the reader's connection
 * (respConnection.ts, replyAssembler.ts) and by the stream-read code that walks reply bytes in place.
 *
 * Replies: simple string → string, error → {@link ReplyError} (as a value: a transaction's replies may
 * hold some), integer → number, bulk string → Buffer (a view) or null, array → array or null.
 */
export type Reply = null | number | string | Buffer | ReplyError | Reply[];

export class ReplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ReplyError';
  }
}

const CRLF = Buffer.from('\r\n');
/** {@link RespReader.skip}: the bytes ended before the reply did. */
export const INCOMPLETE = Symbol('incomplete');
/** {@link RespReader.skip}: not RESP2. */
export const BAD = Symbol('bad');
/** {@link RespReader.skip}: a bulk string longer than `limit` whose bytes have not all arrived. */
export const LONG = Symbol('long');

/**
 * Reads RESP2 replies from `buf` at `pos`. {@link skip} steps over a whole reply without allocating and
 * can resume: when the bytes end first it keeps its place, so a reply arriving in several chunks is
 * scanned once in all and parsed once, when complete.
 */
export class RespReader {
  /** Items still to step over at each open array level of an unfinished {@link skip}; empty between replies. */
  private readonly open: number[] = [];
  /**
   * Bulk strings longer than this that have not all arrived make {@link skip} stop with LONG, so that
   * the caller can drop their bytes instead of buffering them (replyAssembler.ts).
   */
  limit = Number.POSITIVE_INFINITY;
  /** After LONG: the bulk string's length, and where its bytes start (its `$` is at `pos`). */
  longLength = 0;
  longBody = 0;

  constructor(
    public buf: Buffer,
    public pos = 0,
  ) {}

  /**
   * Steps over one whole reply from `pos`: true (pos after it), BAD, or INCOMPLETE when the bytes end
   * first — pos is then where the next call, with more bytes appended to `buf`, goes on — or LONG (see
   * {@link limit}; pos is then at the bulk string's `$`).
   */
  skip(): true | typeof INCOMPLETE | typeof BAD | typeof LONG {
    const b = this.buf;
    const open = this.open;
    if (open.length === 0) open.push(1);
    while (open.length > 0) {
      const top = open.length - 1;
      if (open[top] === 0) {
        open.pop();
        continue;
      }
      const at = this.pos;
      if (at >= b.length) return INCOMPLETE;
      const type = b[at];
      this.pos = at + 1;
      let n: number | null;
      switch (type) {
        case 0x24: // $ bulk string
          n = this.int();
          if (n !== null && n >= 0) {
            if (this.pos + n + 2 <= b.length) this.pos += n + 2;
            else if (n > this.limit) {
              this.longLength = n;
              this.longBody = this.pos;
              this.pos = at;
              return LONG;
            } else n = null;
          }
          break;
        case 0x2a: // * array
          n = this.int();
          if (n !== null && n > 0) {
            open[top] = (open[top] as number) - 1;
            open.push(n);
            continue;
          }
          break;
        case 0x3a: // : integer
          n = this.int();
          break;
        case 0x2b: // + simple string, - error
        case 0x2d: {
          const end = b.indexOf(CRLF, this.pos);
          n = end < 0 ? null : 0;
          if (end >= 0) this.pos = end + 2;
          break;
        }
        default:
          open.length = 0;
          return BAD;
      }
      if (n === null) {
        this.pos = at; // this item again, once more bytes are here
        return INCOMPLETE;
      }
      open[top] = (open[top] as number) - 1;
    }
    return true;
  }

  /** Parses the whole reply at `pos` (see {@link skip}: call this once it returned true). */
  parse(): Reply {
    const b = this.buf;
    const type = b[this.pos++];
    switch (type) {
      case 0x24: {
        const n = this.int() as number;
        if (n < 0) return null;
        const s = b.subarray(this.pos, this.pos + n);
        this.pos += n + 2;
        return s;
      }
      case 0x2a: {
        const n = this.int() as number;
        if (n < 0) return null;
        const items: Reply[] = new Array(n);
        for (let i = 0; i < n; i++) items[i] = this.parse();
        return items;
      }
      case 0x3a:
        return this.int() as number;
      default: {
        // + simple string, - error
        const end = b.indexOf(CRLF, this.pos);
        const s = b.toString('utf8', this.pos, end);
        this.pos = end + 2;
        return type === 0x2b ? s : new ReplyError(s);
      }
    }
  }

  /** A decimal line (after the type byte), or null when its end has not arrived. */
  int(): number | null {
    const b = this.buf;
    let i = this.pos;
    let neg = false;
    if (b[i] === 0x2d) {
      neg = true;
      i++;
    }
    let n = 0;
    for (; i < b.length; i++) {
      const c = b[i] as number;
      if (c === 0x0d) {
        if (i + 1 >= b.length) return null;
        this.pos = i + 2;
        return neg ? -n : n;
      }
      n = n * 10 + (c - 0x30);
    }
    return null;
  }
}

/**
 * Parses one whole reply handed over by {@link RespConnection.sendRaw}.
 * @throws Error when `bytes` is not exactly one complete reply
 */
export function parseReply(bytes: Buffer): Reply {
  const r = new RespReader(bytes);
  if (r.skip() !== true || r.pos !== bytes.length) throw new Error('not one complete RESP reply');
  r.pos = 0;
  return r.parse();
}
