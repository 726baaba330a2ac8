/**
 * Every route but /health refuses a missing, malformed, forged or revoked
 * token; garbage input never produces a 500.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { allRoutes } from '../../src/server/routes.js';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
before(async () => {
  // This file sends hundreds of forged tokens from one address on purpose; the rate limit has its own tests (auth-failures.test.ts).
  process.env['STEWARD_AUTH_FAILURE_LIMIT'] = '100000';
  s = await startTestServer();
  delete process.env['STEWARD_AUTH_FAILURE_LIMIT'];
});
after(async () => {
  await s.close();
});

const concretePath = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (name === 'resource' ? 'lake.claims' : 'x'));
const everyRoute = [
  ...allRoutes.map((r) => ({ method: r.method.toUpperCase(), path: concretePath(r.path) })),
  { method: 'GET', path: '/openapi.json' },
  { method: 'GET', path: '/docs' },
];

describe('authentication', () => {
  it('health needs no token', async () => {
    const r = await s.call('GET', '/health', undefined, null);
    assert.equal(r.status, 200);
  });

  it('refuses every route without a token (an anonymous caller learns nothing)', async () => {
    for (const r of everyRoute) {
      const res = await s.call(r.method, r.path, r.method === 'GET' || r.method === 'DELETE' ? undefined : {}, null);
      assert.equal(res.status, 401, `${r.method} ${r.path} answered ${res.status}`);
      assert.equal(res.json.error.code, 'STEWARD_E_UNAUTHENTICATED');
    }
  });

  // Threat: a route that validates before it checks its own credentials tells an anonymous caller which names, queries and bodies are well formed.
  it('a route with credentials of its own refuses a caller without them before validating anything', async () => {
    const own = allRoutes.filter((r) => r.credentials !== undefined);
    assert.ok(own.length >= 1, 'no route checks credentials of its own');
    for (const r of own) {
      const path = `${r.path.replace(/:([A-Za-z0-9_]+)/g, 'NOT%20A%20NAME%00')}?unexpected=1`;
      const res = await s.call(r.method.toUpperCase(), path, r.method === 'get' ? undefined : { unexpected: true }, null);
      assert.equal(res.status, 401, `${r.method} ${r.path} answered ${res.status}: ${JSON.stringify(res.json)}`);
      assert.equal(res.json.error.code, 'STEWARD_E_UNAUTHENTICATED');
      assert.doesNotMatch(JSON.stringify(res.json), /NOT A NAME|unexpected/, 'the refusal echoes what was sent');
    }
  });

  it('refuses every route with a forged token of the right shape', async () => {
    const [, id] = /^stw_([^_]+)_/.exec(s.adminToken) ?? [];
    const forged = `stw_${id}_${'A'.repeat(43)}`;
    for (const r of everyRoute) {
      const res = await s.call(r.method, r.path, r.method === 'GET' || r.method === 'DELETE' ? undefined : {}, forged);
      assert.equal(res.status, 401, `${r.method} ${r.path} answered ${res.status}`);
    }
  });

  it('refuses malformed authorization headers', async () => {
    for (const header of ['Bearer', 'Bearer ', 'Basic !!!', 'Token abc', `Bearer ${'x'.repeat(5000)}`, 'Bearer stw_', 'Bearer stw__']) {
      const res = await fetch(`${s.url}/v1/me`, { headers: { authorization: header } });
      assert.equal(res.status, 401, header.slice(0, 20));
    }
  });

  it('accepts the token as the Basic-auth password (browser access to /docs)', async () => {
    const res = await fetch(`${s.url}/docs`, { headers: { authorization: `Basic ${Buffer.from(`any:${s.adminToken}`).toString('base64')}` } });
    assert.equal(res.status, 200);
    assert.match(await res.text(), /Steward API/);
  });

  it('a revoked token stops working at once', async () => {
    const created = await s.call('POST', '/v1/tokens', { name: 'temp', principal: 'user:admin', role: 'admin' });
    assert.equal(created.status, 201);
    assert.equal((await s.call('GET', '/v1/me', undefined, created.json.token)).status, 200);
    assert.equal((await s.call('DELETE', `/v1/tokens/${created.json.id}`)).status, 200);
    assert.equal((await s.call('GET', '/v1/me', undefined, created.json.token)).status, 401);
  });

  it('a user token cannot reach admin routes', async () => {
    const created = await s.call('POST', '/v1/tokens', { name: 'u', principal: 'user:alice', role: 'user' });
    const adminOnly = allRoutes.filter((r) => r.auth === 'admin');
    assert.ok(adminOnly.length > 10);
    for (const r of adminOnly) {
      const res = await s.call(r.method.toUpperCase(), concretePath(r.path), r.method === 'get' || r.method === 'delete' ? undefined : {}, created.json.token);
      assert.equal(res.status, 403, `${r.method} ${r.path} answered ${res.status}`);
    }
  });

  it('a user may not ask decisions about someone else', async () => {
    const created = await s.call('POST', '/v1/tokens', { name: 'u2', principal: 'user:alice', role: 'user' });
    const res = await s.call('POST', '/v1/authorize', { principal: 'user:carol', action: 'SELECT', resource: 'lake.claims.patient_claims' }, created.json.token);
    assert.equal(res.status, 403);
  });

  it('lists tokens without their secrets', async () => {
    const res = await s.call('GET', '/v1/tokens');
    assert.equal(res.status, 200);
    assert.ok(!JSON.stringify(res.json).includes(s.adminToken.split('_').slice(2).join('_')));
  });
});

describe('bad input', () => {
  it('never answers 500 to garbage bodies on any route', async () => {
    const garbage = ['not json', '[]', '{"unexpected": 1}', '{"name": 5}', '{"name": "' + 'x'.repeat(5000) + '"}', 'null', '{"__proto__": {"admin": true}}'];
    for (const r of allRoutes) {
      if (r.method === 'get' || r.method === 'delete') continue;
      for (const body of garbage) {
        const res = await s.call(r.method.toUpperCase(), concretePath(r.path), body);
        assert.ok(res.status >= 400 && res.status < 500, `${r.method} ${r.path} with ${body.slice(0, 30)} answered ${res.status}`);
        assert.equal(typeof res.json.error.code, 'string');
      }
    }
  });

  it('rejects unknown fields and names them', async () => {
    const res = await s.call('POST', '/v1/users', { name: 'dora', admin: true });
    assert.equal(res.status, 400);
    assert.match(res.json.error.message, /admin/);
  });

  it('names the field of a bad value', async () => {
    const res = await s.call('POST', '/v1/authorize', { principal: 'user:alice', action: 'FLY', resource: 'lake.claims' });
    assert.equal(res.status, 400);
    assert.equal(res.json.error.details[0].path, 'body.action');
  });

  it('refuses oversized bodies with 413', async () => {
    const res = await s.call('POST', '/v1/users', JSON.stringify({ name: 'x', displayName: 'y'.repeat(9 * 1024 * 1024) }));
    assert.equal(res.status, 413);
  });

  /** A raw request with the admin token: `chunked` sends the body without a Content-Length, in pieces. */
  const raw = (body: string, chunked: boolean): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const url = new URL('/v1/users', s.url);
      const headers: Record<string, string> = { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json' };
      if (!chunked) headers['content-length'] = String(Buffer.byteLength(body));
      const req = http.request(url, { method: 'POST', headers, agent: false }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      if (chunked) for (let i = 0; i < body.length; i += 1 << 20) req.write(body.slice(i, i + (1 << 20)));
      req.end(chunked ? undefined : body);
    });

  it('refuses an oversized chunked body with 413 (no Content-Length to check: counted as it streams)', async () => {
    // threat: a client that omits Content-Length to slip a body past the limit
    const res = await raw(JSON.stringify({ name: 'x', displayName: 'y'.repeat(9 * 1024 * 1024) }), true);
    assert.equal(res.status, 413, res.text);
  });

  it('reads JSON bodies sent chunked or with a Content-Length alike', async () => {
    for (const [name, chunked] of [['body-chunked', true], ['body-sized', false]] as const) {
      const res = await raw(JSON.stringify({ name, displayName: 'ü'.repeat(10) }), chunked);
      assert.equal(res.status, 201, res.text);
    }
    const users = await s.call('GET', '/v1/users');
    for (const name of ['body-chunked', 'body-sized']) assert.equal(users.json.users.find((u: { name: string }) => u.name === name)?.displayName, 'ü'.repeat(10));
  });

  it('serves an OpenAPI 3.1 document listing every route', async () => {
    const res = await s.call('GET', '/openapi.json');
    assert.equal(res.status, 200);
    assert.equal(res.json.openapi, '3.1.0');
    for (const r of allRoutes) {
      const p = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      assert.ok(res.json.paths[p]?.[r.method], `${r.method} ${p} missing from the document`);
    }
  });
});
