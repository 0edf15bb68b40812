/**
 * The two ways an expression fails: at compile time (a config error, reported with the config path), or
 * on one event (E_EXPRESSION: the event is dead-lettered with the message, never retried — the same event
 * fails the same way every time).
 */

/** An expression failed on one event. Deterministic: not retried. */
export class ExpressionError extends Error {
  readonly code = 'E_EXPRESSION';

  constructor(message: string) {
    super(message);
    this.name = 'ExpressionError';
  }
}

/** An expression does not compile; `problem` is the message without its location. */
export class ExpressionSyntaxError extends Error {
  constructor(
    readonly where: string,
    readonly problem: string,
  ) {
    super(where === '' ? problem : `${where}: ${problem}`);
    this.name = 'ExpressionSyntaxError';
  }
}
