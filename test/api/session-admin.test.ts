/**
 * Admins list and revoke console sessions (`GET /v1/sessions`,
 * `DELETE /v1/sessions/:id`), attacked through real HTTP: a non-admin trying
 * either, a revoked cookie that keeps working, a listing that leaks what
 * opens a session, and a forged revocation.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.js';
import { CSRF_HEADER } from '../../src/server/browser-guard.js';

let s: TestServer;
let aliceToken: string;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/users', { name: 'alice' })).status, 201);
  aliceToken = (await s.call('POST', '/v1/tokens', { name: 'alice-laptop', principal: 'user:alice', role: 'user' })).json.token;
});
after(() => s.close());

interface SignedIn {
  readonly secret: string;
  readonly csrfToken: string;
}

async function signIn(token: string): Promise<SignedIn> {
  const res = await fetch(`${s.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
  assert.equal(res.status, 201);
  const secret = /^steward_session=([^;]+);/.exec(res.headers.get('set-cookie') ?? '')?.[1];
  assert.ok(secret !== undefined);
  return { secret, csrfToken: ((await res.json()) as { csrfToken: string }).csrfToken };
}

const cookie = (a: SignedIn): Record<string, string> => ({ cookie: `steward_session=${a.secret}` });
const publicId = (a: SignedIn): string => createHash('sha256').update(a.secret).digest('hex').slice(0, 16);

async function fetchJson(method: string, path: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const res = await fetch(`${s.url}${path}`, { method, headers });
  return { status: res.status, text: await res.text() };
}

describe('admins list and revoke sessions', () => {
  it('refuses a non-admin listing or revoking sessions, by token and by cookie', async () => {
    // Threat: any signed-in user learns who else is signed in, or signs an admin out.
    const alice = await signIn(aliceToken);
    const admin = await signIn(s.adminToken);
    assert.equal((await s.call('GET', '/v1/sessions', undefined, aliceToken)).status, 403);
    assert.equal((await fetchJson('GET', '/v1/sessions', cookie(alice))).status, 403);
    assert.equal((await s.call('DELETE', `/v1/sessions/${publicId(admin)}`, undefined, aliceToken)).status, 403);
    const forged = await fetchJson('DELETE', `/v1/sessions/${publicId(admin)}`, { ...cookie(alice), [CSRF_HEADER]: alice.csrfToken, origin: s.url });
    assert.equal(forged.status, 403, forged.text);
    // The admin's session is untouched.
    assert.equal((await fetchJson('GET', '/v1/me', cookie(admin))).status, 200);
  });

  it("a revoked session's cookie stops working at once, and the revocation is in the decision log", async () => {
    // Threat: a stolen cookie keeps working after the admin revoked it (a cache, a session kept in memory).
    const alice = await signIn(aliceToken);
    assert.equal((await fetchJson('GET', '/v1/me', cookie(alice))).status, 200);
    const list = await s.call('GET', '/v1/sessions');
    assert.equal(list.status, 200);
    const listed = (list.json.sessions as { id: string; principal: string; via: string }[]).find((x) => x.id === publicId(alice));
    assert.deepEqual({ principal: listed?.principal, via: listed?.via }, { principal: 'user:alice', via: 'token' });
    assert.equal((await s.call('DELETE', `/v1/sessions/${publicId(alice)}`)).status, 200);
    const after = await fetchJson('GET', '/v1/me', cookie(alice));
    assert.equal(after.status, 401, after.text);
    assert.ok(!((await s.call('GET', '/v1/sessions')).json.sessions as { id: string }[]).some((x) => x.id === publicId(alice)), 'still listed');
    const log = await s.ws.services.decisionLog.listDecisions({ limit: 50 });
    assert.ok(log.some((d) => d.action === 'auth.session.revoke' && d.actor === 'user:admin' && JSON.stringify(d.details).includes(publicId(alice))), JSON.stringify(log.slice(0, 3)));
    // Revoking it again: it is no longer live.
    assert.equal((await s.call('DELETE', `/v1/sessions/${publicId(alice)}`)).status, 404);
  });

  it('never shows a session secret, its full hash or its CSRF token in the listing', async () => {
    // Threat: whoever reads the listing (an admin's screen, a proxy log) replays a session or forges its writes.
    const alice = await signIn(aliceToken);
    const text = (await fetchJson('GET', '/v1/sessions', { authorization: `Bearer ${s.adminToken}` })).text;
    assert.ok(text.includes(publicId(alice)), 'the session is not listed');
    const fullHash = createHash('sha256').update(alice.secret).digest('hex');
    for (const [what, secret] of [['secret', alice.secret], ['full hash', fullHash], ['CSRF token', alice.csrfToken], ['API token', aliceToken]] as const) {
      assert.ok(!text.includes(secret), `the listing holds the session's ${what}`);
    }
    assert.ok(!/csrf/i.test(text), text.slice(0, 300));
  });

  it('refuses an admin cookie revocation without the CSRF token (a forged page cannot sign people out)', async () => {
    // Threat: a cross-site request riding the admin's cookie revokes sessions.
    const admin = await signIn(s.adminToken);
    const alice = await signIn(aliceToken);
    const r = await fetchJson('DELETE', `/v1/sessions/${publicId(alice)}`, cookie(admin));
    assert.equal(r.status, 403, r.text);
    assert.equal((await fetchJson('GET', '/v1/me', cookie(alice))).status, 200);
    const ok = await fetchJson('DELETE', `/v1/sessions/${publicId(alice)}`, { ...cookie(admin), [CSRF_HEADER]: admin.csrfToken, origin: s.url });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await fetchJson('GET', '/v1/me', cookie(alice))).status, 401);
  });

  it('refuses a malformed session id with 400 naming params.id, and an unknown one with 404', async () => {
    // Threat: an id pattern (a prefix, a wildcard) revoking sessions it does not name.
    for (const id of ['abc', '%25', 'ABCDEF0123456789', '0123456789abcdef0']) {
      const r = await s.call('DELETE', `/v1/sessions/${encodeURIComponent(id)}`);
      assert.equal(r.status, 400, `${id}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, /^path\.id/);
    }
    assert.equal((await s.call('DELETE', '/v1/sessions/0123456789abcdef')).status, 404);
  });
});
