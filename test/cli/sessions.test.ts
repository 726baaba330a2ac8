/**
 * `steward sessions list|revoke` (the real binary against a real server):
 * the CLI twin of the admin page's session list.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.js';
import { steward } from '../support/cli.js';

let s: TestServer;
let aliceToken: string;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/users', { name: 'alice' })).status, 201);
  aliceToken = (await s.call('POST', '/v1/tokens', { name: 'alice', principal: 'user:alice', role: 'user' })).json.token;
});
after(() => s.close());

async function aliceSession(): Promise<{ cookie: string; id: string }> {
  const res = await fetch(`${s.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: aliceToken }) });
  assert.equal(res.status, 201);
  const secret = /^steward_session=([^;]+);/.exec(res.headers.get('set-cookie') ?? '')?.[1] as string;
  await res.arrayBuffer();
  return { cookie: `steward_session=${secret}`, id: createHash('sha256').update(secret).digest('hex').slice(0, 16) };
}

const as = (token: string): string[] => ['--url', s.url, '--token', token];

describe('steward sessions', () => {
  it("lists alice's session and revokes it: her cookie stops working", async () => {
    // Threat: an admin at a terminal cannot end a stolen console session.
    const a = await aliceSession();
    const list = await steward([...as(s.adminToken), 'sessions', 'list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok((JSON.parse(list.stdout) as { sessions: { id: string }[] }).sessions.some((x) => x.id === a.id), list.stdout);
    const revoke = await steward([...as(s.adminToken), 'sessions', 'revoke', a.id]);
    assert.equal(revoke.code, 0, revoke.stderr);
    assert.match(revoke.stdout, new RegExp(`revoked session ${a.id}`));
    assert.equal((await fetch(`${s.url}/v1/me`, { headers: { cookie: a.cookie } })).status, 401);
  });

  it('refuses a non-admin and a malformed id with a non-zero exit and a message', async () => {
    // Threat: any user listing who is signed in, or an id pattern revoking sessions it does not name.
    const denied = await steward([...as(aliceToken), 'sessions', 'list']);
    assert.notEqual(denied.code, 0);
    assert.match(denied.stderr, /admin/);
    const bad = await steward([...as(s.adminToken), 'sessions', 'revoke', 'abc%']);
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /path\.id/);
  });
});
