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
import { constraintExpression } from './cleanroom-plan.js';

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
