import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { isStewardError } from '../errors.js';
import { toSql } from '../policy/predicate.js';
import type { Predicate } from '../policy/predicate.js';
import { openDuckDb } from '../lake/duckdb.js';
import type { DuckDb } from '../lake/duckdb.js';
import { MAX_IN_LIST, MAX_PREDICATE_LENGTH, parsePredicate, predicateColumns } from './predicate-parser.js';

let db: DuckDb;

before(async () => {
  db = await openDuckDb({ config: { threads: '1' } });
  await db.run(`CREATE TABLE claims AS SELECT * FROM (VALUES
      (1, 'East', 120.50::DECIMAL(12,2), 3, 'Alice Smith', DATE '2025-01-05', true, NULL),
      (2, 'West', 80.00, 1, 'bob jones', DATE '2025-02-10', false, 'vip'),
      (3, 'East', 0.10, 0, '  Carol  ', DATE '2025-03-15', NULL, 'x'),
      (4, 'South', -5.25, 7, 'Dave O''Brien', DATE '2025-12-31', true, ''),
      (5, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
      (6, 'central', 1000000.99, 42, 'Éva', DATE '2024-06-01', false, 'vip')
    ) AS v(id, region, amount, qty, name, service_date, flag, note)`);
  await db.run('CREATE TABLE secrets (ssn VARCHAR)');
});

after(() => db.close());

async function refused(sql: string, pattern: RegExp): Promise<void> {
  await assert.rejects(parsePredicate(sql, db), (e: unknown) => {
    assert.ok(isStewardError(e), `expected a StewardError, got ${String(e)}`);
    assert.equal(e.code, 'STEWARD_E_INVALID_PREDICATE');
    assert.match(e.message, pattern);
    assert.doesNotMatch(e.message, /\.$/);
    return true;
  });
}

async function ids(where: string): Promise<number[]> {
  // Test-only: `where` is a constant from this file's corpus, or toSql output.
  const rows = await db.all<{ id: number }>(`SELECT id FROM claims WHERE ${where} ORDER BY id`);
  return rows.map((r) => r.id);
}

describe('parsePredicate: the portable subset', () => {
  test('converts comparisons, IN, BETWEEN, LIKE, IS NULL and functions', async () => {
    const p = await parsePredicate(
      "Region IN ('East', 'West') AND amount BETWEEN 1 AND 100.5 OR lower(name) LIKE 'a%' OR note IS NULL",
      db,
    );
    assert.deepEqual(p, {
      k: 'or',
      args: [
        {
          k: 'and',
          args: [
            { k: 'in', arg: { k: 'col', name: 'region' }, list: [{ k: 'lit', value: 'East' }, { k: 'lit', value: 'West' }], negated: false },
            { k: 'between', arg: { k: 'col', name: 'amount' }, low: { k: 'lit', value: 1 }, high: { k: 'lit', value: 100.5 }, negated: false },
          ],
        },
        { k: 'like', arg: { k: 'fn', name: 'lower', args: [{ k: 'col', name: 'name' }] }, pattern: { k: 'lit', value: 'a%' }, negated: false },
        { k: 'isnull', arg: { k: 'col', name: 'note' }, negated: false },
      ],
    });
    assert.deepEqual(predicateColumns(p), ['amount', 'name', 'note', 'region']);
  });

  test('reads literals exactly', async () => {
    const lit = async (text: string): Promise<unknown> => {
      const p = await parsePredicate(`x = ${text}`, db);
      assert.equal(p.k, 'cmp');
      return p.k === 'cmp' && p.right.k === 'lit' ? p.right.value : undefined;
    };
    assert.equal(await lit("'it''s'"), "it's");
    assert.equal(await lit('-5'), -5);
    assert.equal(await lit('0.1'), 0.1);
    assert.equal(await lit('-1.25'), -1.25);
    assert.equal(await lit('1e3'), 1000);
    assert.equal(await lit('9007199254740991'), 9007199254740991);
    assert.equal(await lit('TRUE'), true);
    assert.equal(await lit('false'), false);
    assert.equal(await lit('NULL'), null);
    assert.equal(await lit("DATE '2025-01-31'"), '2025-01-31');
    assert.equal(await lit("'2025-01-31'::DATE"), '2025-01-31');
    assert.equal(await lit("TIMESTAMP '2025-01-31 10:00:00'"), '2025-01-31 10:00:00');
  });

  test('NOT BETWEEN, NOT IN, NOT LIKE, IS NOT NULL and != map to the negated forms', async () => {
    const p = await parsePredicate("a NOT BETWEEN 1 AND 2 AND b NOT IN (1) AND c NOT LIKE 'x' AND d IS NOT NULL AND e != 1", db);
    assert.equal(toSql(p), `(("a" NOT BETWEEN 1 AND 2) AND ("b" NOT IN (1)) AND ("c" NOT LIKE 'x') AND ("d" IS NOT NULL) AND ("e" <> 1))`);
  });

  test('round trip: toSql(parsePredicate(x)) selects the same rows as x', async () => {
    const corpus = [
      "region = 'East'",
      "region <> 'East'",
      "region != 'East' OR region IS NULL",
      'amount > 100',
      'amount >= 80 AND amount <= 120.5',
      'amount < 0.2',
      'amount BETWEEN -10 AND 1',
      'amount NOT BETWEEN -10 AND 1',
      'qty IN (0, 1, 42)',
      'qty NOT IN (0, 1)',
      "region IN ('East', 'central') AND qty > 0",
      "lower(region) = 'east'",
      "upper(region) IN ('EAST', 'CENTRAL')",
      "trim(name) = 'Carol'",
      'length(name) > 8',
      'abs(amount) > 5',
      "coalesce(note, 'none') = 'none'",
      "coalesce(region, note, 'none') = 'none'",
      "name LIKE '%Smith'",
      "name NOT LIKE '%o%'",
      "lower(name) LIKE 'b%'",
      "name = 'Dave O''Brien'",
      "service_date >= DATE '2025-02-01'",
      "service_date < '2025-03-01'",
      "service_date BETWEEN '2025-01-01' AND '2025-06-30'",
      'flag',
      'NOT flag',
      'flag = TRUE',
      'flag IS NULL OR flag = false',
      'note IS NOT NULL',
      "note = ''",
      "NOT (region = 'East' OR region = 'West')",
      "(region = 'East' AND qty > 1) OR (region = 'West' AND qty < 2) OR (region IS NULL)",
      'qty = NULL',
      "name = 'Éva'",
      "\"Region\" = 'East'",
      'TRUE',
      'FALSE',
      "region = 'East' -- trailing comment",
    ];
    for (const x of corpus) {
      const p = await parsePredicate(x, db);
      assert.deepEqual(await ids(toSql(p)), await ids(x), `predicate \`${x}\` printed as \`${toSql(p)}\``);
      // Printing is a fixed point: parsing the printed form gives the same tree.
      assert.equal(toSql(await parsePredicate(toSql(p), db)), toSql(p), x);
    }
  });

  test('property: printing and re-parsing a portable tree is a fixed point', async () => {
    const col = fc.constantFrom<Predicate>({ k: 'col', name: 'region' }, { k: 'col', name: 'qty' }, { k: 'col', name: 'name' });
    const lit = fc.oneof(
      fc.string({ maxLength: 8 }).filter((s) => !s.includes('\u0000')),
      fc.integer({ min: -1000, max: 1000 }),
      fc.constantFrom(0.5, -2.25, 1000.01),
      fc.boolean(),
      fc.constant(null),
    ).map((value): Predicate => ({ k: 'lit', value }));
    const scalar = fc.oneof(col, lit, col.map((c): Predicate => ({ k: 'fn', name: 'lower', args: [c] })));
    const atom = fc.oneof(
      fc.tuple(fc.constantFrom('=', '<>', '<', '<=', '>', '>=' as const), scalar, scalar).map(([op, left, right]): Predicate => ({ k: 'cmp', op, left, right })),
      fc.tuple(scalar, fc.array(lit, { minLength: 1, maxLength: 4 }), fc.boolean()).map(([arg, list, negated]): Predicate => ({ k: 'in', arg, list, negated })),
      fc.tuple(scalar, scalar, scalar, fc.boolean()).map(([arg, low, high, negated]): Predicate => ({ k: 'between', arg, low, high, negated })),
      fc.tuple(scalar, fc.boolean()).map(([arg, negated]): Predicate => ({ k: 'isnull', arg, negated })),
      fc.tuple(scalar, lit, fc.boolean()).map(([arg, pattern, negated]): Predicate => ({ k: 'like', arg, pattern, negated })),
    );
    const tree = fc.letrec<{ p: Predicate }>((tie) => ({
      p: fc.oneof(
        { depthSize: 'small', withCrossShrink: true },
        atom,
        fc.array(tie('p'), { minLength: 2, maxLength: 3 }).map((args): Predicate => ({ k: 'and', args })),
        fc.array(tie('p'), { minLength: 2, maxLength: 3 }).map((args): Predicate => ({ k: 'or', args })),
        tie('p').map((arg): Predicate => ({ k: 'not', arg })),
      ),
    })).p;
    await fc.assert(
      fc.asyncProperty(tree, async (p) => {
        const once = toSql(await parsePredicate(toSql(p), db));
        assert.equal(toSql(await parsePredicate(once, db)), once);
      }),
      { numRuns: 60, seed: 7 },
    );
  });

  test('works without a caller-provided DuckDB', async () => {
    assert.deepEqual(await parsePredicate('a = 1'), { k: 'cmp', op: '=', left: { k: 'col', name: 'a' }, right: { k: 'lit', value: 1 } });
  });
});

describe('parsePredicate: hostile input', () => {
  test('rejects a smuggled UNION that would read another table', async () => {
    await refused("region = 'East' UNION SELECT ssn FROM secrets", /`UNION` is not allowed/);
    await refused("region = 'East' UNION ALL SELECT 1", /`UNION` is not allowed/);
    await refused("region = 'East' EXCEPT SELECT 1", /`EXCEPT` is not allowed/);
  });

  test('rejects a second statement after the predicate', async () => {
    await refused("region = 'East'; DROP TABLE claims", /not a sequence of statements/);
    await refused("region = 'East'; SELECT * FROM secrets", /not a sequence of statements/);
    const [row] = await db.all('SELECT count(*) AS n FROM claims');
    assert.equal(row?.n, 6, 'the table is still there');
  });

  test('a comment cannot swallow what the enforcement point appends', async () => {
    // The threat: a predicate ending in `--` spliced before `AND <other filter>` comments that filter out.
    const p = await parsePredicate("region = 'East' --", db);
    const printed = toSql(p);
    assert.doesNotMatch(printed, /--|\/\*/);
    assert.deepEqual(await ids(`${printed} AND qty > 1`), [1]);
    await refused("region = 'East' /* unterminated", /syntax error: unterminated \/\* comment/);
    // A line comment ends at the newline; what follows is parsed (and checked) like the rest.
    await refused("region = 'East' --\nUNION SELECT ssn FROM secrets", /`UNION` is not allowed/);
  });

  test('rejects smuggled ORDER BY, LIMIT, GROUP BY, HAVING, QUALIFY and samples', async () => {
    await refused("region = 'East' ORDER BY ssn", /ORDER BY, LIMIT or DISTINCT/);
    await refused("region = 'East' LIMIT 1", /ORDER BY, LIMIT or DISTINCT/);
    await refused("region = 'East' GROUP BY region", /GROUP BY/);
    await refused("region = 'East' GROUP BY region HAVING count(*) > 1", /`(GROUP BY|HAVING)` is not allowed/);
    await refused("region = 'East' QUALIFY row_number() OVER () = 1", /QUALIFY/);
    await refused("region = 'East' USING SAMPLE 1", /USING SAMPLE/);
  });

  test('rejects a subquery reading another table', async () => {
    await refused('region IN (SELECT ssn FROM secrets)', /subquery is not allowed in a predicate at position 8/);
    await refused('EXISTS (SELECT 1 FROM secrets)', /subquery is not allowed/);
    await refused('qty = (SELECT count(*) FROM secrets)', /subquery is not allowed/);
  });

  test("rejects read_csv('/etc/passwd') in the predicate", async () => {
    await refused("name IN (SELECT * FROM read_csv('/etc/passwd'))", /subquery is not allowed/);
    await refused("length(read_text('/etc/passwd')) > 0", /function `read_text` is not allowed/);
    await refused("name = (FROM read_csv('/etc/passwd') LIMIT 1)", /subquery is not allowed/);
  });

  test('rejects getenv() and other non-portable functions', async () => {
    await refused("getenv('HOME') = '/root'", /function `getenv` is not allowed in a predicate at position 1/);
    await refused("current_setting('home_directory') = ''", /function `current_setting`/);
    await refused("pg_catalog.lower(name) = 'x'", /with a schema/);
    await refused("information_schema.lower(name) = 'x'", /with a schema/);
    await refused("lower(DISTINCT name) = 'x'", /DISTINCT/);
    await refused("name ILIKE 'a%'", /ILIKE is not allowed/);
    await refused("name SIMILAR TO 'a.*'", /SIMILAR TO/);
    await refused("name LIKE 'a!%' ESCAPE '!'", /LIKE \.\.\. ESCAPE/);
    await refused("name || 'x' = 'ax'", /operator `\|\|`/);
    await refused('row_number() OVER () = 1', /window function/);
    await refused("trim(BOTH 'x' FROM name) = 'a'", /function `trim`/);
    await refused('lower(name, 1) = 1', /takes 1 argument, got 2/);
  });

  test('rejects unicode and quote tricks in identifiers', async () => {
    await refused('"a""b" = 1', /column name `a"b` is not a plain identifier/);
    await refused('"régión" = 1', /column name `régión`/);
    // U+212A KELVIN SIGN lowercases to ASCII `k` in JS but not in DuckDB: refuse, do not fold.
    await refused('"\u212Aey" = 1', /not a plain identifier/);
    // Cyrillic `а` looks like Latin `a`.
    await refused('"regi\u043en" = 1', /not a plain identifier/);
    await refused('" region" = 1', /not a plain identifier/);
    await refused('claims.region = 1', /qualified column reference `claims.region`/);
    await refused('main.claims.region = 1', /qualified column reference/);
    await refused('region = 1\u0000 OR 1=1', /NUL character/);
    assert.deepEqual(await parsePredicate('"REGION" = 1', db), await parsePredicate('region = 1', db));
  });

  test('rejects parameters, stars, CASE, lambdas, collations and non-literal casts', async () => {
    await refused('region = $1', /parameter/);
    await refused('region = ?', /parameter/);
    await refused('*', /`\*`/);
    await refused('COLUMNS(*) = 1', /`\*`/);
    await refused("CASE WHEN flag THEN region END = 'East'", /CASE expression/);
    await refused("region -> 'x' = 1", /lambda/);
    await refused("region = 'east' COLLATE nocase", /COLLATE/);
    await refused("CAST(amount AS VARCHAR) = '1'", /cast to `VARCHAR`/);
    await refused("TRY_CAST('1' AS INTEGER) = qty", /cast to `INTEGER`/);
    await refused("DATE '2025-13-45' = service_date", /not a date/);
    await refused('flag IS TRUE', /IS NOT DISTINCT FROM or IS TRUE/);
    await refused('qty IS DISTINCT FROM 1', /IS DISTINCT FROM/);
    await refused("region = [1]", /function `list_value`|not allowed/);
  });

  test('rejects numbers it cannot carry exactly', async () => {
    await refused('qty = 9007199254740993', /out of the exactly representable range/);
    await refused('qty = 12345678901234567890', /out of the exactly representable range/);
  });

  test('rejects a deeply nested expression', async () => {
    const nested = `${'lower('.repeat(70)}name${')'.repeat(70)} = 'x'`;
    await refused(nested, /nests deeper than 64 levels/);
    await refused(`${'NOT '.repeat(100)}flag`, /nests deeper than 64 levels/);
    // Redundant parentheses do not nest in the tree, so they are fine.
    const parens = `${'('.repeat(1500)}qty = 1${')'.repeat(1500)}`;
    assert.equal(toSql(await parsePredicate(parens, db)), '("qty" = 1)');
  });

  test('rejects a huge IN list', async () => {
    const list = Array.from({ length: MAX_IN_LIST + 1 }, () => '1').join(',');
    await refused(`qty IN (${list})`, /IN list has 1001 items, the maximum is 1000/);
    const ok = Array.from({ length: MAX_IN_LIST }, () => '1').join(',');
    const p = await parsePredicate(`qty IN (${ok})`, db);
    assert.equal(p.k === 'in' ? p.list.length : 0, MAX_IN_LIST);
  });

  test('rejects text over the length limit before parsing', async () => {
    await refused(`qty = 1 OR ${'x'.repeat(MAX_PREDICATE_LENGTH)}`, /maximum is 4096/);
    await refused('   ', /empty/);
  });

  test('reports syntax errors with the position in the user text', async () => {
    await refused('region = ', /^syntax error: syntax error at end of input at position 10$/);
    await refused('a = 1 FROM secrets', /syntax error at or near "FROM" at position 7/);
    // Positions count characters, not bytes: `é` and `ö` are two bytes each.
    await refused("\"é\" = 'ö' AND b = 'x", /unterminated quoted string .* at position 19/);
    await refused("'😀😀' = 'x", /unterminated quoted string .* at position 8/);
    await refused("'😀😀' = getenv('x')", /function `getenv` is not allowed in a predicate at position 8/);
  });

  test('reports the position of a refused construct with line and column details', async () => {
    await assert.rejects(parsePredicate("region = 'East'\n  AND getenv('x') = 'y'", db), (e: unknown) => {
      assert.ok(isStewardError(e));
      assert.match(e.message, /function `getenv` is not allowed in a predicate at position 23/);
      assert.deepEqual(e.details[0]?.path, '2:7');
      return true;
    });
  });
});
