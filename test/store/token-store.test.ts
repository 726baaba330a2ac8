import assert from 'node:assert/strict';
import { TOKEN_RECHECK_MS, createTokenStore } from '../../src/store/token-store.js';
import { StewardError } from '../../src/errors.js';
import { forEachStore } from '../support/stores.js';

/** A clock the test moves by hand. */
function clock(start = new Date('2030-01-01T00:00:00Z')): { now: () => Date; advance: (ms: number) => void } {
  let t = start.getTime();
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
}

forEachStore('a created token verifies to its identity', async ({ db }) => {
  const tokens = createTokenStore(db);
  const { id, token } = await tokens.createToken({ name: ' ci deploy ', principal: 'Alice', role: 'user' });
  assert.match(token, /^stw_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  assert.deepEqual(await tokens.verifyToken(token), { id, name: 'ci deploy', principal: 'user:alice', role: 'user' });
});

// Threat: a database dump (backup, replica, SQL injection elsewhere) must not yield usable tokens.
forEachStore('stores only a hash: the plaintext secret never appears in the table', async ({ db }) => {
  const tokens = createTokenStore(db);
  const { token } = await tokens.createToken({ name: 'x', principal: 'user:a', role: 'admin' });
  const secret = token.split('_').slice(2).join('_');
  const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM steward.api_tokens');
  const dump = JSON.stringify(rows);
  assert.ok(!dump.includes(secret), 'secret in the table');
  assert.ok(!dump.includes(token), 'token in the table');
  assert.ok(!JSON.stringify(await tokens.listTokens()).includes(String(rows[0]?.secret_hash)), 'listing shows the hash');
  assert.ok(!('secret_hash' in ((await tokens.listTokens())[0] ?? {})));
});

// Threat: an attacker who knows a token id (ids show in listings and logs) guesses or alters the secret.
forEachStore('rejects forged secrets, malformed text and unknown ids', async ({ db }) => {
  const tokens = createTokenStore(db);
  const { id, token } = await tokens.createToken({ name: 'x', principal: 'user:a', role: 'admin' });
  const secret = token.slice(`stw_${id}_`.length);
  const flipped = `${secret[0] === 'A' ? 'B' : 'A'}${secret.slice(1)}`;
  const forged = [
    `stw_${id}_${flipped}`,
    `stw_${id}_${'A'.repeat(43)}`,
    `stw_${'0'.repeat(16)}_${secret}`, // right secret, wrong id
    `${token} `,
    ` ${token}`,
    token.toUpperCase(),
    `stw_${id}_${secret}A`,
    `stw_${id}_${secret.slice(0, 42)}`,
    `stw_${id}`,
    '',
    'Bearer ' + token,
    `stw_${id}_${secret}\u0000`,
    `stw_${id}'; DROP TABLE steward.api_tokens; --_${secret}`,
  ];
  for (const f of forged) assert.equal(await tokens.verifyToken(f), null, JSON.stringify(f));
  assert.notEqual(await tokens.verifyToken(token), null, 'the real token still works (and the table still exists)');
});

forEachStore('revoked and expired tokens are rejected', async ({ db }) => {
  const c = clock();
  const tokens = createTokenStore(db, { now: c.now });
  const revoked = await tokens.createToken({ name: 'r', principal: 'user:a', role: 'admin' });
  c.advance(1); // listings are ordered by creation
  const expiring = await tokens.createToken({ name: 'e', principal: 'user:a', role: 'user', expiresAt: new Date(c.now().getTime() + 3_600_000) });
  assert.ok(await tokens.hasAnyAdminToken());

  await tokens.revokeToken(revoked.id);
  await tokens.revokeToken(revoked.id); // idempotent
  assert.equal(await tokens.verifyToken(revoked.token), null);
  assert.equal(await tokens.hasAnyAdminToken(), false, 'a revoked admin token does not count');

  assert.notEqual(await tokens.verifyToken(expiring.token), null);
  c.advance(3_600_000 - 1);
  assert.notEqual(await tokens.verifyToken(expiring.token), null);
  c.advance(1);
  assert.equal(await tokens.verifyToken(expiring.token), null, 'expired at the instant');

  const listing = await tokens.listTokens();
  assert.deepEqual(listing.map((t) => [t.name, t.revokedAt !== undefined, t.expiresAt]), [
    ['r', true, undefined],
    ['e', false, '2030-01-01T01:00:00.001Z'],
  ]);
  await assert.rejects(tokens.revokeToken('0123456789abcdef'), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_NOT_FOUND');
  await assert.rejects(tokens.revokeToken('not an id'), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_NOT_FOUND');
});

forEachStore('last_used_at is written at most once a minute', async ({ db }) => {
  const c = clock();
  const tokens = createTokenStore(db, { now: c.now });
  const { token } = await tokens.createToken({ name: 'x', principal: 'user:a', role: 'user' });
  const lastUsed = async (): Promise<string | undefined> => (await tokens.listTokens())[0]?.lastUsedAt;
  assert.equal(await lastUsed(), undefined);
  await tokens.verifyToken(token);
  assert.equal(await lastUsed(), '2030-01-01T00:00:00.000Z');
  c.advance(30_000);
  await tokens.verifyToken(token);
  assert.equal(await lastUsed(), '2030-01-01T00:00:00.000Z', 'not rewritten within the minute');
  c.advance(30_000);
  await tokens.verifyToken(token);
  assert.equal(await lastUsed(), '2030-01-01T00:01:00.000Z');
});

forEachStore('refuses bad input when creating', async ({ db }) => {
  const tokens = createTokenStore(db);
  const bad = [
    { name: '', principal: 'user:a', role: 'user' as const },
    { name: 'x'.repeat(129), principal: 'user:a', role: 'user' as const },
    { name: 'x', principal: 'robot:a', role: 'user' as const },
    { name: 'x', principal: 'user:a', role: 'root' as unknown as 'user' },
    { name: 'x', principal: 'user:a', role: 'user' as const, expiresAt: '2001-01-01T00:00:00Z' },
    { name: 'x', principal: 'user:a', role: 'user' as const, expiresAt: 'tomorrow' },
  ];
  for (const input of bad) {
    await assert.rejects(tokens.createToken(input), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_VALIDATION', JSON.stringify(input));
  }
  assert.deepEqual(await tokens.listTokens(), []);
  assert.equal(await tokens.hasAnyAdminToken(), false);
});

// Threat: a verification remembered for speed keeps a revoked, expired or forged token working.
forEachStore('remembered verifications: revocation and expiry at once, forged secrets refused, a row changed behind Steward read again', async ({ db }) => {
  const c = clock();
  const tokens = createTokenStore(db, { now: c.now });
  const other = createTokenStore(db, { now: c.now }); // another server on the same store
  const a = await tokens.createToken({ name: 'a', principal: 'user:a', role: 'user', expiresAt: new Date(c.now().getTime() + 120_000) });
  const b = await tokens.createToken({ name: 'b', principal: 'user:b', role: 'user' });
  assert.notEqual(await tokens.verifyToken(a.token), null);
  assert.notEqual(await other.verifyToken(a.token), null);
  assert.notEqual(await tokens.verifyToken(b.token), null);
  assert.notEqual(await other.verifyToken(b.token), null);

  // A remembered id with another secret is still a forgery.
  assert.equal(await tokens.verifyToken(`stw_${a.id}_${'A'.repeat(43)}`), null);

  // Revoked here: refused here at once; the other server forgets when the change feed tells it (`tokens`).
  await tokens.revokeToken(b.id);
  assert.equal(await tokens.verifyToken(b.token), null);
  assert.notEqual(await other.verifyToken(b.token), null, 'remembered until told (the feed calls forget)');
  other.forget();
  assert.equal(await other.verifyToken(b.token), null);

  // Expiry is checked on every use, remembered or not.
  c.advance(120_000);
  assert.equal(await tokens.verifyToken(a.token), null);
  assert.equal(await other.verifyToken(a.token), null);

  // A row revoked behind Steward's back (plain SQL): read again within TOKEN_RECHECK_MS.
  const d = await tokens.createToken({ name: 'd', principal: 'user:d', role: 'user' });
  assert.notEqual(await tokens.verifyToken(d.token), null);
  await db.query('UPDATE steward.api_tokens SET revoked_at = now() WHERE id = $1', [d.id]);
  c.advance(TOKEN_RECHECK_MS);
  assert.equal(await tokens.verifyToken(d.token), null);
});

// The point of remembering: a busy caller's requests do not each read the token's row.
forEachStore('a remembered token is verified without reading the store', async ({ db }) => {
  let reads = 0;
  const counting = { ...db, query: (sql: string, params?: readonly unknown[]) => (sql.includes('api_tokens WHERE id') && sql.startsWith('SELECT') && reads++, db.query(sql, params)) } as typeof db;
  const tokens = createTokenStore(counting);
  const { token } = await tokens.createToken({ name: 'x', principal: 'user:a', role: 'user' });
  for (let i = 0; i < 5; i++) assert.notEqual(await tokens.verifyToken(token), null);
  assert.equal(reads, 1);
});
