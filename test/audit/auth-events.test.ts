/**
 * Security events of authentication and grant revocation over HTTP, read back
 * from the lake: a token's successful use is one Authentication Success per
 * token per interval (failures every time), and grant.revoke names the grantee.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { validateOcsf } from './ocsf-validator.js';

describe('security lake: authentication successes and revoked grantees', () => {
  let s: TestServer;
  before(async () => {
    // Failed authentications are one row per source address and interval: a 1 s interval keeps this file fast.
    process.env['STEWARD_AUTH_FAILURE_INTERVAL'] = '1';
    s = await startTestServer();
    delete process.env['STEWARD_AUTH_FAILURE_INTERVAL'];
    await s.ws.services.audit?.service.stop(); // flushed by hand below
  });
  after(async () => s.close());

  async function lake(sql: string): Promise<any[]> {
    const f = await s.call('POST', '/v1/audit/flush', {});
    assert.equal(f.status, 200, JSON.stringify(f.json));
    const q = await s.call('POST', '/v1/audit/query', { sql });
    assert.equal(q.status, 200, JSON.stringify(q.json));
    return q.json.rows;
  }

  it('a token used many times is one Authentication Success; failures are Authentication Failures counted per address', async () => {
    const created = await s.call('POST', '/v1/tokens', { name: 'alice-cli', principal: 'user:alice', role: 'user' });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    for (let i = 0; i < 5; i++) assert.equal((await s.call('GET', '/v1/me', undefined, created.json.token)).status, 200);
    for (let i = 0; i < 2; i++) assert.equal((await s.call('GET', '/v1/me', undefined, 'stw_0000000000000000_not-a-real-token-not-a-real-token-not-a-rea')).status, 401);
    // The failures' row(s) are written when their 1 s interval ends.
    for (let i = 0; i < 50; i++) {
      const { rows: n } = await s.ws.db.query<{ n: number }>("SELECT coalesce(sum((details->>'count')::int), 0)::int AS n FROM steward.decision_log WHERE action = 'auth.token' AND result = 'deny'");
      if (Number(n[0]?.n) >= 2) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const rows = await lake(
      "SELECT * EXCLUDE (region, accountId, eventDay) FROM steward.security.steward WHERE class_uid = 3002 ORDER BY seq",
    );
    const alice = rows.filter((r) => r.user.uid === 'user:alice');
    assert.equal(alice.length, 1, JSON.stringify(rows.map((r) => [r.user.uid, r.status])));
    assert.equal(alice[0].status_id, 1);
    assert.equal(alice[0].activity_id, 1);
    assert.equal(alice[0].status, 'Success');
    // Two failures within one interval are one event (two if the interval ended between them), whose message carries the count.
    const failures = rows.filter((r) => r.status_id === 2);
    assert.ok(failures.length >= 1 && failures.length <= 2, JSON.stringify(failures.map((r) => r.message)));
    assert.equal(failures.reduce((n, r) => n + Number(/: (\d+) failed authentication/.exec(r.message)?.[1]), 0), 2);
    const strip = (v: unknown): unknown =>
      Array.isArray(v) ? v.map(strip) : v !== null && typeof v === 'object' ? Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null).map(([k, x]) => [k, strip(x)])) : v;
    for (const r of rows) assert.deepEqual(validateOcsf(strip(r) as Record<string, unknown>), []);
  });

  it('grant.revoke is an Account Change Detach Policy whose user is the grantee', async () => {
    // steward.security exists once the audit runtime started; no demo data needed.
    assert.equal((await s.call('POST', '/v1/users', { name: 'bob' })).status, 201);
    const g = await s.call('POST', '/v1/grants', { id: 'bob-claims-amount', principal: 'user:bob', resource: 'steward.security', permissions: ['SELECT'] });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    assert.equal((await s.call('DELETE', '/v1/grants/bob-claims-amount')).status, 200);
    const { rows: logged } = await s.ws.db.query<{ details: { grantee?: string; id?: string } }>("SELECT details FROM steward.decision_log WHERE action = 'grant.revoke'");
    assert.deepEqual({ grantee: logged[0]?.details.grantee, id: logged[0]?.details.id }, { grantee: 'user:bob', id: 'bob-claims-amount' });
    const rows = await lake("SELECT * FROM steward.security.steward WHERE metadata.event_code = 'grant.revoke'");
    assert.equal(rows.length, 1);
    assert.equal(rows[0].class_uid, 3001);
    assert.equal(rows[0].activity_id, 8);
    assert.equal(rows[0].user.uid, 'user:bob');
    assert.equal(rows[0].user.name, 'bob');
    assert.equal(rows[0].policy.uid, 'grant:bob-claims-amount');
  });
});
