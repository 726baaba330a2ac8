/**
 * The analysis-rule checker on DuckDB's own trees (the gateway's parser, no
 * other I/O): one test per attack of issue #13, each refused with the rule
 * named, and properties: random allowed queries pass, and the same queries
 * with one column swapped for a column the rules do not allow there fail.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { checkRoomQuery, type RoomTable } from '../../src/cleanroom/cleanroom-checker.js';
import { checkRule, RuleInputSchema } from '../../src/cleanroom/cleanroom-rules.js';
import { parseQuery } from '../../src/gateway/parse.js';
import { openParser, type Parser } from '../../src/gateway/sandbox.js';
import { REFERENCE_QUERY, REFERENCE_RULES } from './scope3-world.js';

let parser: Parser;
before(async () => {
  parser = await openParser();
});
after(() => parser.close());

const configured = (name: 'reporting' | 'purchase' | 'transportation', member: string, columns: string[]): RoomTable => {
  const base = { name, member, columns };
  return { ...base, rule: checkRule(base, RuleInputSchema.parse(REFERENCE_RULES[name])) };
};
const TABLES = new Map<string, RoomTable>([
  ['reporting', configured('reporting', 'reporting', ['product', 'ingredient'])],
  ['purchase', configured('purchase', 'purchased-goods', ['item', 's3_upstream_purchased_good'])],
  ['transportation', configured('transportation', 'transportation', ['item', 's3_upstream_transportation', 'unit'])],
]);

const check = async (sql: string, tables: ReadonlyMap<string, RoomTable> = TABLES) => checkRoomQuery({ statement: await parseQuery(parser, sql, sql), tables });
const refused = async (sql: string, pattern: RegExp): Promise<void> => {
  await assert.rejects(check(sql), (e: Error & { code?: string }) => {
    assert.ok(['STEWARD_E_FORBIDDEN', 'STEWARD_E_NOT_FOUND'].includes(e.code ?? ''), `${e.code}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
};
const JOIN = 'FROM reporting r JOIN purchase p ON r.ingredient = p.item';

describe('the reference query', () => {
  it('passes, with every rule named and the output constraints of each table to enforce', async () => {
    const c = await check(REFERENCE_QUERY);
    assert.equal(c.kind, 'aggregation');
    assert.deepEqual(c.rules, ['aggregation rule of `reporting`', 'aggregation rule of `purchase`', 'aggregation rule of `transportation`']);
    assert.deepEqual(c.constraints.map((x) => `${x.alias}.${x.column}>=${x.minimum}`), ['r.ingredient>=2', 'p.item>=2', 't.item>=2']);
  });
});

describe('attacks, each refused with the rule named', () => {
  it('refuses selecting a column the member did not allow in the collaboration', async () => {
    // threat: reading the supplier's origin region, which was never shared
    await refused(`SELECT p.origin_region, SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY p.origin_region`, /^aggregation rule of `purchase`: column `origin_region` is not in the collaboration/);
  });

  it('refuses selecting a configured column that is not a dimension', async () => {
    // threat: listing the items each product is made of (the recipe) by selecting a join column
    await refused(`SELECT r.ingredient, SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY r.product`, /^aggregation rule of `reporting`: column `ingredient` is not a dimension column/);
  });

  it('refuses SELECT *', async () => {
    // threat: every configured column of every row at once
    await refused(`SELECT * ${JOIN}`, /aggregation rule of `reporting`.*: SELECT \* is not allowed/);
  });

  it('refuses an aggregate on a column that is not an aggregate column, or with a function its rule does not allow', async () => {
    // threat: SUM over the join key, or AVG where only SUM was allowed (a different statistic of the same rows)
    await refused(`SELECT r.product, SUM(p.item) ${JOIN} GROUP BY r.product`, /^aggregation rule of `purchase`: column `item` is not an aggregate column/);
    await refused(`SELECT r.product, AVG(p.s3_upstream_purchased_good) ${JOIN} GROUP BY r.product`, /^aggregation rule of `purchase`: column `s3_upstream_purchased_good` may not be aggregated with AVG \(allowed: SUM\)/);
    await refused(`SELECT r.product, MIN(p.s3_upstream_purchased_good) ${JOIN} GROUP BY r.product`, /scalar function `min` is not allowed/);
  });

  it('refuses grouping by a join column', async () => {
    // threat: one output row per item turns an aggregate into the supplier's per-item emission factor
    await refused(`SELECT SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY p.item`, /^aggregation rule of `purchase`: grouping by join column `item` is not allowed/);
  });

  it('refuses a query with no join when the rule requires one', async () => {
    // threat: aggregating the supplier's table alone, outside any joint analysis
    await refused('SELECT SUM(p.s3_upstream_purchased_good) FROM purchase p', /^aggregation rule of `purchase`: a query must join `purchase` with another member's table/);
    await refused('SELECT SUM(p.s3_upstream_purchased_good) FROM purchase p, reporting r', /cross joins \(and comma-separated tables\) are not allowed/);
  });

  it('refuses a filter on a column that is not a dimension (differencing)', async () => {
    // threat: two queries whose filters differ by one item; their difference is that item's emissions
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) ${JOIN} WHERE p.item <> 'salt' GROUP BY r.product`, /^aggregation rule of `purchase`: filtering on column `item` is not allowed: it is not a dimension column/);
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) FILTER (WHERE p.item = 'salt') ${JOIN} GROUP BY r.product`, /FILTER on an aggregate is not allowed/);
  });

  it('refuses a threshold bypass through a subquery', async () => {
    // threat: aggregate per item inside, so the outer rows pass a constraint the inner rows never met
    await refused('SELECT x.product, SUM(x.e) FROM (SELECT r.product, p.s3_upstream_purchased_good AS e FROM reporting r JOIN purchase p ON r.ingredient = p.item) x GROUP BY x.product', /subqueries are not allowed/);
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) ${JOIN} WHERE r.product IN (SELECT product FROM reporting) GROUP BY r.product`, /subqueries are not allowed/);
  });

  it('refuses a threshold bypass through a CTE', async () => {
    // threat: the same bypass written WITH … AS
    await refused(`WITH x AS (SELECT r.product, p.s3_upstream_purchased_good AS e ${JOIN}) SELECT product, SUM(e) FROM x GROUP BY product`, /^aggregation rule of `reporting`, aggregation rule of `purchase`: WITH \(common table expressions\) is not allowed/);
  });

  it('refuses a threshold bypass through a UNION', async () => {
    // threat: a second, unconstrained branch glued to an allowed one
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY r.product UNION ALL SELECT r.product, SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY r.product`, /UNION, INTERSECT and EXCEPT are not allowed/);
  });

  it('refuses SEMI and ANTI joins, which test another member\'s keys without aggregating them', async () => {
    // threat: an ANTI join lists the recipe lines whose ingredient the supplier does not have (membership inference)
    await refused('SELECT r.product, COUNT(r.ingredient) FROM reporting r ANTI JOIN purchase p ON r.ingredient = p.item GROUP BY r.product', /`ANTI` joins are not allowed/);
    await refused('SELECT r.product, COUNT(r.ingredient) FROM reporting r SEMI JOIN purchase p ON r.ingredient = p.item GROUP BY r.product', /`SEMI` joins are not allowed/);
  });

  it('refuses a threshold bypass through a window function', async () => {
    // threat: a per-row running sum returns every row's value before any constraint applies
    await refused(`SELECT SUM(p.s3_upstream_purchased_good) OVER (PARTITION BY p.item), r.product ${JOIN}`, /window functions are not allowed/);
  });

  it('refuses ORDER BY a position, which could point at the hidden constraint counts', async () => {
    // threat: ORDER BY 3 on a two-column query sorts by the number of distinct ingredients behind each row
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY r.product ORDER BY 3`, /ORDER BY takes output names or expressions, not positions/);
  });

  it('refuses a scalar function the rules do not allow', async () => {
    // threat: reshaping a dimension (or an aggregate input) into something the owner never agreed to release
    await refused(`SELECT lower(r.product), SUM(p.s3_upstream_purchased_good) ${JOIN} GROUP BY lower(r.product)`, /^aggregation rule of `reporting`: scalar function `lower` is not allowed/);
    await refused(`SELECT r.product, SUM(md5(p.s3_upstream_purchased_good)) ${JOIN} GROUP BY r.product`, /scalar function `md5` is not allowed/);
  });

  it('refuses a parameter in an ad-hoc query and a template that is not approved', async () => {
    // threat: a template parameter used as SQL, or a query smuggling parameters past the rules
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) ${JOIN} WHERE r.product = $p GROUP BY r.product`, /parameters are only for templates/);
    const sql = 'SELECT count(*) FROM reporting';
    const statement = await parseQuery(parser, sql, sql);
    assert.throws(() => checkRoomQuery({ statement, tables: TABLES, template: 'mine' }), /aggregation rule of `reporting`: template `mine` cannot read it/);
  });

  it('refuses catalog names, table functions and unknown tables: only configured tables exist', async () => {
    // threat: reaching the members' catalog tables or files directly from inside the clean room
    await refused(`SELECT r.product, SUM(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase.purchase p ON r.ingredient = p.item GROUP BY r.product`, /written as a catalog table/);
    await refused("SELECT * FROM read_csv('/etc/passwd')", /table functions are not allowed/);
    await refused('SELECT count(x) FROM elsewhere', /`elsewhere` is not a configured table/);
  });
});

describe('properties', () => {
  const DIMS = [['r', 'product'], ['t', 'unit']] as const;
  const AGGS = [['p', 's3_upstream_purchased_good'], ['t', 's3_upstream_transportation']] as const;
  const FROM = 'FROM reporting r JOIN purchase p ON r.ingredient = p.item JOIN transportation t ON p.item = t.item';
  const NOT_DIMENSION = ['r.ingredient', 'p.item', 't.item', 'p.s3_upstream_purchased_good', 't.s3_upstream_transportation', 'p.origin_region', 't.transport_mode'];
  const allowed = fc.record({
    dims: fc.subarray([...DIMS], { minLength: 0 }),
    aggs: fc.subarray([...AGGS], { minLength: 1 }),
    filter: fc.option(fc.constantFrom(...DIMS), { nil: undefined }),
    value: fc.string({ maxLength: 8 }).map((s) => s.replaceAll("'", "''")),
    order: fc.boolean(),
  });
  type Shape = { dims: (typeof DIMS)[number][]; aggs: (typeof AGGS)[number][]; filter: (typeof DIMS)[number] | undefined; value: string; order: boolean };
  const text = (q: Shape, dimText = (d: readonly [string, string]) => `${d[0]}.${d[1]}`): string => {
    const dims = q.dims.map(dimText);
    const select = [...dims, ...q.aggs.map(([a, c]) => `SUM(${a}.${c})`)].join(', ');
    const where = q.filter === undefined ? '' : ` WHERE ${q.filter[0]}.${q.filter[1]} = '${q.value}'`;
    const group = dims.length === 0 ? '' : ` GROUP BY ${dims.join(', ')}`;
    return `SELECT ${select} ${FROM}${where}${group}${q.order && dims.length > 0 ? ` ORDER BY ${dims[0]}` : ''}`;
  };

  it('accepts random queries within the reference rules', async () => {
    await fc.assert(
      fc.asyncProperty(allowed, async (q) => {
        const c = await check(text(q));
        assert.equal(c.constraints.length, 3);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses the same queries with one dimension swapped for a column that is not a dimension', async () => {
    // threat: any query shape at all that selects and groups a column its rule does not release
    await fc.assert(
      fc.asyncProperty(
        allowed.filter((q) => q.dims.length > 0),
        fc.constantFrom(...NOT_DIMENSION),
        fc.nat(),
        async (q, bad, pick) => {
          const victim = q.dims[pick % q.dims.length];
          const sql = text(q, (d) => (d === victim ? bad : `${d[0]}.${d[1]}`));
          await assert.rejects(check(sql), (e: Error & { code?: string }) => e.code === 'STEWARD_E_FORBIDDEN' && /^aggregation rule of `(reporting|purchase|transportation)`/.test(e.message));
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('columns equal on every joined row (what lets the planner merge output constraints)', () => {
  const withOr = new Map([...TABLES].map(([k, t]) => [k, { ...t, rule: checkRule(t, RuleInputSchema.parse({ ...REFERENCE_RULES[k as keyof typeof REFERENCE_RULES], allowedJoinOperators: ['AND', 'OR'] })) }]));

  it('lists the AND-ed equalities of inner joins', async () => {
    const c = await check(REFERENCE_QUERY);
    assert.deepEqual(c.equalColumns, [
      ['r.ingredient', 'p.item'],
      ['p.item', 't.item'],
    ]);
  });

  it('lists none when any join is an outer join', async () => {
    // threat: merging r.ingredient with p.item under a LEFT JOIN, where unmatched recipe lines keep their ingredient but have no item, lets out a product with one supplier item
    for (const join of ['LEFT JOIN', 'RIGHT JOIN', 'FULL OUTER JOIN', 'FULL JOIN']) {
      const c = await check(`SELECT r.product, SUM(p.s3_upstream_purchased_good) FROM reporting r ${join} purchase p ON r.ingredient = p.item JOIN transportation t ON p.item = t.item GROUP BY r.product`);
      assert.deepEqual(c.equalColumns, [], join);
      assert.equal(c.constraints.length, 3, join);
    }
  });

  it('leaves out an equality under OR, which some joined rows do not satisfy', async () => {
    const c = await check(`SELECT r.product, SUM(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase p ON r.ingredient = p.item JOIN transportation t ON p.item = t.item OR r.ingredient = t.item GROUP BY r.product`, withOr);
    assert.deepEqual(c.equalColumns, [['r.ingredient', 'p.item']]);
  });
});
