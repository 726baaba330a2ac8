import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDuckDb } from './duckdb.js';

test('converts DuckDB values to plain JS values', async () => {
  const db = await openDuckDb();
  try {
    const [row] = await db.all(`
      SELECT 42::BIGINT AS small, 9007199254740993::BIGINT AS big, 170141183460469231731687303715884105727::HUGEINT AS huge,
             12.34::DECIMAL(12,2) AS dec, DATE '2025-03-04' AS d, TIMESTAMP '2025-03-04 05:06:07.123456' AS ts,
             TIMESTAMP '1969-12-31 23:59:59.5' AS old_ts, TIMESTAMPTZ '2025-03-04 05:06:07+00' AS tstz,
             [1, 2]::INTEGER[] AS l, {'a': 1, 'b': 'x'} AS s, NULL AS n, 'x' AS v, true AS b, 1.5::DOUBLE AS f,
             'infinity'::DATE AS inf_d, '-infinity'::TIMESTAMP AS ninf_ts`);
    assert.deepEqual(row, {
      small: 42,
      big: '9007199254740993',
      huge: '170141183460469231731687303715884105727',
      dec: 12.34,
      d: '2025-03-04',
      ts: '2025-03-04T05:06:07.123456',
      old_ts: '1969-12-31T23:59:59.500000',
      tstz: '2025-03-04T05:06:07Z',
      l: [1, 2],
      s: { a: 1, b: 'x' },
      n: null,
      v: 'x',
      b: true,
      f: 1.5,
      inf_d: 'infinity',
      ninf_ts: '-infinity',
    });
  } finally {
    db.close();
  }
});

test('binds parameters instead of splicing them', async () => {
  const db = await openDuckDb();
  try {
    await db.run('CREATE TABLE t (name VARCHAR)');
    const hostile = "x'); DROP TABLE t; --";
    await db.run('INSERT INTO t VALUES ($1)', [hostile]);
    const rows = await db.all<{ name: string }>('SELECT name FROM t WHERE name = $1', [hostile]);
    assert.deepEqual(rows, [{ name: hostile }]);
    const [count] = await db.all('SELECT count(*) AS n FROM t');
    assert.equal(count?.n, 1);
  } finally {
    db.close();
  }
});

test('close is idempotent', async () => {
  const db = await openDuckDb({ config: { threads: '1' } });
  db.close();
  db.close();
});
