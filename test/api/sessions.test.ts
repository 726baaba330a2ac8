/**
 * Cookie sessions of the web console, attacked through real HTTP: forged
 * writes (CSRF), session fixation, sessions that should be dead, the cookie's
 * flags, and secrets leaking into logs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { CSRF_HEADER } from '../../src/server/browser-guard.js';
import { allRoutes } from '../../src/server/routes.js';
import { createTestDatabase } from '../support/postgres.js';

let s: TestServer;
/** Everything the process wrote to stdout/stderr while this file ran (the server runs in-process). */
const output: string[] = [];
const restore: (() => void)[] = [];
let aliceToken: string;
let aliceTokenId: string;

before(async () => {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      output.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return write(chunk, ...rest);
    }) as typeof stream.write;
    restore.push(() => (stream.write = write));
  }
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/groups', { name: 'privacy-officers' })).status, 201);
  for (const name of ['mallory', 'alice']) assert.equal((await s.call('POST', '/v1/users', { name })).status, 201);
  const t = await s.call('POST', '/v1/tokens', { name: 'alice-laptop', principal: 'user:alice', role: 'user' });
  assert.equal(t.status, 201);
  aliceToken = t.json.token;
  aliceTokenId = t.json.id;
});
after(async () => {
  for (const r of restore) r();
  await s.close();
});

interface SignedIn {
  readonly secret: string;
  readonly csrfToken: string;
  readonly setCookie: string;
  readonly body: { principal: string; role: string; csrfToken: string; idleExpiresAt: string; expiresAt: string };
}

async function signIn(token: string, headers: Record<string, string> = {}): Promise<SignedIn> {
  const res = await fetch(`${s.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ token }) });
  assert.equal(res.status, 201, await res.clone().text());
  const setCookie = res.headers.get('set-cookie') ?? '';
  const secret = /^steward_session=([^;]+);/.exec(setCookie)?.[1];
  assert.ok(secret !== undefined, setCookie);
  const body = (await res.json()) as SignedIn['body'];
  return { secret, csrfToken: body.csrfToken, setCookie, body };
}

const cookieOf = (secret: string): Record<string, string> => ({ cookie: `steward_session=${secret}` });

async function get(path: string, headers: Record<string, string>): Promise<{ status: number; json: any }> {
  const res = await fetch(`${s.url}${path}`, { headers });
  return { status: res.status, json: await res.json() };
}

async function addMallory(headers: Record<string, string>, body = JSON.stringify({ member: 'user:mallory' })): Promise<number> {
  const res = await fetch(`${s.url}/v1/groups/privacy-officers/members`, { method: 'POST', headers, body });
  await res.arrayBuffer();
  return res.status;
}

const officers = async (): Promise<string[]> => {
  const r = await s.call('GET', '/v1/groups');
  return (r.json.groups as { name: string; members: string[] }[]).find((g) => g.name === 'privacy-officers')?.members ?? [];
};

async function removeMallory(): Promise<void> {
  if ((await officers()).includes('user:mallory')) assert.equal((await s.call('DELETE', '/v1/groups/privacy-officers/members/user:mallory')).status, 200);
}

describe('signing in with an API token', () => {
  it('sets an HttpOnly, SameSite=Strict, Path=/ session cookie and returns the CSRF token, not the secret, in the body', async () => {
    // Threat: a cookie readable by script, sent cross-site, or scoped wider than this host hands the session to an attacker.
    const a = await signIn(s.adminToken);
    const flags = a.setCookie.split(';').map((f) => f.trim().toLowerCase());
    assert.ok(flags.includes('httponly'), a.setCookie);
    assert.ok(flags.includes('samesite=strict'), a.setCookie);
    assert.ok(flags.includes('path=/'), a.setCookie);
    assert.ok(!flags.some((f) => f.startsWith('domain=')), a.setCookie);
    // Plain http on loopback: a Secure cookie would never come back.
    assert.ok(!flags.includes('secure'), a.setCookie);
    assert.equal(a.body.principal, 'user:admin');
    assert.equal(a.body.role, 'admin');
    assert.ok(a.csrfToken.length >= 43);
    assert.ok(!JSON.stringify(a.body).includes(a.secret));
    assert.ok(Date.parse(a.body.idleExpiresAt) <= Date.parse(a.body.expiresAt));
  });

  it('marks the cookie Secure when the request came over HTTPS', async () => {
    // Threat: a session cookie without Secure leaks over a later plain-http request to the same host.
    const res = await s.ws.app.request('https://steward.example/v1/sessions', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ token: s.adminToken }),
    });
    assert.equal(res.status, 201);
    assert.match(res.headers.get('set-cookie') ?? '', /; Secure/);
  });

  it('refuses a wrong token with 401 and no cookie', async () => {
    // Threat: a sign-in that sets a cookie before checking the token.
    for (const token of ['stw_0000000000000000_' + 'A'.repeat(43), 'nonsense']) {
      const res = await fetch(`${s.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('set-cookie'), null);
    }
  });

  it('refuses a malformed sign-in body with 400 or 415 naming the problem, never 500', async () => {
    // Threat: garbage input turning into an internal error (and a stack trace in the log).
    const cases: [string, string, number][] = [
      ['application/json', '{"token": 5}', 400],
      ['application/json', '{"token": "x", "admin": true}', 400],
      ['application/json', '{', 400],
      ['text/plain', JSON.stringify({ token: s.adminToken }), 415],
    ];
    for (const [type, body, status] of cases) {
      const res = await fetch(`${s.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': type }, body });
      assert.equal(res.status, status, body);
    }
  });

  it('a cookie session reads the API as its token would, and GET /v1/session returns the same CSRF token', async () => {
    const a = await signIn(aliceToken);
    const me = await get('/v1/me', cookieOf(a.secret));
    assert.equal(me.status, 200);
    assert.equal(me.json.principal, 'user:alice');
    assert.equal(me.json.role, 'user');
    const session = await get('/v1/session', cookieOf(a.secret));
    assert.equal(session.status, 200);
    assert.equal(session.json.csrfToken, a.csrfToken);
    // A user session keeps its token's role: no admin route opens.
    assert.equal((await get('/v1/users', cookieOf(a.secret))).status, 403);
  });

  it('GET /v1/session without a cookie is 401, even with a bearer token', async () => {
    assert.equal((await get('/v1/session', {})).status, 401);
    assert.equal((await get('/v1/session', { authorization: `Bearer ${s.adminToken}` })).status, 401);
  });
});

describe('cross-site request forgery on cookie-authenticated writes', () => {
  it('refuses a cookie write with no CSRF token (403) and adds no privacy officer', async () => {
    // Threat: a page that can make the browser send the ambient cookie forges an admin write.
    const a = await signIn(s.adminToken);
    const status = await addMallory({ ...cookieOf(a.secret), 'content-type': 'application/json' });
    assert.equal(status, 403);
    assert.deepEqual(await officers(), []);
  });

  it('refuses a cookie write with a wrong CSRF token, or the CSRF token of another session (403)', async () => {
    // Threat: a guessed token, or an attacker's own session's token replayed with the victim's cookie.
    const victim = await signIn(s.adminToken);
    const attacker = await signIn(aliceToken);
    for (const csrf of ['x', victim.csrfToken.slice(0, -1) + (victim.csrfToken.endsWith('A') ? 'B' : 'A'), attacker.csrfToken, `${victim.csrfToken}x`]) {
      const status = await addMallory({ ...cookieOf(victim.secret), 'content-type': 'application/json', [CSRF_HEADER]: csrf });
      assert.equal(status, 403, csrf);
    }
    assert.deepEqual(await officers(), []);
  });

  it('refuses a cookie write with the right CSRF token from a wrong origin (403)', async () => {
    // Threat: a token leaked to another site is still useless from there.
    const a = await signIn(s.adminToken);
    for (const origin of ['https://evil.example', 'null']) {
      const status = await addMallory({ ...cookieOf(a.secret), 'content-type': 'application/json', [CSRF_HEADER]: a.csrfToken, origin });
      assert.equal(status, 403, origin);
    }
    assert.equal(await addMallory({ ...cookieOf(a.secret), 'content-type': 'application/json', [CSRF_HEADER]: a.csrfToken, 'sec-fetch-site': 'cross-site' }), 403);
    assert.deepEqual(await officers(), []);
  });

  it('refuses a cross-site form post (text/plain and x-www-form-urlencoded) that would add a privacy officer', async () => {
    // Threat: an auto-submitting HTML form on evil.example; a form can send the cookie but neither JSON nor custom headers.
    const a = await signIn(s.adminToken);
    const forms: [string, string][] = [
      ['text/plain', '{"member":"user:mallory","x":"="}'],
      ['application/x-www-form-urlencoded', 'member=user%3Amallory'],
    ];
    for (const [type, body] of forms) {
      for (const site of [{ origin: 'https://evil.example', 'sec-fetch-site': 'cross-site' }, {}] as Record<string, string>[]) {
        const status = await addMallory({ ...cookieOf(a.secret), 'content-type': type, ...site }, body);
        assert.ok(status === 403 || status === 415, `${type} answered ${status}`);
      }
    }
    assert.deepEqual(await officers(), []);
  });

  it('refuses every state-changing route of the API authenticated by an admin cookie without the CSRF token (403)', async () => {
    // Threat: one write route that forgot the check is enough for a forged request.
    const a = await signIn(s.adminToken);
    const concrete = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (name === 'resource' ? 'lake.claims' : 'x'));
    for (const r of allRoutes.filter((x) => x.method !== 'get')) {
      const res = await fetch(`${s.url}${concrete(r.path)}`, { method: r.method.toUpperCase(), headers: { ...cookieOf(a.secret), 'content-type': 'application/json' }, body: '{}' });
      // A public write (the security lake's ingest, with its own key) gives a cookie nothing to forge with: 401.
      assert.equal(res.status, r.auth === 'public' ? 401 : 403, `${r.method} ${r.path} answered ${res.status}`);
      if (r.auth !== 'public') assert.match(((await res.json()) as { error: { message: string } }).error.message, /CSRF/);
      else await res.arrayBuffer();
    }
    assert.deepEqual(await officers(), []);
  });

  it('accepts the same write with the session CSRF token from the own origin (the checks above can pass)', async () => {
    const a = await signIn(s.adminToken);
    const status = await addMallory({ ...cookieOf(a.secret), 'content-type': 'application/json', [CSRF_HEADER]: a.csrfToken, origin: s.url });
    assert.equal(status, 201);
    assert.deepEqual(await officers(), ['user:mallory']);
    await removeMallory();
  });

  it('judges a request that carries a bearer token by the token alone, cookie ignored', async () => {
    // Threat: a valid cookie rescuing a request whose explicit credential is forged.
    const a = await signIn(s.adminToken);
    const res = await fetch(`${s.url}/v1/me`, { headers: { ...cookieOf(a.secret), authorization: 'Bearer stw_0000000000000000_' + 'A'.repeat(43) } });
    assert.equal(res.status, 401);
    // And a bearer write needs no CSRF header even if a cookie rides along (the CLI is not a browser).
    assert.equal(await addMallory({ ...cookieOf(a.secret), authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' }), 201);
    await removeMallory();
  });
});

describe('session fixation', () => {
  it('never adopts a cookie planted before sign-in: a new secret is issued and the planted value opens nothing', async () => {
    // Threat: an attacker plants a session id it knows in the victim's browser and rides the session once the victim signs in.
    const planted = 'P'.repeat(43);
    const a = await signIn(s.adminToken, cookieOf(planted));
    assert.notEqual(a.secret, planted);
    assert.equal((await get('/v1/me', cookieOf(planted))).status, 401);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).json.principal, 'user:admin');
  });

  it('never upgrades a live planted session to the victim: the attacker keeps nothing of the victim, and the old session is revoked', async () => {
    // Threat: the attacker signs in as itself, plants its own live cookie, and the victim's sign-in upgrades that session in place.
    const attacker = await signIn(aliceToken);
    const victim = await signIn(s.adminToken, cookieOf(attacker.secret));
    assert.notEqual(victim.secret, attacker.secret);
    assert.notEqual(victim.csrfToken, attacker.csrfToken);
    const riding = await get('/v1/me', cookieOf(attacker.secret));
    assert.equal(riding.status, 401);
    assert.equal((await get('/v1/me', cookieOf(victim.secret))).json.principal, 'user:admin');
  });

  it('refuses a request with two session cookies (a sibling subdomain planted one) rather than guessing', async () => {
    // Threat: cookie tossing from another subdomain makes the browser send the attacker's session next to the victim's.
    const a = await signIn(s.adminToken);
    const b = await signIn(aliceToken);
    const res = await get('/v1/me', { cookie: `steward_session=${b.secret}; steward_session=${a.secret}` });
    assert.equal(res.status, 401);
  });
});

describe('sessions that must be dead', () => {
  it('sign-out revokes the session on the server: the same cookie replayed opens nothing', async () => {
    // Threat: a "signed out" cookie copied earlier (shared machine, proxy log) still works.
    const a = await signIn(s.adminToken);
    const out = await fetch(`${s.url}/v1/session`, { method: 'DELETE', headers: { ...cookieOf(a.secret), [CSRF_HEADER]: a.csrfToken } });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie') ?? '', /^steward_session=;.*Max-Age=0/);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 401);
    assert.equal((await get('/v1/session', cookieOf(a.secret))).status, 401);
  });

  it('refuses a sign-out without the CSRF token (a forged sign-out leaves the session alive)', async () => {
    // Threat: a cross-site page signs the admin out at will.
    const a = await signIn(s.adminToken);
    const out = await fetch(`${s.url}/v1/session`, { method: 'DELETE', headers: cookieOf(a.secret) });
    assert.equal(out.status, 403);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 200);
  });

  it('refuses a session idle longer than its idle timeout (30 min by default), and a use within it resets the timer', async () => {
    // Threat: a session left open on an unattended browser stays usable forever.
    const a = await signIn(s.adminToken);
    const id = await sessionId(a.secret);
    await s.ws.db.query(`UPDATE steward.sessions SET last_seen_at = now() - interval '29 minutes' WHERE id = $1`, [id]);
    const alive = await get('/v1/session', cookieOf(a.secret));
    assert.equal(alive.status, 200);
    assert.ok(Date.parse(alive.json.idleExpiresAt) > Date.now() + 25 * 60_000, alive.json.idleExpiresAt);
    await s.ws.db.query(`UPDATE steward.sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = $1`, [id]);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 401);
  });

  it('refuses a session past its absolute expiry even while in use', async () => {
    // Threat: a stolen cookie kept alive by polling lives forever.
    const a = await signIn(s.adminToken);
    assert.ok(Date.parse(a.body.expiresAt) - Date.now() > 11.9 * 3600_000 && Date.parse(a.body.expiresAt) - Date.now() <= 12 * 3600_000, a.body.expiresAt);
    const id = await sessionId(a.secret);
    await s.ws.db.query(`UPDATE steward.sessions SET created_at = now() - interval '13 hours', expires_at = now() - interval '1 second', last_seen_at = now() WHERE id = $1`, [id]);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 401);
  });

  it('ends the session of a revoked API token with the token', async () => {
    // Threat: revoking a leaked token leaves the browser sessions made from it open.
    const t = await s.call('POST', '/v1/tokens', { name: 'short-lived', principal: 'user:alice', role: 'user' });
    const a = await signIn(t.json.token);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 200);
    assert.equal((await s.call('DELETE', `/v1/tokens/${t.json.id}`)).status, 200);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 401);
    assert.equal((await get('/v1/session', cookieOf(a.secret))).status, 401);
  });

  it('ends the session of an expired API token with the token', async () => {
    // Threat: a session outliving the expiry its token was given.
    const t = await s.call('POST', '/v1/tokens', { name: 'expiring', principal: 'user:alice', role: 'user', expiresAt: new Date(Date.now() + 3600_000).toISOString() });
    const a = await signIn(t.json.token);
    await s.ws.db.query(`UPDATE steward.api_tokens SET expires_at = now() - interval '1 second' WHERE id = $1`, [t.json.id]);
    assert.equal((await get('/v1/me', cookieOf(a.secret))).status, 401);
  });
});

describe('configured timeouts and public URL', () => {
  it('marks the cookie Secure when STEWARD_PUBLIC_URL is https, and applies STEWARD_SESSION_IDLE and STEWARD_SESSION_MAX', async () => {
    // Threat: behind a TLS-terminating proxy the server sees plain http and would drop Secure.
    const behindProxy = await startTestServer({ config: () => ({ publicUrl: 'https://steward.example.com', sessionIdle: 300, sessionMax: 3600 }) });
    try {
      const res = await fetch(`${behindProxy.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: behindProxy.adminToken }) });
      assert.equal(res.status, 201);
      assert.match(res.headers.get('set-cookie') ?? '', /; Secure/);
      const body = (await res.json()) as { idleExpiresAt: string; expiresAt: string };
      const idle = Date.parse(body.idleExpiresAt) - Date.now();
      const max = Date.parse(body.expiresAt) - Date.now();
      assert.ok(idle > 4 * 60_000 && idle <= 5 * 60_000, body.idleExpiresAt);
      assert.ok(max > 59 * 60_000 && max <= 60 * 60_000, body.expiresAt);
    } finally {
      await behindProxy.close();
    }
  });
});

describe('sessions on PostgreSQL shared by two servers', () => {
  it('a session signed in on one server is refused by the other once signed out, idle or its token revoked', async () => {
    // Threat: a sign-out or revocation that only the server which saw it honours, behind a load balancer.
    const db = await createTestDatabase();
    const a = await startTestServer({ databaseUrl: db.url });
    const b = await startTestServer({ databaseUrl: db.url });
    try {
      const signInAt = async (server: TestServer, token: string): Promise<{ secret: string; csrf: string }> => {
        const res = await fetch(`${server.url}/v1/sessions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
        assert.equal(res.status, 201);
        const secret = /^steward_session=([^;]+);/.exec(res.headers.get('set-cookie') ?? '')?.[1] as string;
        return { secret, csrf: ((await res.json()) as { csrfToken: string }).csrfToken };
      };
      const me = async (server: TestServer, secret: string): Promise<number> => (await fetch(`${server.url}/v1/me`, { headers: cookieOf(secret) })).status;

      const one = await signInAt(a, a.adminToken);
      assert.equal(await me(b, one.secret), 200);
      assert.equal((await fetch(`${b.url}/v1/session`, { method: 'DELETE', headers: { ...cookieOf(one.secret), [CSRF_HEADER]: one.csrf } })).status, 200);
      assert.equal(await me(a, one.secret), 401);

      const two = await signInAt(a, a.adminToken);
      await a.ws.db.query(`UPDATE steward.sessions SET last_seen_at = now() - interval '31 minutes' WHERE id = $1`, [await sessionId(two.secret)]);
      assert.equal(await me(b, two.secret), 401);

      const t = await a.call('POST', '/v1/tokens', { name: 'pg-user', principal: 'user:admin', role: 'user' });
      const three = await signInAt(b, t.json.token);
      assert.equal(await me(a, three.secret), 200);
      assert.equal((await a.call('DELETE', `/v1/tokens/${t.json.id}`)).status, 200);
      assert.equal(await me(b, three.secret), 401);
    } finally {
      await a.close();
      await b.close();
      await db.drop();
    }
  });
});

describe('secrets at rest and in logs', () => {
  it('stores only the hash of the session secret, and never writes the secret, the CSRF token or the API token to the decision log or the output', async () => {
    // Threat: a database dump, a log shipper or a decision-log reader walks away with a live session.
    const a = await signIn(aliceToken);
    await get('/v1/me', cookieOf(a.secret));
    await fetch(`${s.url}/v1/session`, { method: 'DELETE', headers: { ...cookieOf(a.secret), [CSRF_HEADER]: 'wrong' } });
    await fetch(`${s.url}/v1/session`, { method: 'DELETE', headers: { ...cookieOf(a.secret), [CSRF_HEADER]: a.csrfToken } });
    const rows = await s.ws.db.query<Record<string, unknown>>('SELECT * FROM steward.sessions');
    const dump = JSON.stringify(rows.rows);
    assert.ok(!dump.includes(a.secret), 'the session secret is stored');
    const log = JSON.stringify(await s.ws.services.decisionLog.listDecisions({ limit: 1000 }));
    // The sign-in and the sign-out are in the decision log, by session id prefix.
    assert.match(log, /auth\.session\.create/);
    assert.match(log, /auth\.session\.revoke/);
    assert.ok(log.includes(aliceTokenId));
    const secretOfToken = aliceToken.split('_').slice(2).join('_'); // the secret itself may hold `_`
    for (const [what, secret] of [['session secret', a.secret], ['CSRF token', a.csrfToken], ['API token', secretOfToken]] as const) {
      assert.ok(!log.includes(secret), `the ${what} is in the decision log`);
      assert.ok(!output.join('').includes(secret), `the ${what} is in the output`);
    }
  });
});

async function sessionId(secret: string): Promise<string> {
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(secret).digest('hex');
}
