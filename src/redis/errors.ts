/**
 * The one place that reads Redis error text. An error reply — from ioredis (redis-errors' `ReplyError`)
 * or from the reader's own parser (respReader.ts' `ReplyError`), both named `ReplyError` — becomes a typed
 * error of src/errors.ts, chosen by the reply's first word; the rest of the code tests `instanceof`.
 *
 *   reply                          │ typed error                         │ retriable
 *   ───────────────────────────────┼─────────────────────────────────────┼──────────
 *   FENCED … (commit script)       │ FencedError        E_FENCED         │ yes
 *   STATELOST … (commit script)    │ StateLostError     E_STATE_LOST     │ no (new term)
 *   NOGROUP …                      │ NoGroupError       E_NO_GROUP       │ no
 *   ERR no such key                │ NoSuchKeyError     E_NO_SUCH_KEY    │ no
 *   WRONGTYPE …                    │ WrongTypeError     E_WRONG_TYPE     │ no
 *   BUSY, OOM, LOADING, READONLY,  │ RedisReplyError    E_REDIS_REPLY    │ yes
 *   MASTERDOWN, TRYAGAIN, NOSCRIPT…│                                     │
 *   any other reply                │ RedisReplyError    E_REDIS_REPLY    │ no
 *
 * The typed error keeps the reply's message unchanged (logs and exit messages quote it) and has the
 * original as its `cause`. Anything that is not an error reply — a connection error, an error already
 * typed — is returned as it is, so classifying twice is harmless.
 */
import {
  FencedError,
  NoGroupError,
  NoSuchKeyError,
  RedisReplyError,
  StateLostError,
  StreamshardError,
  WrongTypeError,
} from '../errors.js';

/** Replies that mean "not now": the same command may succeed later. */
const RETRIABLE = new Set([
  'BUSY', // a script or function runs too long
  'OOM', // maxmemory reached; frees up as consumers trim and ack
  'LOADING', // the server is loading its dataset after a restart
  'READONLY', // a failover made this connection's server a replica
  'MASTERDOWN',
  'NOREPLICAS',
  'TRYAGAIN',
  'CLUSTERDOWN',
  'NOSCRIPT', // the script cache was flushed: loading it again fixes it (redis/scripts/script.ts)
]);

/** True for an error reply from Redis (either client), typed or not. */
export function isReplyError(e: unknown): e is Error {
  return e instanceof RedisReplyError || (e instanceof Error && e.name === 'ReplyError');
}

/** The typed error for an error reply (see the table above); anything else unchanged. */
export function classifyRedisError(e: unknown): unknown {
  if (!(e instanceof Error) || e instanceof StreamshardError || e.name !== 'ReplyError') return e;
  const message = e.message;
  const space = message.indexOf(' ');
  const reply = space === -1 ? message : message.slice(0, space);
  const options = { cause: e };
  switch (reply) {
    case 'FENCED':
      return new FencedError(message, options);
    case 'STATELOST':
      return StateLostError.proven(e);
    case 'NOGROUP':
      return new NoGroupError(message, options);
    case 'WRONGTYPE':
      return new WrongTypeError(message, options);
    case 'ERR':
      if (message.startsWith('ERR no such key')) return new NoSuchKeyError(message, options);
      break;
  }
  return new RedisReplyError(reply, message, RETRIABLE.has(reply), options);
}
