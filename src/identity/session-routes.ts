/**
 * Cookie sessions for the web console: sign in with an API token, read the
 * session (and its CSRF token), sign out. OIDC sign-in creates the same
 * sessions (src/identity/oidc-routes.ts).
 *
 * Session fixation: every sign-in mints a new secret and replaces whatever
 * cookie the browser sent, which is revoked if it was a live session (it is
 * never adopted). The secret travels only in `Set-Cookie`; the body carries
 * the CSRF token the console echoes on writes.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { StewardError } from '../errors.js';
import { actorName, type Actor } from '../server/actor.js';
import type { Services } from '../server/services.js';
import { sessionOfRequest, type SessionRequest } from './session-auth.js';
import { clearedSessionCookie, readSessionCookie, sessionCookie, wantsSecureCookie } from './session-cookie.js';
import { PUBLIC_ID_LENGTH, publicSessionId, sessionIdOf, sessionView, type NewSession, type Session, type SessionStore } from './session-store.js';

export const SessionViewSchema = z.object({
  principal: z.string(),
  role: z.enum(['admin', 'user']),
  csrfToken: z.string(),
  idleExpiresAt: z.string(),
  expiresAt: z.string(),
});

type SessionViewOut = z.infer<typeof SessionViewSchema>;

/** A session as admins see it: who, how, since when, until when. No secret, hash or CSRF token. */
export const SessionListingSchema = z.object({
  id: z.string(),
  principal: z.string(),
  role: z.enum(['admin', 'user']),
  via: z.enum(['token', 'oidc']),
  tokenId: z.string().optional(),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  idleExpiresAt: z.string(),
  expiresAt: z.string(),
  /** The session of the request itself (so the console can say "this browser"). */
  current: z.boolean(),
});
type SessionListing = z.infer<typeof SessionListingSchema>;

function listing(s: Session, currentId: string | null): SessionListing {
  // Built field by field from the row: a new column of the session table shows up here only when someone adds it on purpose.
  const v = sessionView(s);
  return {
    id: publicSessionId(s),
    principal: s.principal,
    role: s.role,
    via: s.createdBy,
    ...(s.tokenId === undefined ? {} : { tokenId: s.tokenId }),
    createdAt: s.createdAt.toISOString(),
    lastSeenAt: s.lastSeenAt.toISOString(),
    idleExpiresAt: v.idleExpiresAt,
    expiresAt: v.expiresAt,
    current: s.id === currentId,
  };
}

/** The id of the session whose cookie the request carries, if any (not checked: only compared with live ids). */
function presentedId(request: Request): string | null {
  const cookie = readSessionCookie(request.headers.get('cookie') ?? undefined);
  return cookie.kind === 'one' ? sessionIdOf(cookie.value) : null;
}

/** These routes answer with a Response of their own (they set cookies); the app passes a Response through as it is. */
function asResult<T>(res: Response): T {
  return res as unknown as T;
}

export interface SessionRouteDeps {
  readonly sessions: SessionStore;
  /** The authenticator's check of an API token (rate-limited, failures counted). */
  readonly verifyApiToken: (token: string, source: string) => Promise<Actor>;
}

export function sessionRoutes(deps: SessionRouteDeps): RouteDef[] {
  return [
    route({
      method: 'post',
      path: '/v1/sessions',
      summary: 'Sign in with an API token: sets the HttpOnly session cookie, returns the CSRF token for writes',
      tag: 'sessions',
      auth: 'public',
      status: 201,
      body: z.object({ token: z.string().min(1).max(1024) }).strict(),
      response: SessionViewSchema,
      handler: async ({ body, request, source, services }) => {
        const actor = await deps.verifyApiToken(body.token, source);
        if (actor.role === 'embed') throw new StewardError('STEWARD_E_FORBIDDEN', 'an embed token cannot sign in to the console');
        return asResult<SessionViewOut>(
          await startSession({ sessions: deps.sessions, services, request }, { principal: actor.principal, role: actor.role, createdBy: 'token', tokenId: actor.via }, 'signed in with an API token'),
        );
      },
    }),
    route({
      method: 'get',
      path: '/v1/session',
      summary: 'The signed-in session: principal, role, CSRF token and when it ends',
      tag: 'sessions',
      auth: 'public',
      response: SessionViewSchema,
      handler: async ({ request }) => {
        const session = await requireSession(deps.sessions, request);
        return asResult<SessionViewOut>(jsonResponse(sessionView(session), 200));
      },
    }),
    route({
      method: 'delete',
      path: '/v1/session',
      summary: 'Sign out: revokes the session on the server and clears the cookie (needs the CSRF header)',
      tag: 'sessions',
      auth: 'public',
      response: z.object({ ok: z.literal(true) }),
      handler: async ({ request, services }) => {
        const session = await requireSession(deps.sessions, request);
        await deps.sessions.revoke(session.id);
        await services.state.log([sessionEvent(session, 'auth.session.revoke', 'signed out')]);
        return asResult<{ ok: true }>(jsonResponse({ ok: true }, 200, { 'set-cookie': clearedSessionCookie(wantsSecureCookie(request, services.config.publicUrl)) }));
      },
    }),
    route({
      method: 'get',
      path: '/v1/sessions',
      summary: 'Live console sessions (admins): who, signed in how, last use and when each ends; never a secret or CSRF token',
      tag: 'sessions',
      auth: 'admin',
      response: z.object({ sessions: z.array(SessionListingSchema) }),
      handler: async ({ request }) => {
        const currentId = presentedId(request);
        return { sessions: (await deps.sessions.listLive()).map((x) => listing(x, currentId)) };
      },
    }),
    route({
      method: 'delete',
      path: '/v1/sessions/:id',
      summary: 'Revoke a live session (admins): its cookie opens nothing from the next request on',
      tag: 'sessions',
      auth: 'admin',
      params: z.object({ id: z.string().regex(new RegExp(`^[0-9a-f]{${PUBLIC_ID_LENGTH}}$`), `must be the ${PUBLIC_ID_LENGTH} hex digits \`GET /v1/sessions\` lists`) }).strict(),
      response: z.object({ ok: z.literal(true) }),
      handler: async ({ params, actor, services }) => {
        const matches = (await deps.sessions.listLive()).filter((s) => publicSessionId(s) === params.id);
        const session = matches[0];
        if (session === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `no live session \`${params.id}\``);
        // 64 bits of a sha256 collide in practice never; if they do, revoke neither rather than the wrong one.
        if (matches.length > 1) throw new StewardError('STEWARD_E_CONFLICT', `\`${params.id}\` names more than one session`);
        await deps.sessions.revoke(session.id);
        await services.state.log([{ ...sessionEvent(session, 'auth.session.revoke', `revoked by ${actorName(actor)}`), actor: actorName(actor) }]);
        return { ok: true as const };
      },
    }),
  ];
}

export interface SessionStart {
  readonly sessions: SessionStore;
  readonly services: Pick<Services, 'state' | 'config'>;
  readonly request: Request;
}

/**
 * Mints a session, revoking the one the browser presented if any, logs the
 * sign-in, and answers 201 with the cookie. `redirect` answers 302 to its
 * `location` instead, with its extra cookies (the OIDC callback).
 */
export async function startSession(ctx: SessionStart, input: NewSession, reason: string, redirect?: { location: string; cookies: readonly string[] }): Promise<Response> {
  await revokePresented(ctx.sessions, ctx.request);
  const { secret, session } = await ctx.sessions.create(input);
  await ctx.services.state.log([sessionEvent(session, 'auth.session.create', reason)]);
  const cookie = sessionCookie(secret, wantsSecureCookie(ctx.request, ctx.services.config.publicUrl));
  if (redirect === undefined) return jsonResponse(sessionView(session), 201, { 'set-cookie': cookie });
  const headers = new Headers({ location: redirect.location, 'cache-control': 'no-store' });
  for (const c of [cookie, ...redirect.cookies]) headers.append('set-cookie', c);
  return new Response(null, { status: 302, headers });
}

/** The cookie a browser brings to a sign-in is replaced; if it still opened a session, that session ends now. */
async function revokePresented(sessions: SessionStore, request: Request): Promise<void> {
  const cookie = readSessionCookie(request.headers.get('cookie') ?? undefined);
  if (cookie.kind !== 'one') return;
  const old = await sessions.find(cookie.value);
  if (old !== null) await sessions.revoke(old.id);
}

async function requireSession(sessions: SessionStore, request: Request): Promise<Session> {
  const session = await sessionOfRequest(sessions, asSessionRequest(request));
  if (session === null) throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'no session: sign in first');
  return session;
}

function asSessionRequest(request: Request): SessionRequest {
  return { method: request.method, header: (name) => request.headers.get(name) ?? undefined };
}

/** The decision-log row of a sign-in or sign-out: the session's id prefix (a hash), never its secret or CSRF token. */
function sessionEvent(session: Session, action: string, reason: string): { actor: string; action: string; resource: string; result: 'allow'; reason: string; details: Record<string, unknown> } {
  return {
    actor: session.principal,
    action,
    resource: 'session',
    result: 'allow',
    reason,
    details: { session: session.id.slice(0, 16), via: session.createdBy, ...(session.tokenId === undefined ? {} : { token: session.tokenId }), role: session.role },
  };
}

function jsonResponse(body: unknown, status: number, headers: Record<string, string> = {}): Response {
  // no-store: a session body holds the CSRF token; no cache may keep it.
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers } });
}
