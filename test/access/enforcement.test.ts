/**
 * Time-bound access ends in the query gateway at the instant it expires,
 * even with no scheduler running: the gateway asks the engine, and the
 * engine checks `notAfter` itself. Threat: PII access outliving its approval
 * because a timer was lost.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
});

after(async () => {
  await s.close();
});

const query = (principal: string, sql: string) => s.call('POST', '/v1/query', { sql, as: principal, format: 'json' });

describe('expiry in the query gateway', () => {
  it('a time-bound grant that lifts the PII guardrail lets alice read ssn until notAfter, then the gateway refuses', async () => {
    const before = await query('user:alice', 'SELECT ssn FROM claims.patient_claims LIMIT 1');
    assert.equal(before.status, 403, JSON.stringify(before.json));
    const notAfter = new Date(Date.now() + 4000).toISOString();
    const g = await s.call('POST', '/v1/grants', {
      id: 'temp-pii-alice',
      principal: 'user:alice',
      resource: { table: 'lake.claims.patient_claims', columns: ['ssn'] },
      permissions: ['SELECT'],
      notAfter,
      liftsGuardrails: ['pii-requires-privacy-officer'],
    });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    const during = await query('user:alice', 'SELECT ssn FROM claims.patient_claims LIMIT 1');
    assert.equal(during.status, 200, JSON.stringify(during.json).slice(0, 300));
    assert.match(JSON.stringify(during.json), /\d{3}-\d{2}-\d{4}/);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(notAfter) - Date.now()) + 200));
    const afterExpiry = await query('user:alice', 'SELECT ssn FROM claims.patient_claims LIMIT 1');
    assert.equal(afterExpiry.status, 403, JSON.stringify(afterExpiry.json).slice(0, 300));
    assert.doesNotMatch(JSON.stringify(afterExpiry.json), /\d{3}-\d{2}-\d{4}/);
  });
});

describe('session activity links the queries a request allowed', () => {
  it('alice reads ssn through her approved read-with-pii request; approvers see that query marked as elevated', async () => {
    const token = async (name: string) => (await s.ws.services.tokens.createToken({ name: `t-${name}`, principal: `user:${name}`, role: 'user' })).token;
    const [alice, carol] = [await token('alice'), await token('carol')];
    const made = await s.call('POST', '/v1/access/requests', { scope: 'lake.claims', permissionSet: 'read-with-pii', duration: '1h', justification: 'case 4711' }, alice);
    assert.equal(made.status, 201, JSON.stringify(made.json));
    const id = made.json.id as string;
    // Before activation: a query that succeeds is not elevated, and is not linked (the request is not active yet).
    assert.equal((await s.call('POST', '/v1/query', { sql: 'SELECT count(*) AS n FROM claims.patient_claims', format: 'json' }, alice)).status, 200);
    const approved = await s.call('POST', `/v1/access/requests/${id}/approve`, {}, carol);
    assert.equal(approved.status, 200, JSON.stringify(approved.json));
    assert.equal(approved.json.status, 'active');
    const pii = await s.call('POST', '/v1/query', { sql: 'SELECT ssn FROM claims.patient_claims LIMIT 1', format: 'json' }, alice);
    assert.equal(pii.status, 200, JSON.stringify(pii.json).slice(0, 300));
    const activity = await s.call('GET', `/v1/access/requests/${id}/activity`, undefined, carol);
    assert.equal(activity.status, 200, JSON.stringify(activity.json));
    const linked = (activity.json.activity as { action: string; resource: string; elevated: boolean; reason: string }[]).filter((a) => a.action === 'query.run');
    assert.deepEqual(
      linked.map((a) => [a.resource, a.elevated]),
      [['lake.claims.patient_claims', true]],
    );
    // Someone outside the request's audience sees nothing.
    const bob = await token('bob');
    assert.equal((await s.call('GET', `/v1/access/requests/${id}/activity`, undefined, bob)).status, 404);
  });
});
