/**
 * OpenID Connect sign-in against a real OpenID Provider (oidc-provider 8)
 * started by the test, and against a forged provider we control for the
 * token-level attacks a real provider will not mount. Every refusal is
 * checked to leave no session behind.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { Browser, signInAt, startForgedProvider, startOpenIdProvider, type Account, type ForgedProvider, type RunningProvider } from '../support/oidc.js';
import { CSRF_HEADER } from '../../src/server/browser-guard.js';

const CALLBACK = '/auth/oidc/callback';
const PROVIDER = 'acme-idp';

interface Finished {
  readonly res: Response;
  readonly html: string;
  readonly session: string | undefined;
}

/** Starts a sign-in at `server`, walks the provider's pages as `account`, and returns the callback URL the provider sent the browser to. */
async function toCallback(browser: Browser, server: TestServer, account: string, returnTo = '/catalog'): Promise<string> {
  const start = await browser.fetch(`${server.url}/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`);
  assert.equal(start.status, 302, await start.clone().text());
  const location = start.headers.get('location') ?? '';
  return signInAt(browser, location, account, `${server.url}${CALLBACK}`);
}

async function finish(browser: Browser, server: TestServer, callbackUrl: string): Promise<Finished> {
  const res = await browser.fetch(callbackUrl);
  const html = await res.text();
  return { res, html, session: browser.cookie(server.url, 'steward_session') };
}

async function membersOf(server: TestServer, group: string): Promise<string[]> {
  const r = await server.call('GET', '/v1/groups');
  return (r.json.groups as { name: string; members: string[] }[]).find((g) => g.name === group)?.members ?? [];
}

async function userExists(server: TestServer, name: string): Promise<boolean> {
  const r = await server.call('GET', '/v1/users');
  return (r.json.users as { name: string }[]).some((u) => u.name === name);
}

function assertRefused(f: Finished, status: number, pattern: RegExp): void {
  assert.equal(f.res.status, status, f.html);
  assert.match(f.res.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(f.html, /Sign-in refused/);
  assert.match(f.html, pattern);
  assert.equal(f.session, undefined, 'a refused sign-in set a session cookie');
  assert.ok(!(f.res.headers.getSetCookie().some((c) => c.startsWith('steward_session=') && !c.startsWith('steward_session=;'))));
}

describe('OIDC sign-in against a real OpenID Provider', () => {
  let op: RunningProvider;
  let s: TestServer;
  const accounts = new Map<string, Account>([
    ['alice-sub', { preferred_username: 'alice', email: 'alice@example.com', name: 'Alice Liddell', groups: ['eng-all', 'unrelated'] }],
    ['bob-sub', { preferred_username: 'bob', groups: ['nobody-maps-this'] }],
    ['carol-sub', { preferred_username: 'carol', groups: [] }],
    ['mallory-sub', { preferred_username: 'Mallory@evil.example', groups: ['eng-all'] }],
  ]);

  before(async () => {
    s = await startTestServer({
      config: async (url) => {
        op = await startOpenIdProvider(`${url}${CALLBACK}`, accounts);
        return { publicUrl: url, oidcIssuer: op.issuer, oidcClientId: op.clientId, oidcClientSecret: op.clientSecret, oidcProvider: PROVIDER };
      },
    });
    for (const g of ['engineering', 'auditors', 'hand-made']) assert.equal((await s.call('POST', '/v1/groups', { name: g })).status, 201);
    assert.equal((await s.call('POST', '/v1/idp-mappings', { provider: PROVIDER, externalGroup: 'eng-all', group: 'engineering' })).status, 201);
    assert.equal((await s.call('POST', '/v1/idp-mappings', { provider: PROVIDER, externalGroup: 'audit', group: 'auditors' })).status, 201);
    // A mapping of another provider must not admit anyone through this one.
    assert.equal((await s.call('POST', '/v1/idp-mappings', { provider: 'other-idp', externalGroup: 'nobody-maps-this', group: 'auditors' })).status, 201);
    assert.equal((await s.call('POST', '/v1/users', { name: 'carol' })).status, 201);
  });
  after(async () => {
    await s?.close();
    await op?.close();
  });

  it('tells the console that OIDC is enabled, and by which issuer, without authentication', async () => {
    const r = await s.call('GET', '/v1/auth/config', undefined, null);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { oidc: { enabled: true, issuer: op.issuer } });
  });

  it('signs alice in: just-in-time provisioned by a mapping, mapped groups from the claim, a session cookie, and an idp.sync decision-log entry', async () => {
    const browser = new Browser();
    const callback = await toCallback(browser, s, 'alice-sub', '/catalog?tab=tags');
    const f = await finish(browser, s, callback);
    assert.equal(f.res.status, 302, f.html);
    assert.equal(f.res.headers.get('location'), '/catalog?tab=tags');
    const setCookie = f.res.headers.getSetCookie().find((c) => c.startsWith('steward_session=')) ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(f.session !== undefined);
    // The binding cookie is spent.
    assert.equal(browser.cookie(s.url, 'steward_oidc'), undefined);
    const me = await browser.fetch(`${s.url}/v1/session`);
    const session = (await me.json()) as { principal: string; role: string; csrfToken: string };
    assert.equal(me.status, 200);
    assert.equal(session.principal, 'user:alice');
    assert.equal(session.role, 'user');
    assert.ok(await userExists(s, 'alice'));
    assert.deepEqual(await membersOf(s, 'engineering'), ['user:alice']);
    assert.deepEqual(await membersOf(s, 'auditors'), []);
    const log = await s.ws.services.decisionLog.listDecisions({ limit: 100 });
    const sync = log.find((e) => e.action === 'idp.sync' && e.resource === 'user:alice');
    assert.ok(sync !== undefined, 'no idp.sync entry');
    assert.deepEqual(sync.details?.['added'], ['engineering']);
    assert.equal(sync.details?.['created'], true);
    assert.ok(log.some((e) => e.action === 'auth.session.create' && e.actor === 'user:alice' && (e.details?.['via'] as string) === 'oidc'));
    // The OIDC session is a cookie session like any other: writes need the CSRF token.
    const out = await browser.fetch(`${s.url}/v1/session`, { method: 'DELETE' });
    assert.equal(out.status, 403);
    assert.equal((await browser.fetch(`${s.url}/v1/session`, { method: 'DELETE', headers: { [CSRF_HEADER]: session.csrfToken } })).status, 200);
  });

  it('follows the group claim at the next sign-in: a membership the claim no longer carries is removed and logged, hand-made groups are untouched', async () => {
    // Threat: someone removed from a group at the IdP keeps the access it gave in Steward.
    assert.equal((await s.call('POST', '/v1/groups/hand-made/members', { member: 'user:alice' })).status, 201);
    (accounts.get('alice-sub') as Account).groups = ['audit'];
    const browser = new Browser();
    const f = await finish(browser, s, await toCallback(browser, s, 'alice-sub'));
    assert.equal(f.res.status, 302, f.html);
    assert.deepEqual(await membersOf(s, 'engineering'), []);
    assert.deepEqual(await membersOf(s, 'auditors'), ['user:alice']);
    assert.deepEqual(await membersOf(s, 'hand-made'), ['user:alice']);
    const sync = (await s.ws.services.decisionLog.listDecisions({ limit: 100 })).find((e) => e.action === 'idp.sync' && e.details?.['created'] === false);
    assert.deepEqual(sync?.details?.['removed'], ['engineering']);
    assert.deepEqual(sync?.details?.['added'], ['auditors']);
  });

  it('refuses a user unknown to Steward whom no mapping of this provider admits, with an HTML page, and creates nobody', async () => {
    // Threat: anyone with an account at the IdP becomes a Steward user.
    const browser = new Browser();
    const f = await finish(browser, s, await toCallback(browser, s, 'bob-sub'));
    assertRefused(f, 403, /`bob` is not a Steward user and none of its groups is mapped/);
    assert.equal(await userExists(s, 'bob'), false);
  });

  it('signs in a user Steward already knows even with no mapped group', async () => {
    const browser = new Browser();
    const f = await finish(browser, s, await toCallback(browser, s, 'carol-sub'));
    assert.equal(f.res.status, 302, f.html);
    assert.equal(f.res.headers.get('location'), '/catalog');
  });

  it('refuses a user name that is not a Steward name rather than rewriting it (no `mallory@evil.example` → `mallory`)', async () => {
    // Threat: trimming an e-mail-like name to its local part would hand an outsider an insider's account.
    const browser = new Browser();
    const f = await finish(browser, s, await toCallback(browser, s, 'mallory-sub'));
    assertRefused(f, 403, /is not a Steward user name/);
  });

  it('refuses a callback whose state was tampered with (bad state)', async () => {
    // Threat: an attacker forges or swaps the state to inject its own authorization response.
    const browser = new Browser();
    const callback = new URL(await toCallback(browser, s, 'alice-sub'));
    callback.searchParams.set('state', 'A'.repeat(43));
    assertRefused(await finish(browser, s, callback.href), 400, /unknown, already used or expired sign-in/);
    callback.searchParams.delete('state');
    assertRefused(await finish(browser, s, callback.href), 400, /unknown, already used or expired sign-in/);
  });

  it('refuses a replayed callback: a code and its state work once', async () => {
    // Threat: a callback URL read from history, a log or a Referer signs its reader in.
    const browser = new Browser();
    const callback = await toCallback(browser, s, 'carol-sub');
    const first = await finish(browser, s, callback);
    assert.equal(first.res.status, 302, first.html);
    const replayer = new Browser();
    replayer.setCookie(s.url, 'steward_oidc', 'whatever');
    assertRefused(await finish(replayer, s, callback), 400, /unknown, already used or expired/);
  });

  it('refuses a replayed code inside a fresh sign-in of the attacker (the provider and PKCE refuse it)', async () => {
    // Threat: a stolen authorization code injected into the attacker's own, valid sign-in.
    const victim = new Browser();
    const stolen = new URL(await toCallback(victim, s, 'carol-sub'));
    assert.equal((await finish(victim, s, stolen.href)).res.status, 302);
    const attacker = new Browser();
    const own = new URL(await toCallback(attacker, s, 'alice-sub'));
    own.searchParams.set('code', stolen.searchParams.get('code') ?? '');
    assertRefused(await finish(attacker, s, own.href), 401, /failed verification/);
  });

  it('refuses a callback opened in a browser that did not start the sign-in (login CSRF)', async () => {
    // Threat: the attacker signs in at the IdP as itself and sends the victim the callback link, so the victim works inside the attacker's account.
    const attacker = new Browser();
    const callback = await toCallback(attacker, s, 'alice-sub');
    const victim = new Browser();
    assertRefused(await finish(victim, s, callback), 400, /started in another browser/);
  });

  it('never adopts a session cookie planted before an OIDC sign-in', async () => {
    // Threat: session fixation through the OIDC door.
    const browser = new Browser();
    browser.setCookie(s.url, 'steward_session', 'P'.repeat(43));
    const f = await finish(browser, s, await toCallback(browser, s, 'carol-sub'));
    assert.equal(f.res.status, 302, f.html);
    assert.ok(f.session !== undefined && f.session !== 'P'.repeat(43));
  });

  it('refuses a returnTo that would leave the origin (open redirect)', async () => {
    // Threat: our sign-in used as a trusted-looking relay to a phishing page.
    for (const returnTo of ['//evil.example/x', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)', '/%0d%0aSet-Cookie:x=1'.replace('%0d%0a', '\r\n')]) {
      const res = await fetch(`${s.url}/auth/oidc/login?returnTo=${encodeURIComponent(returnTo)}`, { redirect: 'manual' });
      assert.equal(res.status, 400, returnTo);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'STEWARD_E_VALIDATION');
    }
  });

  it('stops starting sign-ins past 10000 in progress (an unauthenticated GET that writes a row cannot fill the database)', async () => {
    // Threat: a script hammering /auth/oidc/login to grow the pending table without bound.
    await s.ws.db.query(
      `INSERT INTO steward.oidc_logins (state_hash, code_verifier, nonce, return_to, browser_hash, created_at, expires_at)
       SELECT encode(sha256(('flood' || i)::bytea), 'hex'), 'v', 'n', '/', encode(sha256(('b' || i)::bytea), 'hex'), now(), now() + interval '10 minutes'
       FROM generate_series(1, 10000) AS i`,
    );
    try {
      const res = await fetch(`${s.url}/auth/oidc/login`, { redirect: 'manual' });
      assert.equal(res.status, 429);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'STEWARD_E_RATE_LIMITED');
    } finally {
      await s.ws.db.query(`DELETE FROM steward.oidc_logins WHERE nonce = 'n' AND code_verifier = 'v'`);
    }
    assert.equal((await fetch(`${s.url}/auth/oidc/login`, { redirect: 'manual' })).status, 302);
  });

  it('refuses the provider saying no (error response) with a page, not a 500', async () => {
    const browser = new Browser();
    const f = await finish(browser, s, `${s.url}${CALLBACK}?error=access_denied&state=x`);
    assertRefused(f, 401, /refused the sign-in: `access_denied`/);
  });
});

describe('OIDC sign-in refuses forged ID tokens', () => {
  let op: ForgedProvider;
  let s: TestServer;

  before(async () => {
    s = await startTestServer({
      config: async (url) => {
        op = await startForgedProvider();
        return { publicUrl: url, oidcIssuer: op.issuer, oidcClientId: op.clientId, oidcClientSecret: op.clientSecret, oidcProvider: PROVIDER };
      },
    });
    assert.equal((await s.call('POST', '/v1/users', { name: 'alice' })).status, 201);
  });
  after(async () => {
    await s?.close();
    await op?.close();
  });

  async function forgedSignIn(): Promise<Finished> {
    const browser = new Browser();
    const start = await browser.fetch(`${s.url}/auth/oidc/login`);
    assert.equal(start.status, 302);
    const atProvider = await browser.fetch(start.headers.get('location') ?? '');
    const callback = atProvider.headers.get('location') ?? '';
    assert.ok(callback.startsWith(`${s.url}${CALLBACK}`), callback);
    return finish(browser, s, callback);
  }

  it('accepts a well-formed token from the forged provider (the refusals below are about the flaw, not the setup)', async () => {
    op.forge({});
    const f = await forgedSignIn();
    assert.equal(f.res.status, 302, f.html);
    assert.ok(f.session !== undefined);
  });

  it('refuses an ID token from the wrong issuer', async () => {
    // Threat: a token minted by another provider (or another tenant) accepted as ours.
    op.forge({ claims: { iss: 'https://evil.example' } });
    assertRefused(await forgedSignIn(), 401, /failed verification.*iss/);
  });

  it('refuses a provider whose discovery document names another issuer', async () => {
    // Threat: a mix-up where our configured issuer's metadata points at someone else's.
    const other = await startTestServer({
      config: (url) => ({ publicUrl: url, oidcIssuer: op.issuer, oidcClientId: op.clientId, oidcClientSecret: op.clientSecret }),
    });
    try {
      op.forge({ discoveryIssuer: 'https://evil.example' });
      const res = await fetch(`${other.url}/auth/oidc/login`, { redirect: 'manual' });
      assert.equal(res.status, 502);
      assert.match(await res.text(), /does not match the configured issuer/);
      assert.equal(res.headers.get('location'), null);
    } finally {
      op.forge({});
      await other.close();
    }
  });

  it('refuses an expired ID token', async () => {
    // Threat: an old token replayed long after it was issued.
    const past = Math.floor(Date.now() / 1000) - 3600;
    op.forge({ claims: { iat: past - 300, exp: past } });
    assertRefused(await forgedSignIn(), 401, /failed verification.*exp/);
  });

  it('refuses an unsigned ID token (`alg: none`)', async () => {
    // Threat: anyone can write an unsigned token naming any user.
    op.forge({ alg: 'none' });
    assertRefused(await forgedSignIn(), 401, /failed verification/);
  });

  it('refuses an ID token issued to another client (audience mismatch)', async () => {
    // Threat: a token the victim gave another application replayed to Steward.
    op.forge({ claims: { aud: 'some-other-app' } });
    assertRefused(await forgedSignIn(), 401, /failed verification.*aud/);
  });

  it('refuses an ID token signed with a key the provider never published (unknown kid)', async () => {
    // Threat: a token signed with the attacker's own key, naming a kid the JWKS does not hold.
    op.forge({ kid: 'attacker-key', foreignKey: true });
    assertRefused(await forgedSignIn(), 401, /failed verification/);
    // And the published kid with a foreign key: the signature must still be checked.
    op.forge({ foreignKey: true });
    assertRefused(await forgedSignIn(), 401, /failed verification/);
  });

  it('refuses an ID token whose nonce is not the one this sign-in sent', async () => {
    // Threat: a token captured from another sign-in injected into this one.
    op.forge({ claims: { nonce: 'someone-elses-nonce' } });
    assertRefused(await forgedSignIn(), 401, /failed verification.*nonce/);
  });
});

describe('OIDC sign-in when not configured', () => {
  it('says it is disabled and offers no OIDC routes', async () => {
    const s = await startTestServer();
    try {
      const r = await s.call('GET', '/v1/auth/config', undefined, null);
      assert.deepEqual(r.json, { oidc: { enabled: false } });
      assert.equal((await fetch(`${s.url}/auth/oidc/login`, { redirect: 'manual' })).status, 404);
    } finally {
      await s.close();
    }
  });
});
