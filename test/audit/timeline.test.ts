/**
 * GET /v1/audit/timeline: decisions over time, allow against deny, per
 * source, over the real security lake of the demo workspace, through real HTTP.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let alice: string;
let dana: string;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
  alice = (await s.ws.services.tokens.createToken({ name: 'alice', principal: 'user:alice', role: 'user' })).token;
  dana = (await s.ws.services.tokens.createToken({ name: 'dana', principal: 'user:dana', role: 'user' })).token;
  assert.equal((await s.call('POST', '/v1/query', { sql: 'SELECT ssn FROM lake.claims.patient_claims' }, alice)).status, 403);
  assert.equal((await s.call('POST', '/v1/query', { sql: 'SELECT claim_id FROM lake.claims.patient_claims LIMIT 1' }, alice)).status, 200);
  assert.equal((await s.call('POST', '/v1/audit/flush', {})).status, 200);
});
after(() => s.close());

interface Bucket {
  time: string;
  source: string;
  allowed: number;
  denied: number;
}

describe('audit timeline', () => {
  it("counts alice's refused and allowed queries under the gateway, in buckets aligned to the bucket size", async () => {
    const r = await s.call('GET', '/v1/audit/timeline?bucket=1h', undefined, dana);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const buckets = r.json.buckets as Bucket[];
    const gateway = buckets.filter((b) => b.source === 'gateway');
    assert.ok(gateway.reduce((n, b) => n + b.denied, 0) >= 1, JSON.stringify(buckets));
    assert.ok(gateway.reduce((n, b) => n + b.allowed, 0) >= 1, JSON.stringify(buckets));
    for (const b of buckets) assert.equal(Date.parse(b.time) % 3_600_000, 0, b.time);
    // The demo's setup is administration, not the gateway: the split by source is real.
    assert.ok(buckets.some((b) => b.source === 'administration'), JSON.stringify(buckets));
  });

  it('refuses a user without a grant on the lake table: the timeline is no back door around the gateway', async () => {
    // Threat: a user who may not read the security lake learns who was refused what, and when, from the aggregate.
    const r = await s.call('GET', '/v1/audit/timeline', undefined, alice);
    // The gateway's own answer for a table the caller may not DESCRIBE: not found, so it does not even learn the table exists.
    assert.equal(r.status, 404, JSON.stringify(r.json));
    assert.equal(r.json.error.code, 'STEWARD_E_NOT_FOUND');
    assert.equal(r.json.buckets, undefined);
  });

  it('logs each timeline read as a governed query of its caller', async () => {
    // Threat: reading the lake through a new route leaves no trace in the decision log.
    await s.call('GET', '/v1/audit/timeline?bucket=15m', undefined, dana);
    const h = await s.call('GET', '/v1/query/history?principal=user:dana&limit=5');
    assert.equal(h.status, 200);
    assert.ok((h.json.entries as { sql: string }[]).some((e) => e.sql.includes('steward.security.steward')), JSON.stringify(h.json));
  });

  it('refuses a bad bucket, a bad time, a window backwards and too many buckets with 400 naming the field', async () => {
    // Threat: malformed input reaching DuckDB as a 500, or a huge GROUP BY eating the server.
    const cases: [string, string][] = [
      ['bucket=2h', 'query.bucket'],
      ['from=yesterday', 'query.from'],
      ['to=2026-13-01T00:00:00Z', 'query.to'],
      ['from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', 'query.from'],
      ['from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=1m', 'query.bucket'],
      ['nope=1', 'query'],
    ];
    for (const [q, field] of cases) {
      const r = await s.call('GET', `/v1/audit/timeline?${q}`, undefined, dana);
      assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.json)}`);
      assert.ok((r.json.error.message as string).startsWith(field), `${q}: ${r.json.error.message}`);
    }
  });

  it('refuses a source that is not an identifier, so nothing can be spliced into the SQL', async () => {
    // Threat: SQL injection through the table name, the one part of the query that cannot be a parameter.
    const r = await s.call('GET', `/v1/audit/timeline?source=${encodeURIComponent("steward UNION SELECT 1,'x',1,1 --")}`, undefined, dana);
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, /^query\.source/);
  });
});
