/**
 * Custom sources over HTTP: the ingest endpoint's own credential, quarantine,
 * batch limits, the CloudTrail/Steward UNION of the docs, and retention.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startTestServer, type TestServer } from '../support/server.js';

const golden = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden');
const cloudtrail = readFileSync(path.join(golden, 'cloudtrail.input.jsonl'), 'utf8');

describe('custom sources: ingest, quarantine, query, retention', () => {
  let s: TestServer;
  let key: string;
  const post = (source: string, body: string, k: string | null): Promise<Response> =>
    fetch(`${s.url}/v1/audit/ingest/${source}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson', ...(k === null ? {} : { authorization: `Bearer ${k}` }) },
      body,
    });

  before(async () => {
    // Anonymous ingest failures are one row per address and interval: a 1 s interval keeps this file fast.
    process.env['STEWARD_AUTH_FAILURE_INTERVAL'] = '1';
    s = await startTestServer();
    delete process.env['STEWARD_AUTH_FAILURE_INTERVAL'];
    await s.ws.services.audit?.service.stop();
    assert.equal((await s.call('POST', '/v1/audit/sources', { name: 'cloudtrail', mapping: 'cloudtrail' })).status, 201);
    assert.equal((await s.call('POST', '/v1/audit/sources', { name: 'azure', mapping: 'azure_activity', retentionDays: 30 })).status, 201);
    const k = await s.call('POST', '/v1/audit/sources/cloudtrail/keys', { name: 'trail-forwarder' });
    assert.equal(k.status, 201);
    key = k.json.key;
  });
  after(async () => s.close());

  it('ingests CloudTrail lines with an ingest key; unmappable and malformed lines go to quarantine with the reason', async () => {
    const r = await post('cloudtrail', cloudtrail, key);
    assert.equal(r.status, 202);
    const body = (await r.json()) as { accepted: number; quarantined: number; problems: { line: number; reason: string }[] };
    assert.equal(body.accepted, 8);
    assert.equal(body.quarantined, 2);
    assert.deepEqual(body.problems.map((p) => p.line), [9, 10]);
    const q = await s.call('GET', '/v1/audit/quarantine?source=cloudtrail');
    assert.equal(q.json.entries.length, 2);
    assert.ok(q.json.entries.some((e: { reason: string; record: string }) => /^not JSON/.test(e.reason) && e.record === 'this is not json'));
    assert.ok(q.json.entries.some((e: { reason: string }) => e.reason === 'record has no valid event time'));
  });

  it('refuses a stolen API token, a missing key, and another source\u2019s key at the ingest endpoint (its own token scope)', async () => {
    // Threat: an ordinary API token (even an admin's) or a key for one source writes forged events into another source.
    assert.equal((await post('cloudtrail', cloudtrail, s.adminToken)).status, 401);
    assert.equal((await post('cloudtrail', cloudtrail, null)).status, 401);
    assert.equal((await post('azure', '{}', key)).status, 401);
    const forged = key.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A'));
    assert.equal((await post('cloudtrail', cloudtrail, forged)).status, 401);
    // An ingest key opens nothing else.
    assert.equal((await s.call('GET', '/v1/audit/sources', undefined, key)).status, 401);
    // Every refusal is in the log: the wrong-source key at once, the anonymous ones counted in their interval's row.
    let refusals = 0;
    for (let i = 0; i < 50 && refusals < 4; i++) {
      if (i > 0) await new Promise((resolve) => setTimeout(resolve, 100));
      const { rows } = await s.ws.db.query<{ n: number }>(
        "SELECT coalesce(sum(coalesce((details->>'count')::int, 1)), 0)::int AS n FROM steward.decision_log WHERE action = 'auth.ingest-key' AND result = 'deny'",
      );
      refusals = Number(rows[0]?.n);
    }
    assert.equal(refusals, 4);
  });

  it('refuses oversized batches with 413', async () => {
    const many = Array.from({ length: 10_001 }, () => '{}').join('\n');
    assert.equal((await post('cloudtrail', many, key)).status, 413);
    const big = `{"x":"${'a'.repeat(6 * 1024 * 1024)}"}`;
    assert.equal((await post('cloudtrail', big, key)).status, 413);
    assert.equal((await s.call('POST', '/v1/audit/sources/cloudtrail/ingest', { lines: Array.from({ length: 10_001 }, () => '{}') })).status, 413);
  });

  it('a revoked key stops working', async () => {
    const k = await s.call('POST', '/v1/audit/sources/cloudtrail/keys', { name: 'temp' });
    assert.equal((await post('cloudtrail', '', k.json.key)).status, 202);
    assert.equal((await s.call('DELETE', `/v1/audit/keys/${k.json.id}`)).status, 200);
    assert.equal((await post('cloudtrail', '', k.json.key)).status, 401);
    const keys = await s.call('GET', '/v1/audit/keys');
    assert.ok(!JSON.stringify(keys.json).includes(k.json.key.slice(-20)), 'secrets are never listed');
  });

  it('flushes CloudTrail partitioned by the records\u2019 own region and account, and UNIONs with Steward\u2019s own events', async () => {
    await s.call('POST', '/v1/users', { name: 'zoe' });
    const f = await s.call('POST', '/v1/audit/flush', {});
    assert.equal(f.status, 200, JSON.stringify(f.json));
    const ct = f.json.results.find((r: { source: string }) => r.source === 'cloudtrail');
    assert.equal(ct.events, 8);
    assert.ok(ct.files.some((p: string) => p.includes('cloudtrail/region=us-west-2/accountId=444455556666/eventDay=20250305/')));
    assert.ok(ct.files.some((p: string) => p.includes('cloudtrail/region=eu-west-1/accountId=111122223333/eventDay=20250305/')));
    const sql = `
      SELECT api.operation, actor.user.uid, actor.user.name, src_endpoint.ip, time, severity, metadata.version,
             metadata.product.name AS product, metadata.product.vendor_name AS vendor, category_name, activity_name, type_uid
      FROM steward.security.steward WHERE class_uid = 6003
      UNION ALL
      SELECT api.operation, actor.user.uid, actor.user.name, src_endpoint.ip, time, severity, metadata.version,
             metadata.product.name, metadata.product.vendor_name, category_name, activity_name, type_uid
      FROM steward.security.cloudtrail WHERE class_uid = 6003
      ORDER BY time`;
    const q = await s.call('POST', '/v1/audit/query', { sql });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    const vendors = new Set(q.json.rows.map((r: { vendor: string }) => r.vendor));
    assert.deepEqual([...vendors].sort(), ['AWS', 'Steward']);
    assert.ok(q.json.rows.some((r: { operation: string }) => r.operation === 'DeleteBucket'));
    assert.equal((await s.call('GET', '/v1/audit/sources/cloudtrail/verify')).json.ok, true);
    const t = await s.call('GET', '/v1/tables/steward/security/cloudtrail');
    assert.equal(t.status, 200);
  });

  it('retention removes expired day partitions, and verify tells expired from deleted', async () => {
    assert.equal((await s.call('PUT', '/v1/audit/sources/cloudtrail/retention', { days: 30 })).status, 200);
    // The sample records are from March 2025; add today's events so something stays.
    const today = new Date().toISOString();
    const fresh = JSON.parse(cloudtrail.split('\n')[4] as string);
    fresh.eventTime = today;
    fresh.eventID = 'fresh-1';
    const r = await post('cloudtrail', JSON.stringify(fresh), key);
    assert.equal(r.status, 202);
    await s.call('POST', '/v1/audit/flush', { source: 'cloudtrail' });
    const ret = await s.call('POST', '/v1/audit/retention', { source: 'cloudtrail' });
    assert.equal(ret.status, 200);
    const res = ret.json.results[0];
    assert.equal(res.events, 8);
    assert.ok(res.removed.every((p: string) => /eventDay=2025030[45]$/.test(p)));
    const left = await fs.readdir(path.join(s.ws.services.config.lakeDir, 'security', 'ext', 'cloudtrail'), { recursive: true });
    assert.ok(!left.some((p) => p.includes('eventDay=2025')), left.join(','));
    const v = await s.call('GET', '/v1/audit/sources/cloudtrail/verify');
    assert.equal(v.json.ok, true, JSON.stringify(v.json.problems));
    assert.equal(v.json.expired, 8);
    assert.equal(v.json.events, 1);
    const q = await s.call('POST', '/v1/audit/query', { sql: 'SELECT count(*) AS n FROM security.cloudtrail' });
    assert.equal(q.json.rows[0].n, 1);
  });
});
