/**
 * GET /v1/catalog/search: the console's catalog search by name and by tag
 * expression. It must never reveal a table the caller may not DESCRIBE.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let erin: string;
let alice: string;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
  erin = (await s.ws.services.tokens.createToken({ name: 't-erin', principal: 'user:erin', role: 'user' })).token;
  alice = (await s.ws.services.tokens.createToken({ name: 't-alice', principal: 'user:alice', role: 'user' })).token;
});
after(() => s.close());

const search = (q: string, token?: string) => s.call('GET', `/v1/catalog/search?${q}`, undefined, token);

describe('catalog search', () => {
  it('finds the columns of a tag expression with their effective tags, inherited ones included', async () => {
    const r = await search(`tags=${encodeURIComponent('pii=true AND domain=claims')}`);
    assert.equal(r.status, 200);
    assert.deepEqual(
      r.json.results.map((h: { resource: string }) => h.resource),
      ['lake.claims.patient_claims.patient_name', 'lake.claims.patient_claims.ssn'],
    );
    assert.equal(r.json.results[0].level, 'column');
    assert.equal(r.json.results[0].tags.domain, 'claims'); // inherited from lake.claims
  });

  it('finds tables and columns by a case-insensitive part of their name', async () => {
    const r = await search('name=REVENUE');
    assert.equal(r.status, 200);
    assert.ok(r.json.results.some((h: { resource: string; level: string }) => h.resource === 'lake.finance.revenue' && h.level === 'table'));
    assert.ok(r.json.results.every((h: { resource: string }) => h.resource.startsWith('lake.finance.revenue')));
  });

  // Threat: a search box that lists every table name leaks the catalog to users with no DESCRIBE on it.
  it('does not reveal tables the caller may not DESCRIBE', async () => {
    const none = await search('name=claims', erin);
    assert.equal(none.status, 200);
    assert.deepEqual(none.json.results, []);
    const some = await search('name=lake', alice);
    assert.ok(some.json.results.length > 0);
    assert.ok(some.json.results.every((h: { resource: string }) => h.resource.startsWith('lake.claims.patient_claims')));
  });

  // Threat: a malformed expression must be a 400 naming the position, not a 500 or an empty result read as "nothing matches".
  it('refuses a malformed tag expression with its position', async () => {
    const r = await search(`tags=${encodeURIComponent('pii=true AND (')}`);
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'STEWARD_E_PARSE');
    assert.match(r.json.error.message, /position \d+/);
  });
});
