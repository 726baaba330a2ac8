/**
 * A workspace's identity for sharing: one Ed25519 key pair, created on first
 * use and kept in the store. The public half, written `ed25519:<x>` (the
 * JWK's base64url `x`, 43 characters), is what another workspace trusts with
 * `steward share trust`; the private half signs this workspace's change feeds
 * (as a producer) and share tokens (as a consumer).
 */
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { StewardError } from '../errors.js';
import type { Db } from '../store/db.js';

export const KEY_PREFIX = 'ed25519:';
const KEY_PATTERN = /^ed25519:[A-Za-z0-9_-]{43}$/;

export interface WorkspaceIdentity {
  /** `ed25519:<x>`. */
  readonly publicKey: string;
  readonly privateKey: CryptoKey;
}

export interface IdentityStore {
  /** This workspace's identity, created on first call (several processes may race: one row wins). */
  get(): Promise<WorkspaceIdentity>;
}

/** Whether `text` is a public key as `steward share identity` prints it. */
export function isPublicKey(text: string): boolean {
  return KEY_PATTERN.test(text);
}

/** The verifying key of `ed25519:<x>`; a malformed key is refused naming `path`. */
export async function importPublicKey(text: string, path = 'publicKey'): Promise<CryptoKey> {
  if (!isPublicKey(text)) throw new StewardError('STEWARD_E_VALIDATION', `${path}: \`${text.slice(0, 80)}\` is not a public key such as \`ed25519:<43 base64url characters>\``, { details: [{ path, message: 'not a public key' }] });
  try {
    return (await importJWK({ kty: 'OKP', crv: 'Ed25519', x: text.slice(KEY_PREFIX.length) }, 'EdDSA')) as CryptoKey;
  } catch (e) {
    throw new StewardError('STEWARD_E_VALIDATION', `${path}: not a valid Ed25519 public key`, { details: [{ path, message: 'not a valid Ed25519 key' }], cause: e });
  }
}

export function createIdentityStore(db: Db): IdentityStore {
  let cached: WorkspaceIdentity | undefined;
  const read = async (): Promise<WorkspaceIdentity | undefined> => {
    const row = (await db.query<{ public_key: string; private_jwk: JWK }>('SELECT public_key, private_jwk FROM steward.share_identity')).rows[0];
    if (row === undefined) return undefined;
    return { publicKey: row.public_key, privateKey: (await importJWK(row.private_jwk, 'EdDSA')) as CryptoKey };
  };
  return {
    async get() {
      if (cached !== undefined) return cached;
      let found = await read();
      if (found === undefined) {
        const pair = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
        const pub = await exportJWK(pair.publicKey);
        const priv = await exportJWK(pair.privateKey);
        await db.query('INSERT INTO steward.share_identity (public_key, private_jwk) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING', [`${KEY_PREFIX}${pub.x ?? ''}`, JSON.stringify(priv)]);
        found = await read();
      }
      if (found === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'no sharing identity after creating one');
      cached = found;
      return found;
    },
  };
}
