/**
 * Who is calling: the in-process CLI's actor, the server's per-process local
 * token, or an API token from the store. Failed attempts are counted per
 * source address (src/server/auth-failures.ts), never logged one row each.
 *
 * API routes open with `Authorization: Bearer` or the console's session
 * cookie (src/identity/session-auth.ts: a cookie-authenticated write also
 * needs the session's CSRF token); a request with both is judged by its
 * bearer token alone. Basic auth (the token as the
 * password) is accepted and offered only on the read-only pages a browser
 * opens (`/docs`, `/openapi.json`): a browser caches Basic credentials and
 * sends them on its own, cross-site requests included, so an API route that
 * honoured them would have an ambient credential to forge requests with.
 */
import type { ClientAddress } from './client-address.js';
import { timingSafeEqual } from 'node:crypto';
import type { Context } from 'hono';
import type { IncomingMessage } from 'node:http';
import { StewardError } from '../errors.js';
import { LOCAL_ADMIN, type Actor } from './actor.js';
import { parsePrincipal, principalRef } from '../policy/model.js';
import type { Services } from './services.js';
import type { TokenUseAudit } from '../audit/token-use.js';
import type { AuthFailureGuard } from './auth-failures.js';
import type { SessionStore } from '../identity/session-store.js';
import { sessionOfRequest } from '../identity/session-auth.js';
import { readSessionCookie } from '../identity/session-cookie.js';

/** In-process callers (the embedded CLI) pass this as Hono's env; the network adapter never can. */
export interface LocalBindings {
  readonly stewardLocalActor?: Actor;
  /** Set by @hono/node-server: the socket tells the caller's address. */
  readonly incoming?: IncomingMessage;
}

export interface Authenticator {
  /** The actor of a request; `basic` also accepts Basic auth (browser pages only). */
  authenticate(c: Context<{ Bindings: LocalBindings }>, options?: { basic?: boolean }): Promise<Actor>;
  /** Refuses (429) a request whose address has used up its failed attempts; for routes that check their own credentials. */
  throttle(c: Context<{ Bindings: LocalBindings }>): void;
  /**
   * An API token from the store (never the per-process local token, which
   * dies with the process a session would outlive), rate-limited and counted
   * like a bearer token: the sign-in of a cookie session.
   */
  verifyApiToken(token: string, source: string): Promise<Actor>;
}

export interface AuthenticatorDeps {
  readonly services: Pick<Services, 'tokens'>;
  /** Cookie sessions; without them only bearer tokens open API routes. */
  readonly sessions?: SessionStore;
  readonly tokenUse: TokenUseAudit;
  readonly failures: AuthFailureGuard;
  /** Where a request comes from, for failure counts and rate limits (client-address.ts). */
  readonly source: ClientAddress;
  /** The per-process secret of `steward serve` (see AppOptions.localToken). */
  readonly localToken?: string;
}

export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const rateLimit = (c: Context<{ Bindings: LocalBindings }> | null, source: string): void => {
    const wait = deps.failures.check(source);
    if (wait === null) return;
    c?.header('Retry-After', String(wait));
    throw new StewardError('STEWARD_E_RATE_LIMITED', `too many failed authentications from this address; retry in ${wait} s`);
  };

  const storedToken = async (token: string, source: string): Promise<Actor> => {
    const found = await deps.services.tokens.verifyToken(token);
    if (found === null) {
      deps.failures.failed(source, 'invalid, expired or revoked token');
      throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'invalid, expired or revoked token');
    }
    const principal = parsePrincipal(found.principal);
    if (principal === null) throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'token names an invalid principal');
    const ref = principalRef(principal.kind, principal.name);
    await deps.tokenUse.accepted({ tokenId: found.id, principal: ref, role: found.role });
    return { principal: ref, role: found.role, via: found.id };
  };

  const cookieSession = async (c: Context<{ Bindings: LocalBindings }>, sessions: SessionStore, source: string): Promise<Actor> => {
    let session;
    try {
      session = await sessionOfRequest(sessions, { method: c.req.method, header: (name) => c.req.header(name) });
    } catch (e) {
      if (e instanceof StewardError && e.code === 'STEWARD_E_UNAUTHENTICATED') deps.failures.failed(source, e.message);
      throw e;
    }
    const principal = session === null ? null : parsePrincipal(session.principal);
    if (session === null || principal === null) throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'session names an invalid principal');
    const ref = principalRef(principal.kind, principal.name);
    if (session.tokenId !== undefined) await deps.tokenUse.accepted({ tokenId: session.tokenId, principal: ref, role: session.role });
    return { principal: ref, role: session.role, via: `session:${session.id.slice(0, 16)}` };
  };

  const throttle = (c: Context<{ Bindings: LocalBindings }>): void => rateLimit(c, deps.source(c));

  return {
    throttle,
    async authenticate(c, options = {}) {
      const local = c.env?.stewardLocalActor;
      if (local !== undefined) return local;
      const basic = options.basic === true;
      const token = tokenFrom(c.req.header('authorization'), { basic });
      if (token !== null && deps.localToken !== undefined && sameSecret(token, deps.localToken)) return LOCAL_ADMIN;
      // A bearer token wins over a cookie: the request is judged by the credential its sender chose.
      const hasCookie = token === null && deps.sessions !== undefined && readSessionCookie(c.req.header('cookie')).kind !== 'none';
      const source = deps.source(c);
      rateLimit(c, source);
      // A request without a token costs no store read and was never logged: it is refused, not counted.
      if (token === null && !hasCookie) {
        c.header('WWW-Authenticate', basic ? 'Bearer realm="steward", Basic realm="steward"' : 'Bearer realm="steward"');
        throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'missing token: send `Authorization: Bearer <token>` or sign in');
      }
      if (token !== null) return storedToken(token, source);
      return cookieSession(c, deps.sessions as SessionStore, source);
    },

    async verifyApiToken(token, source) {
      rateLimit(null, source);
      return storedToken(token, source);
    },
  };
}

/**
 * The token of an `Authorization` header: Bearer, or, with `basic`, Basic
 * auth with the token as the password (any user name).
 */
export function tokenFrom(header: string | undefined, options: { basic?: boolean } = { basic: true }): string | null {
  if (header === undefined || header.length > 1024) return null;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (value === undefined) return null;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic' && options.basic === true) {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 && colon < decoded.length - 1 ? decoded.slice(colon + 1) : null;
  }
  return null;
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
