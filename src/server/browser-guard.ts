/**
 * The rules that keep a browser from being turned against the API (cross-site
 * request forgery). One module, so the web console reuses them as they are.
 *
 * 1. Origin. Every state-changing request (POST, PUT, PATCH, DELETE) that
 *    carries an `Origin` header must come from the server's own origin (the
 *    host of the request's `Host` header) or from an origin listed in
 *    `STEWARD_ALLOWED_ORIGINS` (comma-separated, exact `scheme://host[:port]`).
 *    `Origin: null` (sandboxed frames, some redirects) is refused. A request
 *    with no `Origin` but `Sec-Fetch-Site: cross-site` or `same-site` is
 *    refused too. Refusals are 403 `STEWARD_E_FORBIDDEN`. Clients that send
 *    neither header (the CLI, curl, SDKs, the in-process `app.request`) pass.
 * 2. Content type. A write whose route takes a JSON body must say
 *    `Content-Type: application/json` (parameters such as `charset` allowed);
 *    anything else is 415 `STEWARD_E_UNSUPPORTED_MEDIA_TYPE` naming the type.
 *    HTML forms and no-cors `fetch` can only send `text/plain`, form or
 *    multipart bodies without a CORS preflight, so this alone stops them. A
 *    request with no body and no content type is an empty JSON object.
 * 3. No credential is ambient without a second factor: API routes take
 *    `Authorization: Bearer` (src/server/auth.ts) and the console's session
 *    cookie, never Basic auth. The cookie is `HttpOnly`, `SameSite=Strict`,
 *    `Secure` on https (src/identity/session-cookie.ts), and a
 *    cookie-authenticated state-changing request must also carry the
 *    session's CSRF token in {@link CSRF_HEADER} (src/identity/session-auth.ts),
 *    on top of rules 1-2.
 *
 * @example
 *   app.use('*', originGuard(allowedOriginsFromEnv()));
 *   requireJsonBody(c.req.header('content-type'), hasBody);
 */
import type { MiddlewareHandler } from 'hono';
import { StewardError } from '../errors.js';

export const ALLOWED_ORIGINS_ENV = 'STEWARD_ALLOWED_ORIGINS';
/** The header a cookie-session console must send with its CSRF token. */
export const CSRF_HEADER = 'x-steward-csrf';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** POST, PUT, PATCH and DELETE: the methods that must never be forged. */
export function isStateChanging(method: string): boolean {
  return STATE_CHANGING.has(method.toUpperCase());
}

/** Origins allowed besides the server's own, normalized (`https://console.example.com`). */
export type AllowedOrigins = ReadonlySet<string>;

/** Parses `STEWARD_ALLOWED_ORIGINS`; a malformed entry stops the start (fail closed, never silently dropped). */
export function allowedOriginsFromEnv(env: NodeJS.ProcessEnv = process.env): AllowedOrigins {
  const raw = env[ALLOWED_ORIGINS_ENV]?.trim() ?? '';
  return parseAllowedOrigins(raw === '' ? [] : raw.split(','));
}

export function parseAllowedOrigins(entries: readonly string[]): AllowedOrigins {
  const out = new Set<string>();
  for (const entry of entries.map((e) => e.trim()).filter((e) => e !== '')) {
    const origin = normalizeOrigin(entry);
    if (origin === null) {
      throw new StewardError('STEWARD_E_CONFIG', `${ALLOWED_ORIGINS_ENV}: \`${entry}\` is not an origin (\`https://host[:port]\`, no path)`);
    }
    out.add(origin);
  }
  return out;
}

/** Refuses cross-origin state-changing requests (rule 1). */
export function originGuard(allowed: AllowedOrigins): MiddlewareHandler {
  return async (c, next) => {
    if (isStateChanging(c.req.method)) {
      const refusal = crossOriginRefusal(c.req.header('origin'), c.req.header('sec-fetch-site'), c.req.header('host'), allowed);
      if (refusal !== null) throw new StewardError('STEWARD_E_FORBIDDEN', refusal);
    }
    await next();
  };
}

/** Why a request must be refused as cross-origin, or null when it may proceed. */
export function crossOriginRefusal(origin: string | undefined, fetchSite: string | undefined, host: string | undefined, allowed: AllowedOrigins): string | null {
  if (origin !== undefined) {
    const normalized = normalizeOrigin(origin);
    if (normalized !== null && (allowed.has(normalized) || sameHost(normalized, host))) return null;
    return `cross-origin request from \`${origin.slice(0, 200)}\` refused: only the server's own origin and ${ALLOWED_ORIGINS_ENV} may change state`;
  }
  const site = fetchSite?.trim().toLowerCase();
  if (site === 'cross-site' || site === 'same-site') {
    return `cross-site request refused (\`Sec-Fetch-Site: ${site}\`): only the server's own origin and ${ALLOWED_ORIGINS_ENV} may change state`;
  }
  return null;
}

/** Refuses a body that is not declared JSON (rule 2). */
export function requireJsonBody(contentType: string | undefined, hasBody: boolean): void {
  if (contentType === undefined || contentType.trim() === '') {
    if (!hasBody) return;
    throw new StewardError('STEWARD_E_UNSUPPORTED_MEDIA_TYPE', 'request body without a content type: send `Content-Type: application/json`');
  }
  const mediaType = contentType.split(';', 1)[0]?.trim().toLowerCase();
  if (mediaType !== 'application/json') {
    throw new StewardError('STEWARD_E_UNSUPPORTED_MEDIA_TYPE', `content type \`${contentType.slice(0, 100)}\` is not supported: send \`application/json\``);
  }
}

/** `scheme://host[:port]` in lowercase with default ports dropped, or null when `text` is not exactly an origin. */
function normalizeOrigin(text: string): string | null {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if ((url.protocol !== 'http:' && url.protocol !== 'https:') || url.username !== '' || url.password !== '') return null;
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') return null;
  return url.origin;
}

/** The server's own origin is whatever host the request was sent to; the scheme is the TLS terminator's business. */
function sameHost(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  const originHost = new URL(origin).host;
  let requestHost: string;
  try {
    requestHost = new URL(`http://${host.trim()}`).host;
  } catch {
    return false;
  }
  return originHost === requestHost || new URL(`https://${host.trim()}`).host === originHost;
}
