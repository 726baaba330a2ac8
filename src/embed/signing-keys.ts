/**
 * The signing keys of embed tokens, kept in the store and rotated.
 *
 * A key signs new tokens for `signFor` (a day by default) and is then
 * replaced by a fresh one; it stays published and accepted for `MAX_TOKEN_SECONDS`
 * more, so every token it signed can still be checked until it expires, and is
 * then gone (from `/.well-known/jwks.json` too). Several servers on one
 * PostgreSQL may each create a key at the turn of a period: both are valid,
 * the newest signs.
 */
import { createPrivateKey, randomBytes, type JsonWebKey, type KeyObject } from 'node:crypto';
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import type { Db } from '../store/db.js';
import { notifyChange } from '../store/change-feed.js';

/** An embed token lives at most this long (15 minutes). */
export const MAX_TOKEN_SECONDS = 15 * 60;
export const SIGNING_ALGORITHMS = ['EdDSA', 'ES256'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export interface SigningKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  /** A Node key object: signing with it is synchronous (see embed-tokens.ts, `signCompact`). */
  readonly key: KeyObject;
}

export interface PublicKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly jwk: JWK;
}

export interface SigningKeys {
  /** The key that signs now, created when none is current. */
  current(): Promise<SigningKey>;
  /** A key that may verify now (signed within its period and not past its last token's expiry), or undefined. */
  verifier(kid: string): Promise<{ readonly alg: SigningAlgorithm; readonly key: CryptoKey } | undefined>;
  /** The public halves of every key that may verify now, for `/.well-known/jwks.json`. */
  published(): Promise<readonly PublicKey[]>;
  /** Retires the current key at once (the next `current()` makes a new one); its tokens stay valid until they expire. */
  rotate(): Promise<void>;
  /** Drops the signing key held in memory (another server rotated): the next `current()` reads the store. */
  forget(): void;
}

interface KeyRow {
  kid: string;
  alg: SigningAlgorithm;
  public_jwk: JWK;
  private_jwk: JWK;
}

export function createSigningKeys(db: Db, options: { alg?: SigningAlgorithm; signForSeconds?: number; now?: () => Date } = {}): SigningKeys {
  const alg = options.alg ?? 'EdDSA';
  const signFor = options.signForSeconds ?? 24 * 3600;
  const now = options.now ?? ((): Date => new Date());
  // Imported keys by kid: importing costs more than signing.
  const imported = new Map<string, CryptoKey>();
  let cached: { key: SigningKey; until: number } | undefined;

  const importKey = async (kid: string, a: SigningAlgorithm, jwk: JWK): Promise<CryptoKey> => {
    const hit = imported.get(kid);
    if (hit !== undefined) return hit;
    const key = (await importJWK(jwk, a)) as CryptoKey;
    if (imported.size > 64) imported.clear();
    imported.set(kid, key);
    return key;
  };

  const create = async (at: Date): Promise<void> => {
    const pair = await generateKeyPair(alg, { extractable: true });
    const kid = randomBytes(16).toString('base64url');
    const pub = { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
    const priv = { ...(await exportJWK(pair.privateKey)), kid, alg };
    const signsUntil = new Date(at.getTime() + signFor * 1000);
    const verifiesUntil = new Date(signsUntil.getTime() + MAX_TOKEN_SECONDS * 1000);
    await db.query(
      `INSERT INTO steward.embed_keys (kid, alg, public_jwk, private_jwk, created_at, signs_until, verifies_until) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [kid, alg, JSON.stringify(pub), JSON.stringify(priv), at.toISOString(), signsUntil.toISOString(), verifiesUntil.toISOString()],
    );
  };

  return {
    async current() {
      const at = now();
      if (cached !== undefined && at.getTime() < cached.until) return cached.key;
      const pick = async (): Promise<(KeyRow & { signs_until: string | Date }) | undefined> =>
        (
          await db.query<KeyRow & { signs_until: string | Date }>(
            `SELECT kid, alg, public_jwk, private_jwk, signs_until FROM steward.embed_keys
              WHERE signs_until > $1::timestamptz AND created_at <= $1::timestamptz ORDER BY created_at DESC LIMIT 1`,
            [at.toISOString()],
          )
        ).rows[0];
      let row = await pick();
      if (row === undefined) {
        await create(at);
        row = await pick();
      }
      if (row === undefined) throw new Error('no embed signing key after creating one');
      const key: SigningKey = { kid: row.kid, alg: row.alg, key: createPrivateKey({ key: row.private_jwk as JsonWebKey, format: 'jwk' }) };
      // Re-read at least every minute: another server may have rotated.
      cached = { key, until: Math.min(new Date(row.signs_until).getTime(), at.getTime() + 60_000) };
      return key;
    },
    async verifier(kid) {
      const { rows } = await db.query<KeyRow>(
        `SELECT kid, alg, public_jwk, private_jwk FROM steward.embed_keys WHERE kid = $1 AND verifies_until > $2::timestamptz AND created_at <= $2::timestamptz`,
        [kid, now().toISOString()],
      );
      const row = rows[0];
      if (row === undefined) return undefined;
      return { alg: row.alg, key: await importKey(`pub:${row.kid}`, row.alg, row.public_jwk) };
    },
    async published() {
      const { rows } = await db.query<KeyRow>(`SELECT kid, alg, public_jwk FROM steward.embed_keys WHERE verifies_until > $1::timestamptz ORDER BY created_at`, [now().toISOString()]);
      return rows.map((r) => ({ kid: r.kid, alg: r.alg, jwk: r.public_jwk }));
    },
    async rotate() {
      const at = now();
      cached = undefined;
      await db.transaction(async (tx) => {
        await tx.query(
          `UPDATE steward.embed_keys SET signs_until = greatest(created_at + interval '1 millisecond', $1::timestamptz), verifies_until = greatest(created_at + interval '1 millisecond', $1::timestamptz) + interval '${MAX_TOKEN_SECONDS} seconds'
            WHERE signs_until > $1::timestamptz`,
          [at.toISOString()],
        );
        // A rotation is often a response to a leak: the other servers must stop signing with the old key now, not within the minute.
        await notifyChange(tx, 'embed-keys');
      });
    },
    forget() {
      cached = undefined;
    },
  };
}
