/**
 * Clean rooms in `steward plan / apply / export` over real HTTP, DuckDB and
 * the store: the export carries the running collaborations and applies back
 * with an empty plan; an apply that would let members see more than the API
 * allows is refused whole, naming the field and the file position; what a
 * file cannot express (who accepted or left, closed, the budget spent, the
 * query log) survives every apply.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse, stringify } from 'yaml';
import { StewardError } from '../../src/errors.js';
import { REFERENCE_QUERY, REFERENCE_RULES, startScope3World, type Scope3World } from './scope3-world.js';

let w: Scope3World;
const room = '/v1/cleanrooms/scope3';
type Doc = Record<string, any>;

const ok = (r: { status: number; json: unknown }): void => assert.ok([200, 201].includes(r.status), JSON.stringify(r.json));
const files = (doc: Doc): { files: { file: string; text: string }[] } => ({ files: [{ file: 'policy.yaml', text: stringify(doc) }] });

async function exported(): Promise<Doc> {
  const r = await w.s.call('GET', '/v1/policy/export');
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return parse(r.json.yaml as string) as Doc;
}

/** What must not move when an apply is refused: the stored collaborations and the policy world. */
async function state(): Promise<string> {
  const rooms = await w.s.call('GET', '/v1/cleanrooms');
  const grants = await w.s.call('GET', '/v1/grants');
  return JSON.stringify([rooms.json, grants.json]);
}

/** Applies `doc`, expects the refusal, and checks that nothing of it was written. */
async function refused(doc: Doc, status: number, message: RegExp): Promise<void> {
  const before = await state();
  const plan = await w.s.call('POST', '/v1/policy/plan', files(doc));
  assert.equal(plan.status, status, JSON.stringify(plan.json));
  const r = await w.s.call('POST', '/v1/policy/apply', files(doc));
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.match(r.json.error.message as string, message);
  assert.equal(await state(), before, 'nothing of the apply was written');
}

before(async () => {
  w = await startScope3World();
  ok(
    await w.as('rita', 'POST', '/v1/cleanrooms', {
      name: 'scope3',
      creator: { name: 'reporting', principal: 'group:reporting-team', abilities: ['query', 'receive'] },
      members: [
        { name: 'purchased-goods', principal: 'group:purchase-team' },
        { name: 'transportation', principal: 'group:transport-team' },
      ],
    }),
  );
  for (const u of ['paul', 'tara'] as const) ok(await w.as(u, 'POST', `${room}/accept`, {}));
  const tables = [
    ['rita', 'reporting', 'lake.reporting.reporting', ['product', 'ingredient']],
    ['paul', 'purchase', 'lake.purchase.purchase', ['item', 's3_upstream_purchased_good']],
    ['tara', 'transportation', 'lake.transport.transportation', ['item', 's3_upstream_transportation', 'unit']],
  ] as const;
  for (const [user, name, table, columns] of tables) {
    ok(await w.as(user, 'POST', `${room}/tables`, { name, table, columns }));
    ok(await w.as(user, 'PUT', `${room}/tables/${name}/rule`, REFERENCE_RULES[name]));
  }
  ok(await w.as('rita', 'POST', `${room}/query`, { sql: REFERENCE_QUERY }));
});

after(async () => {
  await w?.close();
});

describe('clean rooms as part of the policy', () => {
  it('exports the running collaboration, and the export applies back with an empty plan', async () => {
    const doc = await exported();
    const scope3 = doc['cleanrooms']?.['scope3'] as Doc;
    assert.ok(scope3 !== undefined, 'the collaboration is in the export');
    assert.deepEqual(Object.keys(scope3['tables'] as Doc), ['reporting', 'purchase', 'transportation']);
    assert.equal(scope3['members']['purchased-goods']['principal'], 'group:purchase-team');
    const plan = await w.s.call('POST', '/v1/policy/plan', files(doc));
    assert.equal(plan.status, 200, JSON.stringify(plan.json));
    assert.equal(plan.json.changes, 0, plan.json.text);
    assert.deepEqual(plan.json.cleanrooms, []);
    const applied = await w.s.call('POST', '/v1/policy/apply', files(doc));
    assert.equal(applied.status, 200, JSON.stringify(applied.json));
    assert.equal(applied.json.changes, 0);
  });

  it('refuses a rule naming a column the configured table does not expose, naming the field and the file position', async () => {
    // threat: a careless admin's file joins on the origin region, which the supplier never shared
    const doc = await exported();
    doc['cleanrooms']['scope3']['tables']['purchase']['rule']['joinColumns'] = ['item', 'origin_region'];
    await refused(doc, 400, /^policy\.yaml:\d+:\d+: cleanrooms\.scope3\.tables\.purchase\.rule\.joinColumns\[1\]: column `origin_region` is not a configured column of `purchase`/);
  });

  it("refuses sharing a catalog table the member cannot read in full (another member's table)", async () => {
    // threat: a file re-points the supplier's configured table at the carrier's table, which the supplier may not read
    const doc = await exported();
    doc['cleanrooms']['scope3']['tables']['purchase']['table'] = 'lake.transport.transportation';
    await refused(doc, 403, /cleanrooms\.scope3\.tables\.purchase\.table: member `purchased-goods` \(`group:purchase-team`\) may not read every row of `lake\.transport\.transportation`/);
  });

  it('refuses a new share when the same file revokes the grant it depends on, writing neither', async () => {
    // threat: a half-landed apply; the share is checked against the world being committed, not the one before it
    const doc = await exported();
    doc['grants'] = (doc['grants'] as Doc[]).filter((g) => g['principal'] !== 'group:transport-team');
    doc['cleanrooms']['scope3']['tables']['modes'] = { member: 'transportation', table: 'lake.transport.transportation', columns: ['item'] };
    await refused(doc, 403, /cleanrooms\.scope3\.tables\.modes\.table: member `transportation` .* may not read every row/);
  });

  it('refuses a member whose principal does not exist, and swapping the principal behind a member', async () => {
    // threat: a typo invites nobody (or a group created later by someone else); a swap lets another organisation read as this one
    let doc = await exported();
    doc['cleanrooms']['scope3']['members']['ghost'] = { principal: 'group:nobody' };
    await refused(doc, 400, /cleanrooms\.scope3\.members\.ghost\.principal: principal `group:nobody` not found/);
    doc = await exported();
    doc['cleanrooms']['scope3']['members']['purchased-goods']['principal'] = 'user:nina';
    await refused(doc, 400, /cleanrooms\.scope3\.members\.purchased-goods\.principal: member `purchased-goods` is `group:purchase-team` and cannot become `user:nina`/);
  });

  it('refuses a custom rule approving a template the rule checker refuses', async () => {
    // threat: the carrier's custom rule approves a template that reads the supplier's rows, which the supplier never approved
    const doc = await exported();
    doc['cleanrooms']['scope3']['templates'] = { peek: { author: 'reporting', sql: 'SELECT p.item, t.item FROM purchase p JOIN transportation t ON p.item = t.item' } };
    doc['cleanrooms']['scope3']['tables']['transportation']['rule'] = { type: 'custom', templates: ['peek'] };
    await refused(doc, 403, /cleanrooms\.scope3\.tables\.transportation\.rule\.templates\[0\]\.sql: aggregation rule of `purchase`: template `peek` cannot read it/);
  });

  it('refuses a template that is not one SELECT, naming its sql field', async () => {
    // threat: a template smuggling a second statement past the parser
    const doc = await exported();
    doc['cleanrooms']['scope3']['templates'] = { bad: { author: 'reporting', sql: 'SELECT 1; DROP TABLE purchase' } };
    await refused(doc, 403, /cleanrooms\.scope3\.templates\.bad\.sql\.statement: only read-only SELECT queries/);
  });

  it('refuses a table shared for a member that has not accepted', async () => {
    // threat: an admin's file pulls an invited organisation's table into a collaboration it never joined
    const doc = await exported();
    doc['cleanrooms']['scope3']['members']['late'] = { principal: 'user:nina' };
    doc['cleanrooms']['scope3']['tables']['late'] = { member: 'late', table: 'lake.purchase.purchase', columns: ['item'] };
    await refused(doc, 403, /cleanrooms\.scope3\.tables\.late\.member: member `late` is invited: a member shares tables once it has accepted/);
  });

  it('plans and applies a rule change, keeping who accepted and the query log', async () => {
    const doc = await exported();
    const logBefore = (await w.as('tara', 'GET', `${room}/log`)).json;
    doc['cleanrooms']['scope3']['tables']['reporting']['rule']['outputConstraints'] = [{ column: 'ingredient', minimum: 3 }];
    doc['cleanrooms']['scope3']['description'] = 'Scope 3 emissions';
    const plan = await w.s.call('POST', '/v1/policy/plan', files(doc));
    assert.equal(plan.status, 200, JSON.stringify(plan.json));
    assert.deepEqual(plan.json.cleanrooms, [{ name: 'scope3', action: 'change', fields: ['description "" -> "Scope 3 emissions"', '~table reporting rule outputConstraints [{"column":"ingredient","minimum":2}] -> [{"column":"ingredient","minimum":3}]'] }]);
    assert.match(plan.json.text as string, /^~ cleanroom scope3: description/m);
    const applied = await w.s.call('POST', '/v1/policy/apply', files(doc));
    assert.equal(applied.status, 200, JSON.stringify(applied.json));
    const got = (await w.as('rita', 'GET', room)).json;
    assert.deepEqual(got.tables.find((t: Doc) => t.name === 'reporting').rule.outputConstraints, [{ column: 'ingredient', minimum: 3 }]);
    assert.deepEqual(got.members.map((m: Doc) => m.status), ['active', 'active', 'active']);
    assert.deepEqual((await w.as('tara', 'GET', `${room}/log`)).json, logBefore, 'the query log is untouched');
    // The new rule is the one enforced: 3 distinct ingredients per product removes more rows.
    const q = await w.as('rita', 'POST', `${room}/query`, { sql: REFERENCE_QUERY });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    assert.ok(q.json.removed >= 1);
  });

  it('keeps the privacy budget spent when an apply raises the budget, and refuses turning privacy off', async () => {
    // threat: an apply resets the budget spent (more noisy answers to average away) or turns the noise off
    let doc = await exported();
    doc['cleanrooms']['scope3']['privacy'] = { budget: 2, epsilonPerQuery: 1, clamps: [{ table: 'purchase', column: 's3_upstream_purchased_good', min: 0, max: 10 }] };
    ok(await w.s.call('POST', '/v1/policy/apply', files(doc)));
    const q = await w.as('rita', 'POST', `${room}/query`, { sql: 'SELECT r.product, SUM(p.s3_upstream_purchased_good) AS goods FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY r.product' });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    assert.equal(q.json.privacy.remaining, 1);
    doc = await exported();
    assert.equal(doc['cleanrooms']['scope3']['privacy']['spent'], undefined, 'the budget spent is state, not policy');
    doc['cleanrooms']['scope3']['privacy']['budget'] = 3;
    ok(await w.s.call('POST', '/v1/policy/apply', files(doc)));
    assert.deepEqual((await w.as('rita', 'GET', room)).json.privacy.spent, { reporting: 1 });
    delete doc['cleanrooms']['scope3']['privacy'];
    await refused(doc, 400, /cleanrooms\.scope3\.privacy: differential privacy cannot be turned off/);
  });

  it('refuses changing an approved template, and a member removed from the file leaves with its tables', async () => {
    // threat: the SQL behind an approval is swapped after the owners approved it
    let doc = await exported();
    doc['cleanrooms']['scope3']['templates'] = { units: { author: 'transportation', sql: 'SELECT t.unit FROM transportation t' } };
    doc['cleanrooms']['scope3']['tables']['transportation']['rule'] = { type: 'custom', templates: ['units'] };
    ok(await w.s.call('POST', '/v1/policy/apply', files(doc)));
    doc = await exported();
    doc['cleanrooms']['scope3']['templates']['units']['sql'] = 'SELECT t.item, t.s3_upstream_transportation FROM transportation t';
    await refused(doc, 409, /cleanrooms\.scope3\.templates\.units: template `units` was approved as written and never changes/);

    doc = await exported();
    delete doc['cleanrooms']['scope3']['members']['transportation'];
    delete doc['cleanrooms']['scope3']['tables']['transportation'];
    delete doc['cleanrooms']['scope3']['templates'];
    const plan = await w.s.call('POST', '/v1/policy/plan', files(doc));
    assert.match(JSON.stringify(plan.json.cleanrooms), /-member transportation \(leaves/);
    ok(await w.s.call('POST', '/v1/policy/apply', files(doc)));
    assert.equal((await w.as('tara', 'GET', room)).status, 404, 'a member that left no longer sees the collaboration');
    // Listing it again does not bring it back: a member never returns under the same name.
    doc['cleanrooms']['scope3']['members']['transportation'] = { principal: 'group:transport-team' };
    await refused(doc, 409, /cleanrooms\.scope3\.members\.transportation: member `transportation` left the collaboration/);
  });

  it('creates a collaboration from a file with the others invited, and closes one the section no longer lists, keeping its log', async () => {
    let doc = await exported();
    doc['cleanrooms']['audit'] = {
      creator: 'reporting',
      members: { reporting: { principal: 'group:reporting-team', abilities: ['query', 'receive'] }, carrier: { principal: 'group:transport-team' } },
      tables: { reporting: { member: 'reporting', table: 'lake.reporting.reporting', columns: ['product', 'ingredient'], rule: REFERENCE_RULES.reporting } },
    };
    const plan = await w.s.call('POST', '/v1/policy/plan', files(doc));
    assert.equal(plan.json.cleanrooms[0].action, 'create', JSON.stringify(plan.json));
    assert.match(plan.json.text as string, /^\+ cleanroom audit: members reporting=group:reporting-team, carrier=group:transport-team \(invited\)/m);
    ok(await w.s.call('POST', '/v1/policy/apply', files(doc)));
    const created = (await w.as('tara', 'GET', '/v1/cleanrooms/audit')).json;
    assert.deepEqual(created.members.map((m: Doc) => [m.name, m.status]), [['reporting', 'active'], ['carrier', 'invited']]);

    const logBefore = (await w.s.call('GET', `${room}/log`)).json;
    doc = await exported();
    delete doc['cleanrooms']['scope3'];
    const closing = await w.s.call('POST', '/v1/policy/apply', files(doc));
    assert.equal(closing.status, 200, JSON.stringify(closing.json));
    assert.deepEqual(closing.json.cleanrooms, [{ name: 'scope3', action: 'close', fields: ['closed; its query log is kept'] }]);
    assert.equal((await w.s.call('GET', room)).json.status, 'closed');
    assert.deepEqual((await w.s.call('GET', `${room}/log`)).json, logBefore, 'the query log survives the close');
    assert.equal((await w.as('rita', 'POST', `${room}/query`, { sql: REFERENCE_QUERY })).status, 409, 'nothing runs in a closed collaboration');
    // A closed collaboration is history: not exported, and the next apply of the export changes nothing.
    const after = await exported();
    assert.deepEqual(Object.keys(after['cleanrooms'] as Doc), ['audit']);
    assert.equal((await w.s.call('POST', '/v1/policy/plan', files(after))).json.changes, 0);
  });

  it('leaves collaborations alone when no file has a cleanrooms section', async () => {
    const doc = await exported();
    delete doc['cleanrooms'];
    const r = await w.s.call('POST', '/v1/policy/apply', files(doc));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.cleanrooms, []);
    assert.equal((await w.s.call('GET', '/v1/cleanrooms/audit')).json.status, 'active');
  });

  // Threat: grants committed without the collaborations they were applied with (or the reverse) leave a half-applied
  // policy that neither the files nor the store describe; one transaction holds both.
  it('a collaboration write that fails after the grants were written commits neither', async () => {
    const doc = await exported();
    (doc['grants'] as Doc[]).push({ id: 'half-applied', principal: 'group:purchase-team', resource: 'lake.reporting.reporting', permissions: ['DESCRIBE'] });
    doc['cleanrooms'] = {
      ...(doc['cleanrooms'] as Doc | undefined),
      'half-applied': { creator: 'reporting', members: { reporting: { principal: 'group:reporting-team', abilities: ['query', 'receive'] }, carrier: { principal: 'group:transport-team' } } },
    };
    const rooms = w.s.ws.services.cleanrooms as NonNullable<typeof w.s.ws.services.cleanrooms>;
    const original = rooms.applyCode;
    // A store failure after the collaborations were written inside the transaction (the fault this test injects).
    rooms.applyCode = async (...args) => {
      await original(...args);
      throw new StewardError('STEWARD_E_UNAVAILABLE', 'the store went away mid-apply');
    };
    const before = await state();
    try {
      const r = await w.s.call('POST', '/v1/policy/apply', files(doc));
      assert.equal(r.status, 503, JSON.stringify(r.json));
    } finally {
      rooms.applyCode = original;
    }
    assert.equal(await state(), before, 'neither the grant nor the collaboration change was committed');
    const again = await w.s.call('POST', '/v1/policy/apply', files(doc));
    assert.equal(again.status, 200, JSON.stringify(again.json));
    assert.notEqual(await state(), before, 'the same apply commits both once the store answers');
  });
});
