/**
 * Pending OpenID Connect sign-ins: what the callback must check, kept
 * server-side between the redirect to the provider and its answer.
 *
 * A row is keyed by sha256 of the `state` sent to the provider and holds the
 * PKCE verifier, the nonce, where to go afterwards, and sha256 of a cookie
 * given to the browser that started it. The callback consumes the row
 * (deleted as it is read), so a state and its code work once; a row expires
 * after ten minutes.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { StewardError } from '../errors.js';

/** A sign-in started by `steward login`: where its loopback listener waits, and the challenge its code is bound to. */
export interface CliTarget {
  readonly port: number;
  readonly challenge: string;
}

export interface PendingLogin {
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
  readonly browserHash: string;
  readonly cli?: CliTarget;
}

export interface PendingLoginStore {
  /** Records a sign-in; returns its `state` and the browser-binding secret (for a cookie). */
  start(input: { codeVerifier: string; nonce: string; returnTo: string; cli?: CliTarget }): Promise<{ state: string; browserSecret: string }>;
  /** The pending sign-in of `state`, removed so it cannot be used again; null when unknown or expired. */
  consume(state: string): Promise<PendingLogin | null>;
}

export const PENDING_LOGIN_TTL_MS = 10 * 60_000;
/** Starting a sign-in is an unauthenticated GET that writes a row: past this many live ones, new starts wait. */
export const MAX_PENDING_LOGINS = 10_000;
const STATE_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

export function createPendingLoginStore(db: Db, options: { now?: () => Date } = {}): PendingLoginStore {
  const now = options.now ?? ((): Date => new Date());
  return {
    async start(input) {
      const state = randomBytes(32).toString('base64url');
      const browserSecret = randomBytes(32).toString('base64url');
      const at = now();
      await db.query('DELETE FROM steward.oidc_logins WHERE expires_at <= $1::timestamptz', [at.toISOString()]);
      const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.oidc_logins');
      if ((rows[0]?.n ?? 0) >= MAX_PENDING_LOGINS) {
        throw new StewardError('STEWARD_E_RATE_LIMITED', `too many sign-ins in progress (${MAX_PENDING_LOGINS}); retry in a few minutes`);
      }
      await db.query(
        `INSERT INTO steward.oidc_logins (state_hash, code_verifier, nonce, return_to, browser_hash, cli_port, cli_challenge, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::timestamptz, $9::timestamptz)`,
        [
          sha256Hex(state),
          input.codeVerifier,
          input.nonce,
          input.returnTo,
          sha256Hex(browserSecret),
          input.cli?.port ?? null,
          input.cli?.challenge ?? null,
          at.toISOString(),
          new Date(at.getTime() + PENDING_LOGIN_TTL_MS).toISOString(),
        ],
      );
      return { state, browserSecret };
    },

    async consume(state) {
      if (!STATE_PATTERN.test(state)) return null;
      const { rows } = await db.query<{ code_verifier: string; nonce: string; return_to: string; browser_hash: string; cli_port: number | null; cli_challenge: string | null; expires_at: Date }>(
        'DELETE FROM steward.oidc_logins WHERE state_hash = $1 RETURNING code_verifier, nonce, return_to, browser_hash, cli_port, cli_challenge, expires_at',
        [sha256Hex(state)],
      );
      const row = rows[0];
      if (row === undefined || row.expires_at.getTime() <= now().getTime()) return null;
      const cli = row.cli_port === null || row.cli_challenge === null ? undefined : { port: row.cli_port, challenge: row.cli_challenge };
      return { codeVerifier: row.code_verifier, nonce: row.nonce, returnTo: row.return_to, browserHash: row.browser_hash, ...(cli === undefined ? {} : { cli }) };
    },
  };
}
