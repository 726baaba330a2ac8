/**
 * Grants over HTTP: the grant option bounds what a non-admin may re-grant,
 * data filters combine as a union of cells, guardrails cap every grant.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let aliceToken: string;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
  const t = await s.call('POST', '/v1/tokens', { name: 'alice', principal: 'user:alice', role: 'user' });
  aliceToken = t.json.token;
  const g = await s.call('POST', '/v1/grants', {
    id: 'alice-regrant-revenue',
    principal: 'user:alice',
    resource: 'lake.finance.revenue',
    permissions: ['SELECT', 'DESCRIBE'],
    grantable: ['SELECT'],
  });
  assert.equal(g.status, 201, JSON.stringify(g.json));
});

after(async () => {
  await s.close();
});

const decide = (principal: string, resource: string, action = 'SELECT') =>
  s.call('POST', '/v1/authorize', { principal, action, resource }).then((r) => r.json);

describe('the grant option', () => {
  it('lets a holder re-grant at most what it holds', async () => {
    const ok = await s.call('POST', '/v1/grants', { principal: 'user:erin', resource: { table: 'lake.finance.revenue', columns: ['month', 'revenue'] }, permissions: ['SELECT'] }, aliceToken);
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    assert.equal((await decide('erin', 'lake.finance.revenue.revenue')).decision, 'allow');
  });

  it('refuses a re-grant of a permission held without the grant option (privilege escalation)', async () => {
    const r = await s.call('POST', '/v1/grants', { principal: 'user:erin', resource: 'lake.finance.revenue', permissions: ['DESCRIBE'] }, aliceToken);
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'STEWARD_E_GRANT_OPTION');
  });

  it('refuses a re-grant on a resource the holder does not hold (lateral movement)', async () => {
    const r = await s.call('POST', '/v1/grants', { principal: 'user:erin', resource: 'lake.claims.patient_claims', permissions: ['SELECT'] }, aliceToken);
    assert.equal(r.status, 403);
    const wider = await s.call('POST', '/v1/grants', { principal: 'user:erin', resource: 'lake.finance', permissions: ['SELECT'] }, aliceToken);
    assert.equal(wider.status, 403);
  });

  it('a non-admin cannot grant itself admin-only things such as guardrail changes', async () => {
    const r = await s.call('PUT', '/v1/guardrails/weaken', { actions: ['DROP'], resources: 'pii=true' }, aliceToken);
    assert.equal(r.status, 403);
  });
});

describe('data filters combine as a union of cells', () => {
  it('two filters on one table: rows are the union, each column visible only on its own filter’s rows', async () => {
    await s.call('POST', '/v1/users', { name: 'fay' });
    const east = await s.call('POST', '/v1/filters', { table: 'lake.claims.patient_claims', name: 'east_amounts', rowFilter: "region = 'East'", columns: ['claim_id', 'amount'] });
    assert.equal(east.status, 201, JSON.stringify(east.json));
    const west = await s.call('POST', '/v1/filters', { table: 'lake.claims.patient_claims', name: 'west_states', rowFilter: "region = 'West'", columns: ['claim_id', 'state'] });
    assert.equal(west.status, 201);
    for (const f of ['east_amounts', 'west_states']) {
      const g = await s.call('POST', '/v1/grants', { principal: 'fay', resource: { table: 'lake.claims.patient_claims', filter: f }, permissions: ['SELECT'] });
      assert.equal(g.status, 201, JSON.stringify(g.json));
    }
    const d = await decide('fay', 'lake.claims.patient_claims');
    assert.equal(d.decision, 'allow');
    assert.match(d.rowFilter, /East/);
    assert.match(d.rowFilter, /West/);
    const cols = Object.fromEntries(d.columns.map((c: { name: string; rowFilter: string | null }) => [c.name, c.rowFilter]));
    assert.deepEqual(Object.keys(cols).sort(), ['amount', 'claim_id', 'state']);
    assert.equal(cols['claim_id'], null);
    assert.match(cols['amount'], /East/);
    assert.doesNotMatch(cols['amount'], /West/);
    assert.match(cols['state'], /West/);
  });

  it('a filter predicate naming an unknown column is refused with the column named', async () => {
    const r = await s.call('POST', '/v1/filters', { table: 'lake.claims.patient_claims', name: 'bad', rowFilter: "hospitl = 'x'" });
    assert.equal(r.status, 400);
    assert.match(r.json.error.message + JSON.stringify(r.json.error.details), /hospitl/);
  });
});

describe('guardrails cap every grant', () => {
  it('a second, broader grant does not get past the PII guardrail', async () => {
    const g = await s.call('POST', '/v1/grants', { principal: 'alice', resource: 'lake', permissions: ['SELECT'] });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    assert.equal((await decide('alice', 'lake.claims.patient_claims.ssn')).decision, 'deny');
    assert.equal((await decide('alice', 'lake.claims.patient_claims.amount')).decision, 'allow');
  });

  it('who-can-access ssn lists only privacy officers', async () => {
    const r = await s.call('GET', '/v1/resources/lake.claims.patient_claims.ssn/access?action=SELECT');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json.holders.map((h: { principal: string }) => h.principal), ['user:carol']);
  });
});
