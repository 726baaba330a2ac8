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
