/**
 * Deterministic synthetic order events for the demo, the tests and the benchmarks. The same options
 * (seed included) always give the same entries, byte for byte, so a test can regenerate the input and
 * compute the expected output by brute force.
 *
 * A good event's body:
 * ```
 * { id: "<seed>-<i>", ts: <epoch ms>, seq: <1, 2, 3… per key>, amount: <1..1000>, type: "order" | "refund" }
 * ```
 * where `i` is the entry's position (0-based) in the generated sequence, `ts` is
 * `floor(startTs + i * intervalMs)` and `type` is "order" 90 % of the time.
 */
import { Encoder } from '@msgpack/msgpack';

export interface GeneratorOptions {
  /** Entries to produce in total, duplicates and malformed entries included. */
  count: number;
  /** Distinct keys `k0 … k<keys-1>`, chosen uniformly. */
  keys: number;
  /** PRNG seed (any 32-bit integer); also the prefix of every event ID. */
  seed: number;
  /** Share (0..100) of entries that re-send one of the last ~1000 good events verbatim. */
  duplicatePct: number;
  /** Share (0..100) of entries that are good events with a timestamp moved into the past. */
  outOfOrderPct: number;
  /** Share (0..100) of entries that are malformed (see {@link MalformedKind}). */
  malformedPct: number;
  /**
   * Share (0..100) of entries that are hostile (see {@link HostileKind}): entries a careless processor
   * mishandles — wedges on, loses or lets poison its state. @defaultValue 0
   */
  hostilePct?: number;
  /** Event time of the first entry, epoch ms. */
  startTs: number;
  /** Event time advances by this per entry (may be fractional, e.g. 0.5). */
  intervalMs: number;
  /** An out-of-order event's ts is moved back by 1..this ms. */
  outOfOrderMaxMs: number;
  /** `msgpack`/`json`: the body is one field; `flat`: each body property is its own stream field. */
  encoding: 'msgpack' | 'json' | 'flat';
  /** The stream field holding the key. @defaultValue `key` */
  keyField?: string;
  /** The stream field holding the body (msgpack/json only). @defaultValue `data` */
  bodyField?: string;
}

/**
 * What an entry is meant to be:
 * - `ok`: a good event, in event-time order.
 * - `duplicate`: the exact fields of one of the last ~1000 good events, sent again.
 * - `out-of-order`: a good event whose ts is 1..`outOfOrderMaxMs` ms earlier than its position implies;
 *   it still takes the next `seq` of its key.
 * - `malformed`: an entry a processor must reject; see {@link MalformedKind}.
 * - `hostile`: an entry that tests a processor's edges; see {@link HostileKind}.
 */
export type EventKind = 'ok' | 'duplicate' | 'out-of-order' | 'malformed' | 'hostile';

/** A zero count per {@link EventKind}, for tallies of what was generated. */
export function kindCounts(): Record<EventKind, number> {
  return { ok: 0, duplicate: 0, 'out-of-order': 0, malformed: 0, hostile: 0 };
}

/**
 * How a malformed entry is broken. Malformed entries cycle through these in this order, one each in
 * turn. They carry `seq: 0` and never advance a key's sequence.
 * - `undecodable-body`: msgpack: bytes starting with 0xC1 (a byte msgpack never uses) followed by random
 *   bytes; json: text that is not JSON; flat: the `ts` field is missing.
 * - `missing-key`: the key field is absent.
 * - `missing-ts`: the body has no `ts`.
 * - `bad-ts`: `ts` is the string `"yesterday"`.
 * - `bad-amount`: `amount` is the string `"abc"`.
 * - `empty-key`: the key field is the empty string.
 */
export const MALFORMED_KINDS = [
  'undecodable-body',
  'missing-key',
  'missing-ts',
  'bad-ts',
  'bad-amount',
  'empty-key',
] as const;
export type MalformedKind = (typeof MALFORMED_KINDS)[number];

/**
 * How a hostile entry tests the edges. Hostile entries cycle through these in this order. They never
 * advance a key's sequence and are never repeated as duplicates.
 * - `future-ts`: a good body stamped 2100-01-01 (a producer with a bad clock): dead-lettered
 *   `E_FUTURE_TIME`, it must not move stream time.
 * - `hex-amount`: `amount` is the string `"0x10"`, which is not a decimal number (`E_BAD_FIELD` where
 *   `amount` is aggregated).
 * - `wide-entry`: a good event followed by {@link WIDE_ENTRY_PAIRS} more field pairs `x<n>`: too many
 *   fields for one copy (a pass-through copy or a dead letter: `E_ENTRY_TOO_LARGE`), fine for a window.
 * - `binary-key`: a good event whose key is `0xFF 0xFE` followed by `k<n>`, bytes that are not UTF-8:
 *   a key of its own, which results and checkpoints must keep byte for byte.
 */
export const HOSTILE_KINDS = ['future-ts', 'hex-amount', 'wide-entry', 'binary-key'] as const;
export type HostileKind = (typeof HOSTILE_KINDS)[number];

/**
 * Extra field pairs of a `wide-entry`: 7,004 fields in all, more than a copy in the commit script may carry
 * (5,988), fewer than a Lua script can pass to one XADD (~7,990), so scripts can still write it.
 */
export const WIDE_ENTRY_PAIRS = 3500;

/** Event time of a `future-ts` entry: 2100-01-01T00:00:00Z. */
export const FUTURE_TS = 4_102_444_800_000;

/** One stream entry to XADD. */
export interface GeneratedEvent {
  /**
   * `[keyField, key, bodyField, body]`, or for `flat` `[keyField, key, 'id', …, 'type', …]`. A duplicate
   * shares the array of the event it repeats: treat it as read-only.
   */
  fields: Array<string | Buffer>;
  kind: EventKind;
}

/** Good events remembered as duplicate candidates. */
const DUPLICATE_WINDOW = 1000;

/** mulberry32: a tiny, fast 32-bit PRNG; plenty for test data. Returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function checkOptions(o: GeneratorOptions): void {
  const fail = (msg: string): never => {
    throw new RangeError(`generator: ${msg}`);
  };
  if (!Number.isInteger(o.count) || o.count < 0) fail(`count must be an integer ≥ 0, got ${o.count}`);
  if (!Number.isInteger(o.keys) || o.keys < 1) fail(`keys must be an integer ≥ 1, got ${o.keys}`);
  if (!Number.isInteger(o.seed)) fail(`seed must be an integer, got ${o.seed}`);
  for (const k of ['duplicatePct', 'outOfOrderPct', 'malformedPct', 'hostilePct'] as const) {
    const v = o[k] ?? 0;
    if (!(v >= 0 && v <= 100)) fail(`${k} must be within 0..100, got ${v}`);
  }
  const sum = o.duplicatePct + o.outOfOrderPct + o.malformedPct + (o.hostilePct ?? 0);
  if (sum > 100) fail(`duplicatePct + outOfOrderPct + malformedPct + hostilePct must be ≤ 100, got ${sum}`);
  if (!Number.isFinite(o.startTs)) fail(`startTs must be a finite number, got ${o.startTs}`);
  if (!(o.intervalMs >= 0)) fail(`intervalMs must be ≥ 0, got ${o.intervalMs}`);
  if (o.outOfOrderPct > 0 && !(Number.isInteger(o.outOfOrderMaxMs) && o.outOfOrderMaxMs >= 1)) {
    fail(`outOfOrderMaxMs must be an integer ≥ 1, got ${o.outOfOrderMaxMs}`);
  }
}

type Body = Record<string, string | number>;

/**
 * Yields `opts.count` entries. Each entry's kind is drawn independently: malformed with probability
 * `malformedPct`, duplicate with `duplicatePct` (an `ok` event while no good event exists yet),
 * out-of-order with `outOfOrderPct`, else ok.
 *
 * @throws RangeError on out-of-range options
 */
export function* generateEvents(opts: GeneratorOptions): Generator<GeneratedEvent> {
  checkOptions(opts);
  const keyField = opts.keyField ?? 'key';
  const bodyField = opts.bodyField ?? 'data';
  const rand = mulberry32(opts.seed);
  const seqs = new Uint32Array(opts.keys);
  const recent: Array<Array<string | Buffer>> = [];
  let recentNext = 0;
  let malformedNext = 0;
  const msgpack = new Encoder();

  const encodeBody = (key: string | undefined, body: Body): Array<string | Buffer> => {
    const head = key === undefined ? [] : [keyField, key];
    switch (opts.encoding) {
      case 'msgpack': {
        const u8 = msgpack.encode(body);
        // Wrap, don't copy: Encoder.encode already returns a fresh array.
        return [...head, bodyField, Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength)];
      }
      case 'json':
        return [...head, bodyField, JSON.stringify(body)];
      case 'flat': {
        const out: Array<string | Buffer> = head;
        for (const [name, value] of Object.entries(body)) out.push(name, String(value));
        return out;
      }
    }
  };

  const undecodable = (key: string, body: Body): Array<string | Buffer> => {
    switch (opts.encoding) {
      case 'msgpack': {
        const bytes = Buffer.alloc(8);
        bytes[0] = 0xc1; // "never used" in the msgpack spec: every decoder rejects it
        for (let b = 1; b < bytes.length; b++) bytes[b] = Math.floor(rand() * 256);
        return [keyField, key, bodyField, bytes];
      }
      case 'json':
        return [keyField, key, bodyField, `{not json ${Math.floor(rand() * 0xffffffff).toString(16)}`];
      case 'flat': {
        const { ts: _ts, ...rest } = body;
        return encodeBody(key, rest);
      }
    }
  };

  const malformed = (key: string, body: Body): Array<string | Buffer> => {
    const kind = MALFORMED_KINDS[malformedNext] as MalformedKind;
    malformedNext = (malformedNext + 1) % MALFORMED_KINDS.length;
    switch (kind) {
      case 'undecodable-body':
        return undecodable(key, body);
      case 'missing-key':
        return encodeBody(undefined, body);
      case 'missing-ts': {
        const { ts: _ts, ...rest } = body;
        return encodeBody(key, rest);
      }
      case 'bad-ts':
        return encodeBody(key, { ...body, ts: 'yesterday' });
      case 'bad-amount':
        return encodeBody(key, { ...body, amount: 'abc' });
      case 'empty-key':
        return encodeBody('', body);
    }
  };

  let hostileNext = 0;
  const hostile = (k: number, body: Body): Array<string | Buffer> => {
    const kind = HOSTILE_KINDS[hostileNext] as HostileKind;
    hostileNext = (hostileNext + 1) % HOSTILE_KINDS.length;
    switch (kind) {
      case 'future-ts':
        return encodeBody(`k${k}`, { ...body, ts: FUTURE_TS });
      case 'hex-amount':
        return encodeBody(`k${k}`, { ...body, amount: '0x10' });
      case 'wide-entry': {
        const fields = encodeBody(`k${k}`, body);
        for (let x = 0; x < WIDE_ENTRY_PAIRS; x++) fields.push(`x${x}`, String(x));
        return fields;
      }
      case 'binary-key': {
        const fields = encodeBody(`k${k}`, body);
        fields[1] = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(`k${k}`)]);
        return fields;
      }
    }
  };

  const mPct = opts.malformedPct;
  const dPct = mPct + opts.duplicatePct;
  const oPct = dPct + opts.outOfOrderPct;
  const hPct = oPct + (opts.hostilePct ?? 0);

  for (let i = 0; i < opts.count; i++) {
    const r = rand() * 100;
    if (r >= mPct && r < dPct && recent.length > 0) {
      const pick = recent[Math.floor(rand() * recent.length)] as Array<string | Buffer>;
      yield { fields: pick, kind: 'duplicate' };
      continue;
    }
    const k = Math.floor(rand() * opts.keys);
    const key = `k${k}`;
    let ts = Math.floor(opts.startTs + i * opts.intervalMs);
    const amount = 1 + Math.floor(rand() * 1000);
    const type = rand() < 0.9 ? 'order' : 'refund';
    const id = `${opts.seed}-${i}`;
    if (r < mPct) {
      yield { fields: malformed(key, { id, ts, seq: 0, amount, type }), kind: 'malformed' };
      continue;
    }
    if (r >= oPct && r < hPct) {
      yield { fields: hostile(k, { id, ts, seq: 0, amount, type }), kind: 'hostile' };
      continue;
    }
    const outOfOrder = r >= dPct && r < oPct;
    if (outOfOrder) ts -= 1 + Math.floor(rand() * opts.outOfOrderMaxMs);
    seqs[k] = (seqs[k] as number) + 1;
    const fields = encodeBody(key, { id, ts, seq: seqs[k] as number, amount, type });
    if (recent.length < DUPLICATE_WINDOW) recent.push(fields);
    else recent[recentNext] = fields;
    recentNext = (recentNext + 1) % DUPLICATE_WINDOW;
    yield { fields, kind: outOfOrder ? 'out-of-order' : 'ok' };
  }
}
