/**
 * Cross-site request forgery: a page on another site must not be able to make
 * a signed-in browser change Steward's state, while the CLI and other
 * non-browser clients (no Origin, no Sec-Fetch-Site) keep working, over HTTP
 * and in-process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { allRoutes } from '../../src/server/routes.js';
import { LOCAL_ADMIN } from '../../src/server/actor.js';
import { createApp } from '../../src/server/app.js';
import { crossOriginRefusal, parseAllowedOrigins } from '../../src/server/browser-guard.js';

let s: TestServer;
before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/groups', { name: 'privacy-officers' })).status, 201);
  // Mallory exists, so a forged request that got through would really add her.
  for (const name of ['mallory', 'alice', 'bob', 'carol', 'dave']) assert.equal((await s.call('POST', '/v1/users', { name })).status, 201);
});
after(async () => s.close());

const members = async (): Promise<string[]> => {
  const r = await s.call('GET', '/v1/groups');
  const g = (r.json.groups as { name: string; members?: string[] }[]).find((x) => x.name === 'privacy-officers');
  return g?.members ?? [];
};

function post(path: string, body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${s.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${s.adminToken}`, ...headers }, body });
}

const concretePath = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (name === 'resource' ? 'lake.claims' : 'x'));

describe('cross-site request forgery', () => {
  it('refuses a text/plain cross-site POST that would add a privacy officer', async () => {
    // Threat: a hidden form on evil.example posts to Steward with the admin's browser credentials.
    const res = await post('/v1/groups/privacy-officers/members', JSON.stringify({ member: 'user:mallory' }), {
      'content-type': 'text/plain',
      origin: 'https://evil.example',
    });
    assert.ok(res.status === 403 || res.status === 415, `answered ${res.status}`);
    assert.deepEqual(await members(), []);
  });

  it('refuses a text/plain body even from no origin, naming the content type (415)', async () => {
    // Threat: a no-cors fetch or form sends a body the server would parse as JSON anyway.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain; charset=application/json']) {
      const res = await post('/v1/groups/privacy-officers/members', JSON.stringify({ member: 'user:mallory' }), { 'content-type': type });
      assert.equal(res.status, 415, type);
      const json = (await res.json()) as { error: { code: string; message: string } };
      assert.equal(json.error.code, 'STEWARD_E_UNSUPPORTED_MEDIA_TYPE');
      assert.ok(json.error.message.includes(`\`${type}\``), json.error.message);
    }
    assert.deepEqual(await members(), []);
  });

  it('refuses a text/plain body on every write route, also those that take no body', async () => {
    // Threat: a route that ignores its body would still act on a forged form post; the rule must hold on every write.
    for (const r of allRoutes.filter((x) => x.method !== 'get' && x.rawBody !== true)) {
      const res = await fetch(`${s.url}${concretePath(r.path)}`, {
        method: r.method.toUpperCase(),
        headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'text/plain' },
        body: 'member=user:mallory',
      });
      assert.equal(res.status, 415, `${r.method} ${r.path} answered ${res.status}`);
    }
  });

  it('refuses a JSON POST whose Origin is another site (403)', async () => {
    // Threat: a CORS-capable page sends application/json from evil.example.
    for (const origin of ['https://evil.example', 'null', `${s.url}.evil.example`, `${s.url}/`.replace('127.0.0.1', '127.0.0.2')]) {
      const res = await post('/v1/groups/privacy-officers/members', JSON.stringify({ member: 'user:mallory' }), { 'content-type': 'application/json', origin });
      assert.equal(res.status, 403, origin);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'STEWARD_E_FORBIDDEN');
    }
    assert.deepEqual(await members(), []);
  });

  it('refuses Sec-Fetch-Site cross-site (and same-site) without an Origin on every state-changing route', async () => {
    // Threat: a browser that omits Origin still marks the request as cross-site; no write route may ignore it.
    for (const r of allRoutes.filter((x) => x.method !== 'get')) {
      for (const site of ['cross-site', 'same-site']) {
        const res = await fetch(`${s.url}${concretePath(r.path)}`, {
          method: r.method.toUpperCase(),
          headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json', 'sec-fetch-site': site },
          body: '{}',
        });
        assert.equal(res.status, 403, `${r.method} ${r.path} with ${site} answered ${res.status}`);
      }
    }
  });

  it('refuses a cross-origin Origin on every state-changing route', async () => {
    // Threat: one write route forgotten by the guard is enough for a forged request.
    for (const r of allRoutes.filter((x) => x.method !== 'get')) {
      const res = await fetch(`${s.url}${concretePath(r.path)}`, {
        method: r.method.toUpperCase(),
        headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json', origin: 'https://evil.example' },
        body: '{}',
      });
      assert.equal(res.status, 403, `${r.method} ${r.path} answered ${res.status}`);
    }
  });

  it('accepts the same origin, and a browser navigating itself (Sec-Fetch-Site same-origin)', async () => {
    const res = await post('/v1/groups/privacy-officers/members', JSON.stringify({ member: 'user:alice' }), {
      'content-type': 'application/json; charset=utf-8',
      origin: s.url,
      'sec-fetch-site': 'same-origin',
    });
    assert.equal(res.status, 201, await res.text());
    assert.deepEqual(await members(), ['user:alice']);
  });

  it('keeps non-browser clients working: no Origin, no Sec-Fetch-Site, JSON or no body', async () => {
    const add = await post('/v1/groups/privacy-officers/members', JSON.stringify({ member: 'user:bob' }), { 'content-type': 'application/json' });
    assert.equal(add.status, 201);
    const del = await fetch(`${s.url}/v1/groups/privacy-officers/members/user:bob`, { method: 'DELETE', headers: { authorization: `Bearer ${s.adminToken}` } });
    assert.equal(del.status, 200);
    // A write with no body and no content type is an empty JSON object, as before.
    const sweep = await fetch(`${s.url}/v1/access/sweep`, { method: 'POST', headers: { authorization: `Bearer ${s.adminToken}` } });
    assert.equal(sweep.status, 200, await sweep.text());
  });

  it('keeps the in-process CLI path (app.request with the local actor) working', async () => {
    const res = await s.ws.app.request(
      '/v1/groups/privacy-officers/members',
      { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ member: 'user:carol' }) },
      { stewardLocalActor: LOCAL_ADMIN },
    );
    assert.equal(res.status, 201, await res.text());
    assert.ok((await members()).includes('user:carol'));
  });

  it('accepts an origin listed in STEWARD_ALLOWED_ORIGINS, and only that one', async () => {
    // The console of the next release runs on its own origin; listing it must not open the door to others.
    const app = createApp(s.ws.services, allRoutes, { allowedOrigins: parseAllowedOrigins(['https://console.example.com']) });
    const call = (origin: string): Promise<Response> =>
      Promise.resolve(
        app.request(
          '/v1/groups/privacy-officers/members',
          { method: 'POST', headers: { 'content-type': 'application/json', origin }, body: JSON.stringify({ member: 'user:dave' }) },
          { stewardLocalActor: LOCAL_ADMIN },
        ),
      );
    assert.equal((await call('https://console.example.com')).status, 201);
    assert.equal((await call('https://console.example.com.evil.example')).status, 403);
    assert.equal((await call('http://console.example.com')).status, 403);
  });

  it('refuses a malformed STEWARD_ALLOWED_ORIGINS entry instead of ignoring it', () => {
    // Threat: a typo that silently allows nothing (or everything) goes unnoticed.
    for (const bad of ['console.example.com', 'https://console.example.com/app', '*', 'ftp://x.example']) {
      assert.throws(() => parseAllowedOrigins([bad]), /STEWARD_ALLOWED_ORIGINS/, bad);
    }
    assert.equal(crossOriginRefusal('https://Console.Example.com:443', undefined, 'steward.local', parseAllowedOrigins(['https://console.example.com'])), null);
  });

  it('offers no Basic challenge on API routes and refuses Basic credentials there', async () => {
    // Threat: a browser caches Basic credentials and sends them on its own with forged requests.
    const missing = await fetch(`${s.url}/v1/me`);
    assert.equal(missing.status, 401);
    assert.doesNotMatch(missing.headers.get('www-authenticate') ?? '', /basic/i);
    const basic = `Basic ${Buffer.from(`any:${s.adminToken}`).toString('base64')}`;
    assert.equal((await fetch(`${s.url}/v1/me`, { headers: { authorization: basic } })).status, 401);
    const write = await fetch(`${s.url}/v1/groups/privacy-officers/members`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/json' },
      body: JSON.stringify({ member: 'user:mallory' }),
    });
    assert.equal(write.status, 401);
    assert.ok(!(await members()).includes('user:mallory'));
  });
});
