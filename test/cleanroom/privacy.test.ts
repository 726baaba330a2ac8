/**
 * The privacy budget over real HTTP and DuckDB: Laplace noise on SUM and
 * COUNT with per-row clamping, ε spent per query from the running member's
 * budget, refusal when it is exhausted with the remaining budget shown.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { laplace } from '../../src/cleanroom/cleanroom-privacy.js';
import { REFERENCE_QUERY, REFERENCE_RULES, startScope3World, type Scope3World } from './scope3-world.js';

let w: Scope3World;
const room = '/v1/cleanrooms/dp';
const COUNT_QUERY = 'SELECT r.product, COUNT(DISTINCT p.s3_upstream_purchased_good) AS factors FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY r.product ORDER BY r.product';
const query = (sql: string) => w.as('rita', 'POST', `${room}/query`, { sql });
const privacy = (body: Record<string, unknown>) => w.as('rita', 'PUT', `${room}/privacy`, body);
const CLAMPS = [
  { table: 'purchase', column: 's3_upstream_purchased_good', min: 0, max: 1 },
  { table: 'transportation', column: 's3_upstream_transportation', min: 0, max: 0.1 },
];

before(async () => {
  w = await startScope3World();
  const created = await w.as('rita', 'POST', '/v1/cleanrooms', {
    name: 'dp',
    creator: { name: 'reporting', principal: 'group:reporting-team', abilities: ['query', 'receive'] },
    members: [{ name: 'purchased-goods', principal: 'group:purchase-team' }, { name: 'transportation', principal: 'group:transport-team' }],
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  for (const u of ['paul', 'tara'] as const) assert.equal((await w.as(u, 'POST', `${room}/accept`, {})).status, 200);
  const tables = [
    ['rita', 'reporting', 'lake.reporting.reporting', ['product', 'ingredient']],
    ['paul', 'purchase', 'lake.purchase.purchase', ['item', 's3_upstream_purchased_good']],
    ['tara', 'transportation', 'lake.transport.transportation', ['item', 's3_upstream_transportation', 'unit']],
  ] as const;
  for (const [user, name, table, columns] of tables) {
    assert.equal((await w.as(user, 'POST', `${room}/tables`, { name, table, columns })).status, 200);
    const rule = name === 'purchase' ? { ...REFERENCE_RULES.purchase, aggregateColumns: [{ column: 's3_upstream_purchased_good', functions: ['SUM', 'COUNT_DISTINCT', 'AVG'] }], joinColumns: ['item'] } : REFERENCE_RULES[name];
    assert.equal((await w.as(user, 'PUT', `${room}/tables/${name}/rule`, rule)).status, 200);
  }
});

after(async () => {
  await w.close();
});

describe('privacy budget', () => {
  it('refuses privacy settings from a member that is not the creator, and bounds on a column outside the collaboration', async () => {
    // threat: a member turns the noise down (or off) for the others
    const paul = await w.as('paul', 'PUT', `${room}/privacy`, { budget: 100, epsilonPerQuery: 100, clamps: [] });
    assert.equal(paul.status, 403, JSON.stringify(paul.json));
    const bad = await privacy({ budget: 3, epsilonPerQuery: 1, clamps: [{ table: 'purchase', column: 'origin_region', min: 0, max: 1 }] });
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    assert.match(bad.json.error.message, /^clamps\[0\]: `purchase.origin_region` is not a configured column/);
  });

  it('refuses SUM over a column without bounds and AVG, and spends nothing for them', async () => {
    // threat: an unbounded sensitivity makes the noise meaningless
    assert.equal((await privacy({ budget: 2, epsilonPerQuery: 1, clamps: [] })).status, 200);
    const sum = await query(REFERENCE_QUERY);
    assert.equal(sum.status, 403, JSON.stringify(sum.json));
    assert.match(sum.json.error.message, /^privacy budget: a SUM must take one column with clamping bounds/);
    const avg = await query('SELECT r.product, AVG(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY r.product');
    assert.equal(avg.status, 403, JSON.stringify(avg.json));
    assert.match(avg.json.error.message, /AVG is not allowed with differential privacy/);
    const dp = (await w.as('rita', 'GET', room)).json.privacy as { spent: Record<string, number> };
    assert.equal(dp.spent['reporting'] ?? 0, 0);
  });

  it('adds noise to COUNT, spends epsilon per query, shows the remaining budget and refuses when it is exhausted', async () => {
    // threat: unlimited noised queries average the noise away
    assert.equal((await privacy({ budget: 2, epsilonPerQuery: 1, clamps: CLAMPS })).status, 200);
    const first = await query(COUNT_QUERY);
    assert.equal(first.status, 200, JSON.stringify(first.json));
    assert.deepEqual(first.json.privacy, { spent: 1, remaining: 1, budget: 2 });
    for (const row of first.json.rows as [string, number][]) assert.ok(Number.isInteger(row[1]), 'a noised COUNT stays a whole number');
    const second = await query(COUNT_QUERY);
    assert.deepEqual(second.json.privacy, { spent: 1, remaining: 0, budget: 2 });
    const third = await query(COUNT_QUERY);
    assert.equal(third.status, 403, JSON.stringify(third.json));
    assert.match(third.json.error.message, /^privacy budget of member `reporting` is exhausted: 0 of 2 left, a query spends 1$/);
    const log = (await w.as('tara', 'GET', `${room}/log`)).json.entries as { outcome: string; message: string }[];
    assert.equal(log[0]?.outcome, 'refused');
    // threat: the creator raises the budget to refill it; what was spent stays spent
    assert.equal((await privacy({ budget: 3, epsilonPerQuery: 1, clamps: CLAMPS })).status, 200);
    assert.deepEqual((await query(COUNT_QUERY)).json.privacy, { spent: 1, remaining: 0, budget: 3 });
    assert.equal((await query(COUNT_QUERY)).status, 403);
  });

  it('clamps each row before it is summed, so one row moves a SUM by at most the bound', async () => {
    // threat: one huge row dominates a noised SUM and is read back through the noise
    // 3 of the budget are spent already (the test above): 997 left, one query spends them all.
    assert.equal((await privacy({ budget: 1000, epsilonPerQuery: 997, clamps: CLAMPS })).status, 200);
    const r = await query(REFERENCE_QUERY);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    // Purchased-goods emissions are all at least 1 and transport ones at least 0.2: clamped to 1 and 0.1, each SUM
    // counts the joined rows (Laplace noise of scale ~0.002 and ~0.0002 never reaches half a step).
    const byProduct = Object.fromEntries((r.json.rows as [string, number, number][]).map(([p, g, t]) => [p, [Math.round(g), Math.round(t * 10)]]));
    assert.deepEqual(byProduct, { bread: [3, 3], cake: [4, 4], soup: [3, 3] });
    assert.equal(r.json.removed, 1);
  });

  it('draws Laplace noise centred on zero with the asked scale', () => {
    // threat: a biased or too-narrow noise source that leaks the true value
    const n = 20_000;
    const draws = Array.from({ length: n }, () => laplace(2));
    const mean = draws.reduce((a, b) => a + b, 0) / n;
    const meanAbs = draws.reduce((a, b) => a + Math.abs(b), 0) / n;
    // E|X| = scale for Laplace; both bounds are many standard errors wide (no flakiness at n = 20k).
    assert.ok(Math.abs(mean) < 0.2, `mean ${mean}`);
    assert.ok(Math.abs(meanAbs - 2) < 0.2, `mean |x| ${meanAbs}`);
  });
});
