/**
 * The expression-library comparison behind src/shard/expr/ (BENCHMARKS.md, "Expressions"): one typical
 * condition and one computed value, each compiled once and evaluated over a batch of 1,000 decoded bodies,
 * in the candidates — filtrex (the choice), CEL (`@marcbachmann/cel-js`) and JSONata — plus
 * our own module (the library behind the wrapper that turns failures into E_EXPRESSION) and a hand-written
 * closure as the floor. Imported by bench/micro.ts, whose table prints these rows.
 *
 * CEL binds the body to `e` (`type` is a CEL keyword, and a double times an int literal has no overload,
 * so its expressions read `e.amount * 1.2`, `e.amount > 100.0`); JSONata's `evaluate` returns a promise
 * (2.x), so its rows await one per event, as a synchronous shard could not. expr-eval was measured once
 * and dropped (BENCHMARKS.md: an open code-execution advisory, no fixed release); CEL and JSONata stay as
 * devDependencies so that the comparison can be re-run.
 */
import { Environment } from '@marcbachmann/cel-js';
import { compileExpression as filtrex } from 'filtrex';
import jsonata from 'jsonata';
import { compileExpression } from '../src/shard/expr/expression.js';
import type { DecodedEvent } from '../src/shard/stages/decode.js';
import { compileMap } from '../src/shard/stages/map/mapStage.js';
import { BATCH } from './lib/microFixtures.js';

export interface ExprTask {
  name: string;
  items: number;
  unit: string;
  fn: () => void | Promise<void>;
}

/** 1,000 bodies like the generator's: 90 % "OrderCreated", amounts 1..1000. */
function bodies(): Array<Record<string, unknown>> {
  const out: Array<Record<string, unknown>> = [];
  for (let i = 0; i < BATCH; i++) {
    out.push({
      id: `b-${i}`,
      ts: 1_700_000_000_000 + i,
      type: i % 10 === 0 ? 'OrderRefunded' : 'OrderCreated',
      amount: 1 + ((i * 7919) % 1000),
      customer: `c${i % 97}`,
    });
  }
  return out;
}

const COND = 'type == "OrderCreated" and amount > 100';
const CALC = 'amount * 1.2';
const CONCAT = 'type + "/" + customer';

export function expressionTasks(): ExprTask[] {
  const bs = bodies();
  const ev: DecodedEvent = { body: {}, ts: 0, id: '', values: new Float64Array(0), type: undefined };
  const sink = { n: 0 };
  const run = (f: (b: Record<string, unknown>) => unknown) => () => {
    for (const b of bs) if (f(b) !== undefined) sink.n++;
  };
  const ours = (src: string) => {
    const c = compileExpression(src, 'bench');
    return run((b) => {
      ev.body = b;
      return c.evaluate(ev);
    });
  };
  const ft = (src: string) => run(filtrex(src));
  const cel = new Environment({ unlistedVariablesAreDyn: true });
  const celRow = (src: string) => {
    const f = cel.parse(src);
    return run((b) => f({ e: b }));
  };
  const jsRow = (src: string) => {
    const f = jsonata(src);
    return async () => {
      for (const b of bs) if ((await f.evaluate(b)) !== undefined) sink.n++;
    };
  };
  const row = (name: string, fn: ExprTask['fn']): ExprTask => ({ name, items: BATCH, unit: 'events', fn });
  return [
    row(
      'expr cond, hand-written closure (floor)',
      run((b) => b.type === 'OrderCreated' && (b.amount as number) > 100),
    ),
    row(`expr cond, ours (filtrex + E_EXPRESSION check): ${COND}`, ours(COND)),
    row('expr cond, filtrex 3.1.0', ft(COND)),
    row('expr cond, CEL @marcbachmann/cel-js 8.0.0', celRow('e.type == "OrderCreated" && e.amount > 100.0')),
    row('expr cond, JSONata 2.2.2 (async evaluate)', jsRow('type = "OrderCreated" and amount > 100')),
    row(`expr calc, ours: ${CALC}`, ours(CALC)),
    row('expr calc, filtrex 3.1.0', ft(CALC)),
    row('expr calc, CEL 8.0.0', celRow('e.amount * 1.2')),
    row('expr calc, JSONata 2.2.2 (async evaluate)', jsRow(CALC)),
    row(`expr concat, ours: ${CONCAT}`, ours(CONCAT)),
    row('expr concat, CEL 8.0.0', celRow('e.type + "/" + e.customer')),
    row('expr concat, JSONata 2.2.2 (async evaluate)', jsRow('type & "/" & customer')),
    row(
      'map stage: set total = amount * 1.2, rename type → kind, remove customer (new body per event)',
      (() => {
        const map = compileMap(
          { set: { total: CALC }, rename: { type: 'kind' }, remove: ['customer'] },
          'bench',
          new Map(),
        );
        return () => {
          for (const b of bs) {
            ev.body = b;
            map(ev);
          }
        };
      })(),
    ),
    {
      name: 'expr compile, ours (filtrex): the condition',
      items: 1,
      unit: 'compiles',
      fn: () => void compileExpression(COND, 'bench'),
    },
    {
      name: 'expr compile, CEL 8.0.0: the condition',
      items: 1,
      unit: 'compiles',
      fn: () => void cel.parse('e.type == "OrderCreated" && e.amount > 100.0'),
    },
  ];
}
