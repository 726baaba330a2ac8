/**
 * API tokens, hashed at rest.
 *
 * A token reads `stw_<id>_<secret>`: `id` (16 hex digits) finds the row, and
 * `secret` (32 random bytes, base64url) proves possession. Only sha256(secret)
 * is stored, so a copy of the database (a backup, a leaked dump) grants
 * nothing. A plain hash is enough here, unlike for passwords: the secret has
 * 256 bits of entropy, so there is nothing to brute-force.
 *
 * The plaintext is returned once, by `createToken`, and never again.
 *
 * Verified tokens are remembered (by id, with the secret's hash to compare),
 * so a busy caller, such as Trino's coordinator asking per query, costs no
 * store read per request. A revocation forgets its token in this process at
 * once and tells the other servers (change feed topic `tokens`, which calls
 * `forget`); an entry is read again after `TOKEN_RECHECK_MS` whatever
 * happens, for a row changed behind Steward's back. Expiry is checked on every use.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.js';
import { StewardError, invalid, notFound } from '../errors.js';
import { parsePrincipal } from '../policy/model.js';
import { notifyChange } from './change-feed.js';

export const TOKEN_ROLES = ['admin', 'user', 'embed'] as const;
export type TokenRole = (typeof TOKEN_ROLES)[number];

/** Who a verified token speaks for. */
export interface TokenIdentity {
  readonly id: string;
  readonly name: string;
  readonly principal: string;
  readonly role: TokenRole;
}

/** What listing shows: never the secret, never its hash. Instants are ISO-8601. */
export interface TokenListing extends TokenIdentity {
  readonly createdAt: string;
  readonly lastUsedAt?: string;
  readonly expiresAt?: string;
  readonly revokedAt?: string;
}

export interface CreateTokenInput {
  readonly name: string;
  /** `user:alice`, `group:ops`, or a bare user name. */
  readonly principal: string;
  readonly role: TokenRole;
  /** ISO-8601 or Date, in the future; omitted: the token does not expire. */
  readonly expiresAt?: string | Date;
}

export interface TokenStore {
  /** Returns the plaintext token: show it once, it cannot be recovered. */
  createToken(input: CreateTokenInput, tx?: Db): Promise<{ id: string; token: string }>;
  /** The identity behind a token, or null when it is malformed, unknown, forged, revoked or expired. */
  verifyToken(text: string): Promise<TokenIdentity | null>;
  listTokens(): Promise<TokenListing[]>;
  /** Idempotent; STEWARD_E_NOT_FOUND for an unknown id. */
  revokeToken(id: string, tx?: Db): Promise<void>;
  /** Whether any usable admin token exists (the first start creates one when not). */
  hasAnyAdminToken(): Promise<boolean>;
  /** Drops every remembered verification (another server revoked a token). */
  forget(): void;
}

const ID_BYTES = 8;
const SECRET_BYTES = 32;
const TOKEN_PATTERN = /^stw_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$/;
const ID_PATTERN = /^[0-9a-f]{16}$/;
const MAX_NAME = 128;
/** last_used_at is a hint for humans; writing it on every request would turn each read into a write. */
const LAST_USED_RESOLUTION_MS = 60_000;
/** How long a remembered verification is trusted without reading the row (revocations through Steward forget at once). */
export const TOKEN_RECHECK_MS = 30_000;
/** Remembered verifications at most; past it they are all forgotten (tokens are few; this bounds a flood of distinct valid ones). */
const MAX_REMEMBERED = 10_000;

/** A verified token: who it is, the hash to compare the next presentation with, and when the row was read. */
interface Remembered {
  readonly identity: TokenIdentity;
  readonly hash: Buffer;
  readonly expiresAt: number | null;
  readonly readAt: number;
  lastUsedAt: number | null;
}

const sha256Hex = (text: string): string => createHash('sha256').update(text, 'utf8').digest('hex');

interface TokenRow {
  id: string;
  name: string;
  principal: string;
  role: TokenRole;
  secret_hash: string;
  created_at: Date;
  last_used_at: Date | null;
  expires_at: Date | null;
  revoked_at: Date | null;
}

export function createTokenStore(db: Db, options: { now?: () => Date } = {}): TokenStore {
  const now = options.now ?? ((): Date => new Date());
  const remembered = new Map<string, Remembered>();

  /** The token's row, remembered, or undefined (and forgotten) when it is unknown or revoked. */
  const readUsable = async (id: string, at: number): Promise<Remembered | undefined> => {
    const { rows } = await db.query<TokenRow>('SELECT * FROM steward.api_tokens WHERE id = $1', [id]);
    const row = rows[0];
    if (row === undefined || row.revoked_at !== null) {
      remembered.delete(id);
      return undefined;
    }
    const entry: Remembered = {
      identity: { id: row.id, name: row.name, principal: row.principal, role: row.role },
      hash: Buffer.from(row.secret_hash, 'hex'),
      expiresAt: row.expires_at?.getTime() ?? null,
      readAt: at,
      lastUsedAt: row.last_used_at?.getTime() ?? null,
    };
    if (remembered.size >= MAX_REMEMBERED) remembered.clear();
    remembered.set(id, entry);
    return entry;
  };

  return {
    async createToken(input, tx = db) {
      const name = input.name.trim();
      if (name.length === 0 || name.length > MAX_NAME || /\p{Cc}/u.test(name)) {
        throw invalid('name', `must be 1 to ${MAX_NAME} printable characters`);
      }
      const p = parsePrincipal(input.principal);
      if (p === null) throw invalid('principal', `\`${input.principal.slice(0, 200)}\` is not a principal (\`user:name\` or \`group:name\`)`);
      if (!(TOKEN_ROLES as readonly string[]).includes(input.role)) throw invalid('role', `must be one of ${TOKEN_ROLES.join(', ')}`);
      let expiresAt: string | null = null;
      if (input.expiresAt !== undefined) {
        const d = input.expiresAt instanceof Date ? input.expiresAt : new Date(input.expiresAt);
        if (Number.isNaN(d.getTime())) throw invalid('expiresAt', 'must be an ISO-8601 instant');
        if (d.getTime() <= now().getTime()) throw invalid('expiresAt', 'must be in the future');
        expiresAt = d.toISOString();
      }
      const id = randomBytes(ID_BYTES).toString('hex');
      const secret = randomBytes(SECRET_BYTES).toString('base64url');
      try {
        await tx.query(
          `INSERT INTO steward.api_tokens (id, name, principal, role, secret_hash, created_at, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7::timestamptz)`,
          [id, name, `${p.kind}:${p.name}`, input.role, sha256Hex(secret), now().toISOString(), expiresAt],
        );
      } catch (e) {
        // No `cause`: driver errors carry the statement's parameters, the hash among them.
        throw new StewardError('STEWARD_E_INTERNAL', `cannot store the token: ${e instanceof Error ? e.message : 'unknown error'}`);
      }
      return { id, token: `stw_${id}_${secret}` };
    },

    async verifyToken(text) {
      const m = TOKEN_PATTERN.exec(text);
      if (m === null) return null;
      const [, id, secret] = m as unknown as [string, string, string];
      const presented = Buffer.from(sha256Hex(secret), 'hex');
      const at = now().getTime();
      let entry = remembered.get(id);
      if (entry === undefined || at - entry.readAt >= TOKEN_RECHECK_MS || at < entry.readAt) {
        entry = await readUsable(id, at);
        if (entry === undefined) return null;
      }
      if (entry.hash.length !== presented.length || !timingSafeEqual(entry.hash, presented)) return null;
      if (entry.expiresAt !== null && entry.expiresAt <= at) return null;
      if (entry.lastUsedAt === null || at - entry.lastUsedAt >= LAST_USED_RESOLUTION_MS) {
        entry.lastUsedAt = at;
        await db.query(
          `UPDATE steward.api_tokens SET last_used_at = $2::timestamptz
           WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - interval '1 minute')`,
          [id, new Date(at).toISOString()],
        );
      }
      return entry.identity;
    },

    async listTokens() {
      const { rows } = await db.query<Omit<TokenRow, 'secret_hash'>>(
        `SELECT id, name, principal, role, created_at, last_used_at, expires_at, revoked_at
         FROM steward.api_tokens ORDER BY created_at, id`,
      );
      return rows.map((r) => ({
        id: r.id,
        name: r.name,
        principal: r.principal,
        role: r.role,
        createdAt: r.created_at.toISOString(),
        ...(r.last_used_at === null ? {} : { lastUsedAt: r.last_used_at.toISOString() }),
        ...(r.expires_at === null ? {} : { expiresAt: r.expires_at.toISOString() }),
        ...(r.revoked_at === null ? {} : { revokedAt: r.revoked_at.toISOString() }),
      }));
    },

    async revokeToken(id, tx = db) {
      if (!ID_PATTERN.test(id)) throw notFound('token', id.slice(0, 64));
      remembered.delete(id);
      await tx.transaction(async (t) => {
        const { rows } = await t.query<{ id: string }>(
          'UPDATE steward.api_tokens SET revoked_at = coalesce(revoked_at, $2::timestamptz) WHERE id = $1 RETURNING id',
          [id, now().toISOString()],
        );
        if (rows.length === 0) throw notFound('token', id);
        await notifyChange(t, 'tokens');
      });
      // Again after the commit: a verification that read the row before it could have remembered it meanwhile.
      remembered.delete(id);
    },

    async hasAnyAdminToken() {
      const { rows } = await db.query<{ found: boolean }>(
        `SELECT EXISTS (
           SELECT 1 FROM steward.api_tokens
           WHERE role = 'admin' AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $1::timestamptz)
         ) AS found`,
        [now().toISOString()],
      );
      return rows[0]?.found === true;
    },

    forget() {
      remembered.clear();
    },
  };
}
