/**
 * A request's cookie session: the one check the API's authenticator
 * (src/server/auth.ts) and the session routes share.
 *
 * A state-changing request (POST, PUT, PATCH, DELETE) authenticated by the
 * cookie must carry the session's CSRF token in `x-steward-csrf`: the cookie
 * is ambient (the browser sends it on its own), the header is not (only a
 * script of our own origin, which read the token from `/v1/session`, can
 * set it). This is on top of the browser guard's origin and JSON-body rules.
 */
import { timingSafeEqual } from 'node:crypto';
import { StewardError } from '../errors.js';
import { CSRF_HEADER, isStateChanging } from '../server/browser-guard.js';
import { readSessionCookie } from './session-cookie.js';
import type { Session, SessionStore } from './session-store.js';

/** What is read of a request: its method and headers (a Hono request or a fetch Request). */
export interface SessionRequest {
  readonly method: string;
  header(name: string): string | undefined;
}

/** Why a cookie opened nothing; the authenticator counts it as a failed authentication. */
export const DEAD_SESSION = 'invalid, expired or revoked session: sign in again';

/**
 * The live session of the request's cookie, its idle timer reset, or null
 * when the request carries no session cookie. Throws 401 for a cookie that
 * opens nothing (or two cookies), 403 for a write without the right CSRF token.
 */
export async function sessionOfRequest(sessions: SessionStore, req: SessionRequest): Promise<Session | null> {
  const cookie = readSessionCookie(req.header('cookie'));
  if (cookie.kind === 'none') return null;
  if (cookie.kind === 'ambiguous') throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'more than one session cookie: sign in again');
  const session = await sessions.find(cookie.value);
  if (session === null) throw new StewardError('STEWARD_E_UNAUTHENTICATED', DEAD_SESSION);
  if (isStateChanging(req.method)) requireCsrf(session, req.header(CSRF_HEADER));
  // Touched only once the CSRF check passed: a forged request must not even keep a session alive.
  return sessions.touch(session);
}

function requireCsrf(session: Session, presented: string | undefined): void {
  if (presented === undefined || presented === '') {
    throw new StewardError('STEWARD_E_FORBIDDEN', `missing CSRF token: a cookie-authenticated write must send header \`${CSRF_HEADER}\``);
  }
  const a = Buffer.from(presented);
  const b = Buffer.from(session.csrfToken);
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `wrong CSRF token in header \`${CSRF_HEADER}\``);
  }
}
