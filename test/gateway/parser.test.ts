/**
 * The parser instance: `json_serialize_sql` then `json_deserialize_sql(json(…))`
 * must give back the query that was analyzed, constants included.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openParser, type Parser } from '../../src/gateway/sandbox.js';
import { openDuckDb, type DuckDb } from '../../src/lake/duckdb.js';

let parser: Parser;
let duck: DuckDb;
before(async () => {
  parser = await openParser();
  duck = await openDuckDb();
});
after(() => {
  parser.close();
  duck.close();
});

describe('parser round trip', () => {
  it('prints every constant exactly: 64- and 128-bit integers, decimals, doubles, unicode', async () => {
    // Threat: a constant changed by the JSON round trip would run a different query from the one authorized.
    const sql =
      "SELECT 18446744073709551615 AS a, 170141183460469231731687303715884105727 AS b, 0.1 AS c, 1e308 AS d, 123456789012345678.123456789 AS e, -9223372036854775808 AS f, 'x\u00e9\"''' AS g, 5e-324 AS h";
    const printed = await parser.deserialize(await parser.serialize(sql));
    for (const digits of ['18446744073709551615', '170141183460469231731687303715884105727', '123456789012345678.123456789', '9223372036854775808']) {
      assert.ok(printed.includes(digits), printed);
    }
    assert.deepEqual(await duck.all(printed), await duck.all(sql));
  });

  it('reports a syntax error as a tree with the error, never as SQL', async () => {
    const tree = JSON.parse(await parser.serialize('SELEC 1')) as { error?: boolean };
    assert.equal(tree.error, true);
  });
});
