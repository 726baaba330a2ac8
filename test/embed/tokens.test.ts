/**
 * Embed tokens end to end over real HTTP: minting (who may, what is
 * refused), the JWKS, and every attack on the token at the embed page:
 * replay, expiry, wrong audience, tampering, `alg: none`, unknown key,
 * algorithm confusion.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, base64url, createLocalJWKSet, decodeJwt, generateKeyPair, jwtVerify } from 'jose';
import type { TestServer } from '../support/server.js';
import { ORIGIN, mint, openPage, pageData, startEmbedServer } from './support.js';

let s: TestServer;
before(async () => {
  s = await startEmbedServer();
});
after(async () => {
  await s?.close();
});

async function refusedWith(token: string, dashboard = 'revenue'): Promise<string> {
  const res = await openPage(s, dashboard, token);
  const body = (await res.json()) as { error: { code: string; message: string } };
  assert.equal(res.status, 401, JSON.stringify(body));
  assert.equal(body.error.code, 'STEWARD_E_UNAUTHENTICATED');
  return body.error.message;
}

function part(token: string, i: number): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[i] as string, 'base64url').toString('utf8'));
}
const enc = (o: unknown): string => base64url.encode(JSON.stringify(o));

describe('minting embed tokens', () => {
  it('mints a short-lived EdDSA token with the session, verifiable with the published JWKS', async () => {
    const r = await mint(s, {});
    assert.equal(r.status, 201, JSON.stringify(r.json));
    assert.ok(r.json.url.startsWith(`${s.url}/embed/dashboards/revenue?token=`));
    const jwks = (await fetch(`${s.url}/.well-known/jwks.json`).then((x) => x.json())) as { keys: (Record<string, unknown> & { kid: string })[] };
    assert.ok(jwks.keys.length >= 1 && jwks.keys.every((k: Record<string, unknown>) => k['d'] === undefined), 'no private key material is published');
    const { payload, protectedHeader } = await jwtVerify(r.json.token, createLocalJWKSet(jwks), { audience: 'steward:embed:dashboard:revenue', issuer: 'steward' });
    assert.equal(protectedHeader.alg, 'EdDSA');
    assert.equal(payload.sub, 'NorthAdmin');
    assert.deepEqual(payload['tags'], { hospital: 'North Hospital', region: '*' });
    assert.deepEqual(payload['origins'], [ORIGIN]);
    assert.ok((payload.exp as number) - (payload.iat as number) <= 900);
  });

  it('never hands two tokens the same jti across refills of the id pool, and every token verifies', async () => {
    // Threat: a pooled random id served twice, so one viewer's use would refuse (or a replay check confuse) another's token.
    const tokens = s.ws.services.embed!.tokens;
    const input = { dashboard: 'revenue', user: 'NorthAdmin', tags: { hospital: 'North Hospital', region: '*' }, origins: [ORIGIN] };
    const minted = await Promise.all(Array.from({ length: 600 }, () => tokens.mint(input)));
    const ids = minted.map((m) => m.jti);
    assert.equal(new Set(ids).size, ids.length);
    for (const id of ids) assert.match(id, /^[A-Za-z0-9_-]{24}$/, '18 random bytes');
    const jwks = (await fetch(`${s.url}/.well-known/jwks.json`).then((x) => x.json())) as { keys: (Record<string, unknown> & { kid: string })[] };
    for (const m of [minted[0]!, minted[300]!, minted[599]!]) {
      const { payload } = await jwtVerify(m.token, createLocalJWKSet(jwks), { audience: 'steward:embed:dashboard:revenue', issuer: 'steward' });
      assert.equal(payload.jti, m.jti);
    }
  });

  it('refuses a session tag key that no rule of the dashboard names', async () => {
    // Threat: a typo (`hopsital`) minted silently and the viewer's rows decided by a rule that never sees it.
    const r = await mint(s, { tags: { hopsital: 'North Hospital', region: '*' } });
    assert.equal(r.status, 400);
    assert.equal(r.json.error.code, 'STEWARD_E_UNKNOWN_TAG');
    assert.match(r.json.error.message, /`hopsital`/);
  });

  it('refuses a lifetime over 15 minutes and an origin with a path or wildcard', async () => {
    // Threat: long-lived links that circulate; a frame-ancestors source that allows more than one origin.
    assert.equal((await mint(s, { ttlSeconds: 901 })).status, 400);
    for (const o of ['https://*.example.com', 'https://app.example.com/path', "https://a.example 'unsafe-inline'", 'javascript:alert(1)']) {
      const r = await mint(s, { origins: [o] });
      assert.equal(r.status, 400, o);
      assert.match(r.json.error.message, /origins/);
    }
  });

  it('refuses minting to a user token and lets an embed token do nothing else', async () => {
    // Threat: any analyst minting sessions with match-all tags; a vendor's embed credential used as a general API token.
    const user = await s.ws.services.tokens.createToken({ name: 'u', principal: 'user:alice', role: 'user' });
    assert.equal((await mint(s, {}, user.token)).status, 403);
    const embed = await s.call('POST', '/v1/tokens', { name: 'anyhealth-backend', principal: 'user:alice', role: 'embed' });
    assert.equal(embed.status, 201, JSON.stringify(embed.json));
    assert.equal((await mint(s, {}, embed.json.token)).status, 201);
    const q = await s.call('POST', '/v1/query', { sql: 'SELECT 1' }, embed.json.token);
    assert.equal(q.status, 403);
    assert.match(q.json.error.message, /embed token may only mint/);
    const signIn = await s.call('POST', '/v1/sessions', { token: embed.json.token }, null);
    assert.equal(signIn.status, 403);
  });
});

describe('attacks on the embed page', () => {
  it('opens once, then refuses the replayed token', async () => {
    // Threat: a leaked URL (history, logs, a shared screenshot) reopened by someone else.
    const { json } = await mint(s, {});
    const first = await openPage(s, 'revenue', json.token);
    assert.equal(first.status, 200, await first.clone().text());
    assert.equal(pageData(await first.text()).user, 'NorthAdmin');
    assert.match(await refusedWith(json.token), /already used/);
  });

  it('refuses an expired token', async () => {
    // Threat: an old link reused after its session should be over.
    const { json } = await mint(s, { ttlSeconds: 1 });
    await new Promise((r) => setTimeout(r, 2100));
    assert.match(await refusedWith(json.token), /expired/);
  });

  it('refuses a token for another dashboard (wrong audience)', async () => {
    // Threat: a token minted for a harmless dashboard opening a more revealing one.
    const other = await s.call('PUT', '/v1/embed/dashboards/other', { ...(await s.call('GET', '/v1/embed/dashboards/revenue')).json.dashboard, title: 'Other' });
    assert.equal(other.status, 200);
    const { json } = await mint(s, {});
    assert.match(await refusedWith(json.token, 'other'), /claim `aud`/);
  });

  it('refuses a token whose tags were edited after signing', async () => {
    // Threat: the viewer widening their own session from `North Hospital` to `*`.
    const { json } = await mint(s, {});
    const [h, , sig] = json.token.split('.');
    const payload = { ...part(json.token, 1), tags: { hospital: '*', region: '*' } };
    assert.match(await refusedWith(`${h}.${enc(payload)}.${sig}`), /signature does not verify/);
  });

  it('refuses an unsigned token (alg none)', async () => {
    // Threat: a forged session accepted because the library honoured `alg: none`.
    const { json } = await mint(s, {});
    const header = { ...part(json.token, 0), alg: 'none' };
    const payload = { ...part(json.token, 1), jti: 'forged-none-000000000', tags: { hospital: '*', region: '*' } };
    assert.match(await refusedWith(`${enc(header)}.${enc(payload)}.`), /alg: none/);
  });

  it('refuses a token signed by a key Steward does not hold, even with a known kid or an embedded jwk', async () => {
    // Threat: an attacker signing their own session with their own key and pointing at ours.
    const { json } = await mint(s, {});
    const claims = decodeJwt(json.token);
    const mine = await generateKeyPair('EdDSA', { extractable: true });
    const kid = part(json.token, 0)['kid'] as string;
    const forged = await new SignJWT({ ...claims, jti: 'forged-key-00000000000', tags: { hospital: '*', region: '*' } }).setProtectedHeader({ alg: 'EdDSA', kid }).sign(mine.privateKey);
    assert.match(await refusedWith(forged), /signature does not verify/);
    const unknown = await new SignJWT({ ...claims, jti: 'forged-kid-00000000000' }).setProtectedHeader({ alg: 'EdDSA', kid: 'AAAAAAAAAAAAAAAAAAAAAA' }).sign(mine.privateKey);
    assert.match(await refusedWith(unknown), /unknown or retired key/);
  });

  it('refuses algorithm confusion: HS256 keyed with the public key', async () => {
    // Threat: the public JWK used as an HMAC secret by a verifier that trusts the header's alg.
    const { json } = await mint(s, {});
    const jwks = (await fetch(`${s.url}/.well-known/jwks.json`).then((x) => x.json())) as { keys: (Record<string, unknown> & { kid: string })[] };
    const kid = part(json.token, 0)['kid'] as string;
    const pub = jwks.keys.find((k: { kid: string }) => k.kid === kid);
    const secret = new TextEncoder().encode(JSON.stringify(pub));
    const forged = await new SignJWT({ ...decodeJwt(json.token), jti: 'forged-hs256-000000000' }).setProtectedHeader({ alg: 'HS256', kid }).sign(secret);
    assert.match(await refusedWith(forged), /algorithm `HS256`/);
  });

  it('after rotation, the old key still verifies its tokens, new tokens use the new key', async () => {
    // Threat (availability and trust): rotation that strands live sessions, or that keeps signing with the old key.
    const before = await mint(s, {});
    const rotated = await s.call('POST', '/v1/embed/keys/rotate');
    assert.equal(rotated.status, 200, JSON.stringify(rotated.json));
    const after = await mint(s, {});
    assert.notEqual(part(before.json.token, 0)['kid'], part(after.json.token, 0)['kid']);
    assert.equal((await openPage(s, 'revenue', before.json.token)).status, 200);
    assert.equal((await openPage(s, 'revenue', after.json.token)).status, 200);
  });
});
