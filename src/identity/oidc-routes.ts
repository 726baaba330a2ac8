/**
 * The browser side of OpenID Connect sign-in, and what the console asks
 * before showing its sign-in page.
 *
 * - `GET /auth/oidc/login?returnTo=/path` → 302 to the provider, with a
 *   short-lived `steward_oidc` cookie binding the sign-in to this browser
 *   (`SameSite=Lax`: it must come back on the provider's top-level redirect).
 * - `GET /auth/oidc/callback` → a session cookie and 302 to `returnTo`, or an
 *   HTML page that says why the sign-in was refused. Refusals count as failed
 *   authentications of the caller's address (rate-limited like bad tokens).
 * - `GET /v1/auth/config` (no auth) → `{ oidc: { enabled, issuer? } }`.
 *
 * - `steward login` starts with `/auth/oidc/login?cli_port=P&cli_challenge=C`:
 *   its callback redirects to `http://127.0.0.1:P/callback?code=…` (always
 *   the loopback address, only the port is the caller's), and the CLI trades
 *   the code and its verifier at `POST /v1/cli-logins/redeem` for an API token
 *   (src/identity/cli-logins.ts).
 *
 * `returnTo` is a same-origin path only (`/catalog?x=1`), never `//host` or
 * a URL: an open redirect would turn our sign-in into a phishing relay.
 */
import type { Hono } from 'hono';
import { z } from 'zod';
import { StewardError } from '../errors.js';
import { route, type RouteDef } from '../server/route.js';
import type { LocalBindings } from '../server/auth.js';
import type { ClientAddress } from '../server/client-address.js';
import type { AuthFailureGuard } from '../server/auth-failures.js';
import type { Services } from '../server/services.js';
import { wantsSecureCookie } from './session-cookie.js';
import { startSession } from './session-routes.js';
import type { SessionStore } from './session-store.js';
import type { OidcSignIn } from './oidc-sign-in.js';
import type { CliTarget } from './oidc-logins.js';
import { OIDC_CALLBACK_PATH } from './oidc-setup.js';

const BINDING_COOKIE = 'steward_oidc';
const BINDING_PATH = '/auth/oidc';
const BINDING_MAX_AGE_SECONDS = 600;

export interface OidcRouteDeps {
  readonly oidc: OidcSignIn;
  readonly sessions: SessionStore;
  readonly services: Pick<Services, 'state' | 'config'>;
  readonly failures: AuthFailureGuard;
  readonly source: ClientAddress;
}

export function mountOidcRoutes(app: Hono<{ Bindings: LocalBindings }>, deps: OidcRouteDeps): void {
  app.get(`${BINDING_PATH}/login`, async (c) => {
    const returnTo = safeReturnTo(c.req.query('returnTo'));
    const cli = cliTarget(c.req.query('cli_port'), c.req.query('cli_challenge'));
    const secure = wantsSecureCookie(c.req.raw, deps.services.config.publicUrl);
    let begun: Awaited<ReturnType<OidcSignIn['begin']>>;
    try {
      begun = await deps.oidc.begin(returnTo, cli);
    } catch (e) {
      if (e instanceof StewardError) throw e;
      // Discovery failed: the provider is down, or its metadata does not match the configured issuer. The admin needs the reason.
      console.error('[steward] oidc: cannot reach or trust the identity provider:', e instanceof Error ? e.message : e);
      return refusalPage(502, `the identity provider cannot be reached or does not match the configured issuer (${e instanceof Error ? e.message.slice(0, 200) : 'unknown error'})`, secure);
    }
    const { location, browserSecret } = begun;
    c.header('set-cookie', bindingCookie(browserSecret, secure));
    c.header('cache-control', 'no-store');
    return c.redirect(location.href, 302);
  });

  app.get(OIDC_CALLBACK_PATH, async (c) => {
    const source = deps.source(c);
    const secure = wantsSecureCookie(c.req.raw, deps.services.config.publicUrl);
    const wait = deps.failures.check(source);
    if (wait !== null) return refusalPage(429, `too many failed sign-ins from this address; retry in ${wait} s`, secure);
    const outcome = await deps.oidc.finish(new URL(c.req.url).search, bindingOf(c.req.header('cookie')));
    if (!outcome.ok) {
      deps.failures.failed(source, `oidc: ${outcome.reason}`);
      return refusalPage(outcome.status, outcome.reason, secure);
    }
    if (outcome.cli !== undefined) {
      const code = await deps.oidc.cliLogins.issue(outcome.principal, outcome.cli.challenge);
      const headers = new Headers({ location: `http://127.0.0.1:${outcome.cli.port}/callback?code=${code}`, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
      headers.append('set-cookie', clearedBindingCookie(secure));
      return new Response(null, { status: 302, headers });
    }
    return startSession(
      { sessions: deps.sessions, services: deps.services, request: c.req.raw },
      { principal: outcome.principal, role: 'user', createdBy: 'oidc' },
      `signed in with OIDC (${deps.oidc.issuer})`,
      { location: outcome.returnTo, cookies: [clearedBindingCookie(secure)] },
    );
  });
}

/** `GET /v1/auth/config`: which sign-in buttons the console shows. */
export function authConfigRoute(oidc: OidcSignIn | undefined): RouteDef {
  return route({
    method: 'get',
    path: '/v1/auth/config',
    summary: 'How to sign in: whether OIDC is configured, and its issuer (no authentication)',
    tag: 'sessions',
    auth: 'public',
    response: z.object({ oidc: z.object({ enabled: z.boolean(), issuer: z.string().optional() }) }),
    handler: () => ({ oidc: oidc === undefined ? { enabled: false } : { enabled: true, issuer: oidc.issuer } }),
  });
}

/** `POST /v1/cli-logins/redeem`: the CLI's code and verifier for an API token of the signed-in user. */
export function cliLoginRoute(oidc: OidcSignIn): RouteDef {
  return route({
    method: 'post',
    path: '/v1/cli-logins/redeem',
    summary: 'Exchange the one-time code of `steward login` and its verifier for a user API token (no authentication)',
    tag: 'sessions',
    auth: 'public',
    status: 201,
    body: z.object({ code: z.string().min(1).max(128), verifier: z.string().min(43).max(128) }).strict(),
    response: z.object({ token: z.string(), id: z.string(), principal: z.string(), expiresAt: z.string() }),
    handler: async ({ body, services }) => {
      const principal = await oidc.cliLogins.redeem(body.code, body.verifier);
      if (principal === null) throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'unknown, used or expired login code, or the wrong verifier: run `steward login` again');
      const expiresAt = new Date(Date.now() + CLI_TOKEN_TTL_MS);
      const created = await services.tokens.createToken({ name: 'cli-login', principal, role: 'user', expiresAt });
      await services.state.log([{ actor: principal, action: 'token.create', resource: principal, result: 'ok', reason: `token ${created.id} (user) by steward login (OIDC)` }]);
      return { token: created.token, id: created.id, principal, expiresAt: expiresAt.toISOString() };
    },
  });
}

/** How long a token made by `steward login` lives: a working week, then sign in again (and the group claim is read again). */
export const CLI_TOKEN_TTL_MS = 7 * 86_400_000;

/** `cli_port` and `cli_challenge` together, or neither. */
function cliTarget(port: string | undefined, challenge: string | undefined): CliTarget | undefined {
  if (port === undefined && challenge === undefined) return undefined;
  const n = Number(port);
  if (port === undefined || !/^\d{4,5}$/.test(port) || n < 1024 || n > 65535) {
    throw new StewardError('STEWARD_E_VALIDATION', 'query.cli_port: must be a port from 1024 to 65535', { details: [{ path: 'query.cli_port', message: 'must be a port from 1024 to 65535' }] });
  }
  if (challenge === undefined || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
    throw new StewardError('STEWARD_E_VALIDATION', 'query.cli_challenge: must be a base64url sha256 (43 characters)', { details: [{ path: 'query.cli_challenge', message: 'must be a base64url sha256' }] });
  }
  return { port: n, challenge };
}

/** A same-origin path, or `/`; anything that could leave the origin is refused by name. */
export function safeReturnTo(value: string | undefined): string {
  if (value === undefined || value === '') return '/';
  const base = 'http://steward.invalid';
  let url: URL | null = null;
  if (value.length <= 2048 && value.startsWith('/') && !/[\u0000-\u001f\u007f\\]/.test(value)) {
    try {
      url = new URL(value, base);
    } catch {
      url = null;
    }
  }
  if (url === null || url.origin !== base || value.startsWith('//')) {
    throw new StewardError('STEWARD_E_VALIDATION', 'query.returnTo: must be a path on this server (`/…`), not a URL', { details: [{ path: 'query.returnTo', message: 'must be a path on this server' }] });
  }
  return `${url.pathname}${url.search}${url.hash}`;
}

function bindingCookie(secret: string, secure: boolean): string {
  return `${BINDING_COOKIE}=${secret}; Path=${BINDING_PATH}; HttpOnly; SameSite=Lax; Max-Age=${BINDING_MAX_AGE_SECONDS}${secure ? '; Secure' : ''}`;
}

function clearedBindingCookie(secure: boolean): string {
  return `${BINDING_COOKIE}=; Path=${BINDING_PATH}; HttpOnly; SameSite=Lax; Max-Age=0${secure ? '; Secure' : ''}`;
}

function bindingOf(header: string | undefined): string | undefined {
  const values = (header ?? '')
    .split(';')
    .map((p) => p.trim())
    .filter((p) => p.startsWith(`${BINDING_COOKIE}=`))
    .map((p) => p.slice(BINDING_COOKIE.length + 1));
  return values.length === 1 ? values[0] : undefined;
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (ch) => HTML_ESCAPES[ch] as string);

/** A plain page that says why; no script, no style, nothing from elsewhere. */
function refusalPage(status: 400 | 401 | 403 | 429 | 502, reason: string, secure: boolean): Response {
  const body = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign-in refused · Steward</title></head>
<body><main><h1>Sign-in refused</h1><p>${escapeHtml(reason)}</p><p><a href="/">Back to Steward</a></p></main></body></html>
`;
  return new Response(body, {
    status,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'set-cookie': clearedBindingCookie(secure),
    },
  });
}
