/**
 * The output constraint's hidden column: the cheap "at least 2 distinct" form
 * (`max > min`) must keep exactly the rows `count(DISTINCT)` keeps, on real
 * DuckDB, for strings and doubles with NULLs, case and space variants, NaN
 * and signed zeros.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { constraintExpression, mergeConstraints } from './cleanroom-plan.js';

let instance: DuckDBInstance;
let con: DuckDBConnection;
before(async () => {
  instance = await DuckDBInstance.create(':memory:', { threads: '1' });
  con = await instance.connect();
});
after(() => {
  con.closeSync();
  instance.closeSync();
});

const STRINGS = ["'a'", "'A'", "'a '", "'b'", "''", 'NULL'];
const DOUBLES = ['0.0', '-0.0', "'NaN'", '1.5', '1.50', "'Infinity'", 'NULL'];

/** Per group: does `count(DISTINCT v) >= minimum` hold, and is the planned condition true? */
async function decisions(values: readonly { g: number; v: string }[], type: string, minimum: number): Promise<{ exact: boolean; planned: boolean }[]> {
  const rows = values.map((x) => `(${x.g}, CAST(${x.v} AS ${type}))`).join(', ');
  const planned = constraintExpression(minimum).replaceAll('a.b', 'v');
  const r = await con.runAndReadAll(`SELECT count(DISTINCT v) >= ${minimum} AS exact, (${planned}) AS planned FROM (VALUES ${rows}) t(g, v) GROUP BY g ORDER BY g`);
  return r.getRowObjects().map((o) => ({ exact: o['exact'] === true, planned: o['planned'] === true }));
}

describe('output constraint columns', () => {
  it('never lets out a row that has fewer distinct values than the minimum, and keeps every row that has enough', async () => {
    // threat: a cheaper threshold check that lets out the row of a group with one distinct value (one ingredient, one supplier)
    for (const [type, pool] of [['VARCHAR', STRINGS], ['DOUBLE', DOUBLES]] as const) {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.record({ g: fc.integer({ min: 0, max: 4 }), v: fc.constantFrom(...pool) }), { minLength: 1, maxLength: 30 }), fc.constantFrom(2, 3), async (values, minimum) => {
          for (const d of await decisions(values, type, minimum)) assert.equal(d.planned, d.exact, `${type} minimum ${minimum}: ${JSON.stringify(values)}`);
        }),
        { numRuns: 150 },
      );
    }
  });

  it('uses the cheap form only for a minimum of 2', () => {
    assert.equal(constraintExpression(2), 'max(a.b) > min(a.b)');
    assert.equal(constraintExpression(3), 'count(DISTINCT a.b) >= 3');
  });
});

describe('merging the constraints of columns equal on every joined row', () => {
  const types: Record<string, string> = { 'r.ingredient': 'VARCHAR', 'p.item': 'VARCHAR', 't.item': 'VARCHAR', 'r.code': 'DOUBLE', 'p.code': 'DOUBLE', 'p.num': 'BIGINT' };
  const typeOf = (c: string): string | undefined => types[c];
  const c = (alias: string, column: string, minimum = 2) => ({ alias, table: alias, column, minimum });

  it('keeps one constraint per set of equal columns, with the largest minimum', () => {
    const merged = mergeConstraints([c('r', 'ingredient'), c('p', 'item', 3), c('t', 'item')], [['r.ingredient', 'p.item'], ['p.item', 't.item']], typeOf);
    assert.deepEqual(merged, [c('p', 'item', 3)]);
  });

  it('keeps every constraint when no columns are known equal (an outer join, an OR)', () => {
    const all = [c('r', 'ingredient'), c('p', 'item'), c('t', 'item')];
    assert.deepEqual(mergeConstraints(all, [], typeOf), all);
  });

  it('does not merge floating-point columns or columns of different types', () => {
    // threat: -0.0 = 0.0 joins two distinct values, so one side's "2 distinct" is not the other's
    const all = [c('r', 'code'), c('p', 'code'), c('p', 'num')];
    assert.deepEqual(mergeConstraints(all, [['r.code', 'p.code'], ['p.code', 'p.num']], typeOf), all);
    assert.deepEqual(mergeConstraints([c('r', 'ingredient'), c('p', 'num')], [['r.ingredient', 'p.num']], typeOf), [c('r', 'ingredient'), c('p', 'num')]);
  });

  /** Per product: every constraint checked vs the merged one, for r JOIN p ON r.ingredient = p.item (join type given). */
  async function compare(reporting: readonly [string, string][], purchase: readonly string[], join: string, minimum: number): Promise<{ all: boolean; merged: boolean }[]> {
    const lit = (v: string): string => (v === 'NULL' ? 'NULL' : `'${v}'`);
    const r = reporting.map(([prod, ing]) => `('${prod}', ${lit(ing)})`).join(', ');
    const p = purchase.map((i) => `(${lit(i)})`).join(', ');
    const cond = (col: string): string => constraintExpression(minimum).replaceAll('a.b', col);
    const merged = mergeConstraints([c('r', 'ingredient', minimum), c('p', 'item', minimum)], join === 'INNER JOIN' ? [['r.ingredient', 'p.item']] : [], typeOf);
    const mergedSql = merged.map((m) => `(${cond(`${m.alias}.${m.column}`)})`).join(' AND ');
    const res = await con.runAndReadAll(
      `SELECT coalesce((${cond('r.ingredient')}) AND (${cond('p.item')}), false) AS all_, coalesce(${mergedSql}, false) AS merged
       FROM (VALUES ${r}) r(product, ingredient) ${join} (VALUES ${p}) p(item) ON r.ingredient = p.item GROUP BY r.product ORDER BY r.product`,
    );
    return res.getRowObjects().map((o) => ({ all: o['all_'] === true, merged: o['merged'] === true }));
  }
  const VALUES = ['a', 'A', 'a ', 'b', 'c', 'NULL'];
  const data = fc.tuple(
    fc.array(fc.tuple(fc.constantFrom('x', 'y', 'z'), fc.constantFrom(...VALUES)), { minLength: 1, maxLength: 20 }),
    fc.array(fc.constantFrom(...VALUES), { minLength: 1, maxLength: 10 }),
    fc.constantFrom(2, 3),
  );

  it('lets out exactly the rows the unmerged constraints let out, on DuckDB, for inner joins', async () => {
    // threat: a merged check that lets out a product whose recipe has one ingredient, or one supplier item
    await fc.assert(
      fc.asyncProperty(data, async ([reporting, purchase, minimum]) => {
        for (const d of await compare(reporting, purchase, 'INNER JOIN', minimum)) assert.equal(d.merged, d.all, JSON.stringify({ reporting, purchase, minimum }));
      }),
      { numRuns: 150 },
    );
  });

  it('would let out a row it must not if it merged under a LEFT JOIN (why outer joins merge nothing)', async () => {
    // Two ingredients in the recipe, one of them sold: r.ingredient has 2 distinct values, p.item has 1.
    const lit = (v: string): string => `'${v}'`;
    const res = await con.runAndReadAll(
      `SELECT (max(r.ingredient) > min(r.ingredient)) AS r_only, (max(r.ingredient) > min(r.ingredient)) AND (max(p.item) > min(p.item)) AS both_
       FROM (VALUES (${lit('x')}, ${lit('a')}), (${lit('x')}, ${lit('b')})) r(product, ingredient) LEFT JOIN (VALUES (${lit('a')})) p(item) ON r.ingredient = p.item GROUP BY r.product`,
    );
    assert.deepEqual(res.getRowObjects(), [{ r_only: true, both_: false }]);
    assert.deepEqual(await compare([['x', 'a'], ['x', 'b']], ['a'], 'LEFT JOIN', 2), [{ all: false, merged: false }]);
  });
});
