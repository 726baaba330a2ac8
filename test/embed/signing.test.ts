/**
 * Embed tokens are signed with Node's crypto (synchronous) and verified with
 * jose: the two must agree for both algorithms Steward offers, and a token
 * signed by one key must not pass as another's.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { openPglite, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrations.js';
import { createSigningKeys, SIGNING_ALGORITHMS } from '../../src/embed/signing-keys.js';
import { audienceOf, createEmbedTokens } from '../../src/embed/embed-tokens.js';
import { isStewardError } from '../../src/errors.js';

let db: Db;
before(async () => {
  db = await openPglite('memory');
  await migrate(db);
});
after(async () => {
  await db.close();
});

const input = { dashboard: 'revenue', user: 'NorthAdmin', tags: { hospital: 'North "Hospital" \\ ünï', region: '*' }, origins: ['https://app.example'] };

describe('embed token signatures', () => {
  for (const alg of SIGNING_ALGORITHMS) {
    it(`a ${alg} token verifies with jose against the published JWKS and opens once`, async () => {
      await db.query('DELETE FROM steward.embed_keys');
      const keys = createSigningKeys(db, { alg });
      const tokens = createEmbedTokens({ db, keys });
      const minted = await tokens.mint(input);
      assert.equal(decodeProtectedHeader(minted.token).alg, alg);
      const jwks = { keys: (await keys.published()).map((k) => ({ ...k.jwk, kid: k.kid, alg: k.alg }) as JWK) };
      const { payload } = await jwtVerify(minted.token, createLocalJWKSet(jwks), { audience: audienceOf('revenue'), issuer: 'steward', algorithms: [alg] });
      assert.equal(payload.sub, 'NorthAdmin');
      assert.deepEqual(payload['tags'], input.tags);
      assert.equal(payload.jti, minted.jti);
      const session = await tokens.open(minted.token, 'revenue');
      assert.deepEqual(session.tags, input.tags);
    });
  }

  it('refuses a token whose signature belongs to another of its keys (a signature swapped in from another token)', async () => {
    // Threat: splicing a valid signature from one token onto another token's claims.
    await db.query('DELETE FROM steward.embed_keys');
    const keys = createSigningKeys(db);
    const tokens = createEmbedTokens({ db, keys });
    const a = await tokens.mint(input);
    const b = await tokens.mint({ ...input, tags: { hospital: '*', region: '*' } });
    const [h, p] = b.token.split('.');
    const spliced = `${h}.${p}.${a.token.split('.')[2]}`;
    await assert.rejects(tokens.open(spliced, 'revenue'), (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_UNAUTHENTICATED');
  });
});
