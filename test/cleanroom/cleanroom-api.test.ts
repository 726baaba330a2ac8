/**
 * Clean rooms over real HTTP, real DuckDB and CSV files in the lake: the life
 * cycle, the reference Scope 3 query with its output constraint, the query log
 * (in the collaboration and in the decision log), and the attacks of issue #13
 * that need the whole stack (non-members, leaving, abilities, templates).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { REFERENCE_QUERY, REFERENCE_RULES, startScope3World, type Scope3World } from './scope3-world.js';

let w: Scope3World;
const room = '/v1/cleanrooms/scope3';
const query = (user: 'rita' | 'paul' | 'tara' | 'nina', sql: string) => w.as(user, 'POST', `${room}/query`, { sql });

before(async () => {
  w = await startScope3World();
  const created = await w.as('rita', 'POST', '/v1/cleanrooms', {
    name: 'scope3',
    creator: { name: 'reporting', principal: 'group:reporting-team', abilities: ['query', 'receive'] },
    members: [
      { name: 'purchased-goods', principal: 'group:purchase-team' },
      { name: 'transportation', principal: 'group:transport-team' },
    ],
  });
  assert.equal(created.status, 201, JSON.stringify(created.json));
});

after(async () => {
  await w.close();
});

describe('life cycle', () => {
  it('refuses to associate a table before the invitation is accepted, then accepts it', async () => {
    // threat: an invited organisation's table is pulled into a collaboration it never joined
    const early = await w.as('paul', 'POST', `${room}/tables`, { name: 'purchase', table: 'lake.purchase.purchase', columns: ['item'] });
    assert.equal(early.status, 403, JSON.stringify(early.json));
    assert.match(early.json.error.message, /member `purchased-goods` is invited: accept the invitation first/);
    for (const u of ['paul', 'tara'] as const) assert.equal((await w.as(u, 'POST', `${room}/accept`, {})).status, 200);
    const members = (await w.as('tara', 'GET', room)).json.members as { name: string; status: string }[];
    assert.deepEqual(members.map((m) => m.status), ['active', 'active', 'active']);
  });

  it("refuses to associate another member's catalog table, and a column the member cannot read", async () => {
    // threat: a member shares a table it does not own (the supplier offering the carrier's data)
    const theirs = await w.as('paul', 'POST', `${room}/tables`, { name: 'stolen', table: 'lake.transport.transportation', columns: ['item'] });
    assert.equal(theirs.status, 403, JSON.stringify(theirs.json));
    assert.match(theirs.json.error.message, /may not read every row of `lake.transport.transportation`, so it cannot share it/);
    const nope = await w.as('paul', 'POST', `${room}/tables`, { name: 'purchase', table: 'lake.purchase.purchase', columns: ['item', 'nope'] });
    assert.equal(nope.status, 400, JSON.stringify(nope.json));
    assert.match(nope.json.error.message, /^columns\[1\]: column `nope` not found/);
  });

  it('associates each member table with its chosen columns and sets the reference rules', async () => {
    const tables = [
      ['rita', 'reporting', 'lake.reporting.reporting', ['product', 'ingredient']],
      ['paul', 'purchase', 'lake.purchase.purchase', ['item', 's3_upstream_purchased_good']],
      ['tara', 'transportation', 'lake.transport.transportation', ['item', 's3_upstream_transportation', 'unit']],
    ] as const;
    for (const [user, name, table, columns] of tables) {
      const r = await w.as(user, 'POST', `${room}/tables`, { name, table, columns });
      assert.equal(r.status, 200, JSON.stringify(r.json));
      const rule = await w.as(user, 'PUT', `${room}/tables/${name}/rule`, REFERENCE_RULES[name]);
      assert.equal(rule.status, 200, JSON.stringify(rule.json));
    }
  });

  it("refuses a rule set by a member on another member's table", async () => {
    // threat: the reporting company loosens the supplier's rule to see its emission factors
    const r = await w.as('rita', 'PUT', `${room}/tables/purchase/rule`, { type: 'list', joinColumns: ['item'], listColumns: ['item', 's3_upstream_purchased_good'] });
    assert.equal(r.status, 403, JSON.stringify(r.json));
    assert.match(r.json.error.message, /belongs to member `purchased-goods`: only its owner sets its rule/);
  });

  it('refuses a rule naming a column outside the configured ones, with the field named', async () => {
    // threat: a careless rule that names the origin region, which was never shared
    const r = await w.as('paul', 'PUT', `${room}/tables/purchase/rule`, { ...REFERENCE_RULES.purchase, dimensionColumns: ['origin_region'] });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, /^dimensionColumns\[0\]: column `origin_region` is not a configured column of `purchase`/);
  });
});

describe('running the reference query', () => {
  it('runs the Scope 3 query for the reporting member and removes the product below the threshold, counting it', async () => {
    // threat: a single-ingredient product's row would reveal one supplier's emission factor for one item
    const r = await query('rita', REFERENCE_QUERY);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.columns.map((c: { name: string }) => c.name), ['Product', 'Scope_3_Purchased_Goods_Emissions', 'Scope_3_Transportation_Emissions']);
    const products = (r.json.rows as unknown[][]).map((row) => row[0]).sort();
    assert.deepEqual(products, ['bread', 'cake', 'soup']);
    assert.equal(r.json.removed, 1);
    assert.deepEqual(r.json.rules, ['aggregation rule of `reporting`', 'aggregation rule of `purchase`', 'aggregation rule of `transportation`']);
  });

  it('thresholds a dimension filter that narrows a product to one ingredient instead of returning it', async () => {
    // threat: differencing — two filters that differ by one ingredient isolate that ingredient's emissions
    const r = await query('rita', `${REFERENCE_QUERY.replace('GROUP BY', "WHERE r.product IN ('tea', 'bread') GROUP BY")}`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual((r.json.rows as unknown[][]).map((row) => row[0]), ['bread']);
    assert.equal(r.json.removed, 1);
  });

  it('shows every query, allowed or refused, with runner, rules and rows removed, to every member', async () => {
    // threat: a member runs probing queries the others never learn about
    const refused = await query('rita', 'SELECT p.item, SUM(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY p.item');
    assert.equal(refused.status, 403);
    const log = await w.as('paul', 'GET', `${room}/log`);
    assert.equal(log.status, 200, JSON.stringify(log.json));
    const [last, ...rest] = log.json.entries as { outcome: string; runner: string; member: string; sql: string; rules: string[]; removed: number }[];
    assert.equal(last?.outcome, 'refused');
    assert.match(last?.sql ?? '', /GROUP BY p.item/);
    const allowed = rest.find((e) => e.outcome === 'allowed');
    assert.equal(allowed?.member, 'reporting');
    assert.equal(allowed?.runner, 'user:rita');
    assert.equal(allowed?.removed, 1);
    assert.equal(allowed?.rules.length, 3);
    const logged = (await w.s.ws.services.decisionLog.listDecisions({ limit: 200 })).filter((d) => d.action === 'cleanroom.query');
    assert.ok(logged.some((d) => d.result === 'deny'), 'refused query in the decision log (the security lake outbox)');
    assert.ok(logged.some((d) => d.result === 'allow' && d.details?.['removed'] === 1));
  });
});

describe('attacks that need the whole stack', () => {
  it('refuses a query from a member without the query ability, and logs it', async () => {
    // threat: the supplier runs its own analysis over the reporting company's recipes
    const r = await query('paul', REFERENCE_QUERY);
    assert.equal(r.status, 403, JSON.stringify(r.json));
    assert.match(r.json.error.message, /member `purchased-goods` may not run queries in `scope3`/);
  });

  it("refuses a non-member reading the collaboration's tables through the gateway and through the clean room", async () => {
    // threat: someone outside the collaboration reads a member's rows directly
    for (const sql of ['SELECT item, origin_region FROM purchase.purchase', 'SELECT product, ingredient FROM reporting.reporting']) {
      const g = await w.as('nina', 'POST', '/v1/query', { sql, format: 'json' });
      assert.ok([403, 404].includes(g.status), JSON.stringify(g.json));
    }
    // Members do not get gateway access to each other's tables from the collaboration either.
    const rita = await w.as('rita', 'POST', '/v1/query', { sql: 'SELECT item FROM purchase.purchase', format: 'json' });
    assert.ok([403, 404].includes(rita.status), JSON.stringify(rita.json));
    const room404 = await query('nina', REFERENCE_QUERY);
    assert.equal(room404.status, 404, JSON.stringify(room404.json));
    const attempts = (await w.s.ws.services.decisionLog.listDecisions({ limit: 200 })).filter((d) => d.action === 'cleanroom.query' && d.actor === 'user:nina');
    assert.equal(attempts[0]?.result, 'deny', 'the attempt of an outsider reaches the decision log (and the security lake)');
    assert.equal((await w.as('nina', 'GET', `${room}/log`)).status, 404);
  });

  it('binds a template parameter as a value, never as SQL', async () => {
    // threat: a parameter value that would rewrite an approved query (`x' OR 1=1 --`) or a parameter used where SQL is expected
    const t = await w.as('rita', 'POST', `${room}/templates`, {
      name: 'one-product',
      sql: 'SELECT r.product, count(*) AS n FROM reporting r WHERE r.product = $product GROUP BY r.product',
      parameters: [{ name: 'product', type: 'string' }],
    });
    assert.equal(t.status, 201, JSON.stringify(t.json));
    const notApproved = await w.as('rita', 'POST', `${room}/query`, { template: 'one-product', params: { product: 'bread' } });
    assert.equal(notApproved.status, 403, JSON.stringify(notApproved.json));
    assert.match(notApproved.json.error.message, /^aggregation rule of `reporting`: template `one-product` cannot read it/);
    const rule = await w.as('rita', 'PUT', `${room}/tables/reporting/rule`, { type: 'custom', templates: ['one-product'] });
    assert.equal(rule.status, 200, JSON.stringify(rule.json));
    const fine = await w.as('rita', 'POST', `${room}/query`, { template: 'one-product', params: { product: 'bread' } });
    assert.equal(fine.status, 200, JSON.stringify(fine.json));
    assert.deepEqual(fine.json.rows, [['bread', 3]]);
    const injected = await w.as('rita', 'POST', `${room}/query`, { template: 'one-product', params: { product: "bread' OR 1=1 --" } });
    assert.equal(injected.status, 200, JSON.stringify(injected.json));
    assert.deepEqual(injected.json.rows, []);
    const asNumber = await w.as('rita', 'POST', `${room}/query`, { template: 'one-product', params: { product: 1 } });
    assert.equal(asNumber.status, 400, JSON.stringify(asNumber.json));
    const extra = await w.as('rita', 'POST', `${room}/query`, { template: 'one-product', params: { product: 'bread', sql: 'x' } });
    assert.equal(extra.status, 400, JSON.stringify(extra.json));
    assert.equal((await w.as('rita', 'PUT', `${room}/tables/reporting/rule`, REFERENCE_RULES.reporting)).status, 200);
  });

  it('refuses reading after leaving: the member cannot query and its tables are gone from the collaboration', async () => {
    // threat: an organisation that left keeps reading, or its data stays readable after it left
    assert.equal((await query('rita', REFERENCE_QUERY)).status, 200);
    const left = await w.as('paul', 'POST', `${room}/leave`, {});
    assert.equal(left.status, 200, JSON.stringify(left.json));
    const after = await query('rita', REFERENCE_QUERY);
    assert.equal(after.status, 404, JSON.stringify(after.json));
    assert.match(after.json.error.message, /table `purchase` is not a configured table of this collaboration/);
    assert.equal((await w.as('paul', 'GET', room)).status, 404);
    assert.equal((await w.as('paul', 'GET', `${room}/log`)).status, 404);
  });

  it('refuses every query and change once the collaboration is closed', async () => {
    // threat: a closed collaboration that still answers queries
    assert.equal((await w.as('tara', 'POST', `${room}/close`, {})).status, 403);
    assert.equal((await w.as('rita', 'POST', `${room}/close`, {})).status, 200);
    const q = await query('rita', 'SELECT r.product, SUM(t.s3_upstream_transportation) FROM reporting r JOIN transportation t ON r.ingredient = t.item GROUP BY r.product');
    assert.equal(q.status, 409, JSON.stringify(q.json));
    assert.equal((await w.as('tara', 'POST', `${room}/leave`, {})).status, 409);
  });
});
