/**
 * `steward login`: one-time codes that turn a browser sign-in into an API
 * token for the CLI.
 *
 * The CLI makes a random verifier and sends only its challenge
 * (base64url sha256, as PKCE's S256) with the sign-in. After the OIDC
 * callback, Steward stores a random code (hashed, for two minutes) bound to
 * the challenge and the signed-in principal, and redirects the browser to the
 * CLI's loopback listener with the code. Only the process holding the
 * verifier can exchange the code, once: a code read from the browser's history
 * or intercepted on the way is worth nothing.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../store/db.js';
import { sha256Hex } from './oidc-logins.js';

export const CLI_CODE_TTL_MS = 2 * 60_000;
const CODE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export interface CliLoginStore {
  /** A one-time code for `principal`, redeemable with the verifier of `challenge`. */
  issue(principal: string, challenge: string): Promise<string>;
  /** The principal of a live code whose challenge `verifier` answers; the code is spent either way. */
  redeem(code: string, verifier: string): Promise<string | null>;
}

/** The S256 challenge of a verifier: base64url(sha256(verifier)). */
export const challengeOf = (verifier: string): string => createHash('sha256').update(verifier, 'utf8').digest('base64url');

export function createCliLoginStore(db: Db, options: { now?: () => Date } = {}): CliLoginStore {
  const now = options.now ?? ((): Date => new Date());
  return {
    async issue(principal, challenge) {
      const code = randomBytes(32).toString('base64url');
      const at = now();
      await db.query('DELETE FROM steward.cli_logins WHERE expires_at <= $1::timestamptz', [at.toISOString()]);
      await db.query(
        'INSERT INTO steward.cli_logins (code_hash, challenge, principal, created_at, expires_at) VALUES ($1, $2, $3, $4::timestamptz, $5::timestamptz)',
        [sha256Hex(code), challenge, principal, at.toISOString(), new Date(at.getTime() + CLI_CODE_TTL_MS).toISOString()],
      );
      return code;
    },

    async redeem(code, verifier) {
      if (!CODE_PATTERN.test(code)) return null;
      // Deleted as it is read: a wrong verifier burns the code too, so it cannot be guessed at.
      const { rows } = await db.query<{ challenge: string; principal: string; expires_at: Date }>(
        'DELETE FROM steward.cli_logins WHERE code_hash = $1 RETURNING challenge, principal, expires_at',
        [sha256Hex(code)],
      );
      const row = rows[0];
      if (row === undefined || row.expires_at.getTime() <= now().getTime()) return null;
      const a = Buffer.from(challengeOf(verifier));
      const b = Buffer.from(row.challenge);
      return a.length === b.length && timingSafeEqual(a, b) ? row.principal : null;
    },
  };
}
