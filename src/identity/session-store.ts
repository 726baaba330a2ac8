/**
 * Browser sessions, hashed at rest.
 *
 * The cookie carries a 256-bit random secret; the row is keyed by its sha256,
 * so a copy of the database (a backup, a leaked dump) signs nobody in. Every
 * sign-in mints a new secret (no session fixation: nothing the browser sent
 * before is ever adopted). A session ends at the first of: sign-out
 * (`revoked_at`), its idle timeout since it was last used, its absolute
 * expiry, and — for a session made from an API token — that token being
 * revoked, expiring or deleted.
 *
 * Each session has its own CSRF token, which the browser must echo in a
 * header on every state-changing request (src/server/auth.ts). It is not a
 * credential on its own: without the HttpOnly cookie it opens nothing.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../store/db.js';
import { StewardError } from '../errors.js';
import type { Role } from '../server/actor.js';

/** An embed token never signs in to the console, so a session is an admin's or a user's. */
export type SessionRole = Exclude<Role, 'embed'>;

export type SessionOrigin = 'token' | 'oidc';

export interface Session {
  /** sha256 of the secret, hex. */
  readonly id: string;
  readonly principal: string;
  readonly role: SessionRole;
  readonly csrfToken: string;
  readonly createdBy: SessionOrigin;
  /** The API token it was made from (`createdBy: 'token'`). */
  readonly tokenId?: string;
  readonly createdAt: Date;
  readonly lastSeenAt: Date;
  readonly idleTimeoutSeconds: number;
  readonly expiresAt: Date;
}

/** What the browser is told about its session (`POST /v1/sessions`, `GET /v1/session`). */
export interface SessionView {
  readonly principal: string;
  readonly role: SessionRole;
  readonly csrfToken: string;
  /** When the session ends unless used before (ISO-8601). */
  readonly idleExpiresAt: string;
  /** When it ends whatever happens (ISO-8601). */
  readonly expiresAt: string;
}

export interface NewSession {
  readonly principal: string;
  readonly role: SessionRole;
  readonly createdBy: SessionOrigin;
  readonly tokenId?: string;
}

export interface SessionStore {
  /** A new session and its secret: the secret goes into the cookie and is never stored. */
  create(input: NewSession): Promise<{ secret: string; session: Session }>;
  /** The live session behind a cookie secret, or null when malformed, unknown, revoked, idle too long, past its expiry, or its token is dead. */
  find(secret: string): Promise<Session | null>;
  /** Records a use (resets the idle timer); returns the session as it now is. */
  touch(session: Session): Promise<Session>;
  /** Ends a session server-side. Idempotent. */
  revoke(id: string): Promise<void>;
  /** Every live session (as `find` judges them), newest first: for admins to see and revoke. */
  listLive(): Promise<Session[]>;
}

export interface SessionStoreOptions {
  readonly idleSeconds: number;
  readonly maxSeconds: number;
  readonly now?: () => Date;
}

const SECRET_BYTES = 32;
const SECRET_PATTERN = /^[A-Za-z0-9_-]{43}$/;
/** last_seen_at moves at most this often: a write per request would turn every read into a write. */
const TOUCH_RESOLUTION_MS = 15_000;
/** Dead rows are kept a day (for whoever investigates), then deleted at the next sign-in. */
const KEEP_DEAD_MS = 86_400_000;

interface SessionRow {
  id: string;
  principal: string;
  role: SessionRole;
  csrf_token: string;
  created_by: SessionOrigin;
  token_id: string | null;
  created_at: Date;
  last_seen_at: Date;
  idle_timeout_seconds: number;
  expires_at: Date;
}

export const sessionIdOf = (secret: string): string => createHash('sha256').update(secret, 'utf8').digest('hex');

/**
 * How a session is named to people: the first 16 hex digits of its id, as in
 * the decision log (`auth.session.*` entries), so a listed session and its
 * sign-in can be matched. The rest of the row (the CSRF token above all) is
 * never shown.
 */
export const PUBLIC_ID_LENGTH = 16;
export const publicSessionId = (s: Pick<Session, 'id'>): string => s.id.slice(0, PUBLIC_ID_LENGTH);

export function sessionView(s: Session): SessionView {
  return {
    principal: s.principal,
    role: s.role,
    csrfToken: s.csrfToken,
    idleExpiresAt: idleExpiry(s).toISOString(),
    expiresAt: s.expiresAt.toISOString(),
  };
}

function idleExpiry(s: Session): Date {
  return new Date(Math.min(s.lastSeenAt.getTime() + s.idleTimeoutSeconds * 1000, s.expiresAt.getTime()));
}

export function createSessionStore(db: Db, options: SessionStoreOptions): SessionStore {
  const now = options.now ?? ((): Date => new Date());
  return {
    async create(input) {
      if (input.createdBy === 'token' && input.tokenId === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'a token session needs its token id');
      const secret = randomBytes(SECRET_BYTES).toString('base64url');
      const at = now();
      const session: Session = {
        id: sessionIdOf(secret),
        principal: input.principal,
        role: input.role,
        csrfToken: randomBytes(SECRET_BYTES).toString('base64url'),
        createdBy: input.createdBy,
        ...(input.tokenId === undefined ? {} : { tokenId: input.tokenId }),
        createdAt: at,
        lastSeenAt: at,
        idleTimeoutSeconds: options.idleSeconds,
        expiresAt: new Date(at.getTime() + options.maxSeconds * 1000),
      };
      try {
        await db.query('DELETE FROM steward.sessions WHERE expires_at < $1::timestamptz', [new Date(at.getTime() - KEEP_DEAD_MS).toISOString()]);
        await db.query(
          `INSERT INTO steward.sessions (id, principal, role, csrf_token, created_by, token_id, created_at, last_seen_at, idle_timeout_seconds, expires_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7::timestamptz, $7::timestamptz, $8, $9::timestamptz)`,
          [session.id, session.principal, session.role, session.csrfToken, session.createdBy, input.tokenId ?? null, at.toISOString(), session.idleTimeoutSeconds, session.expiresAt.toISOString()],
        );
      } catch (e) {
        // No `cause`: driver errors carry the statement's parameters, the CSRF token among them.
        throw new StewardError('STEWARD_E_INTERNAL', `cannot store the session: ${e instanceof Error ? e.message : 'unknown error'}`);
      }
      return { secret, session };
    },

    async find(secret) {
      if (!SECRET_PATTERN.test(secret)) return null;
      const at = now().toISOString();
      const { rows } = await db.query<SessionRow>(`${LIVE_SESSIONS} AND s.id = $2`, [at, sessionIdOf(secret)]);
      const row = rows[0];
      return row === undefined ? null : fromRow(row);
    },

    async touch(session) {
      const at = now();
      if (at.getTime() - session.lastSeenAt.getTime() < TOUCH_RESOLUTION_MS) return session;
      await db.query('UPDATE steward.sessions SET last_seen_at = greatest(last_seen_at, $2::timestamptz) WHERE id = $1', [session.id, at.toISOString()]);
      return { ...session, lastSeenAt: at };
    },

    async revoke(id) {
      await db.query('UPDATE steward.sessions SET revoked_at = coalesce(revoked_at, $2::timestamptz) WHERE id = $1', [id, now().toISOString()]);
    },

    async listLive() {
      const { rows } = await db.query<SessionRow>(`${LIVE_SESSIONS} ORDER BY s.created_at DESC LIMIT 1000`, [now().toISOString()]);
      return rows.map(fromRow);
    },
  };
}

/**
 * The live sessions at `$1`: one read answers every way a session ends, the
 * token's own revocation and expiry included (`find` and `listLive` share it,
 * so the list shows exactly the sessions that would open something).
 */
const LIVE_SESSIONS = `SELECT s.id, s.principal, s.role, s.csrf_token, s.created_by, s.token_id, s.created_at, s.last_seen_at, s.idle_timeout_seconds, s.expires_at
  FROM steward.sessions s
  LEFT JOIN steward.api_tokens t ON t.id = s.token_id
  WHERE s.revoked_at IS NULL
    AND s.expires_at > $1::timestamptz
    AND s.last_seen_at + make_interval(secs => s.idle_timeout_seconds) > $1::timestamptz
    AND (s.token_id IS NULL OR (t.id IS NOT NULL AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $1::timestamptz)))`;

function fromRow(r: SessionRow): Session {
  return {
    id: r.id,
    principal: r.principal,
    role: r.role,
    csrfToken: r.csrf_token,
    createdBy: r.created_by,
    ...(r.token_id === null ? {} : { tokenId: r.token_id }),
    createdAt: r.created_at,
    lastSeenAt: r.last_seen_at,
    idleTimeoutSeconds: r.idle_timeout_seconds,
    expiresAt: r.expires_at,
  };
}
