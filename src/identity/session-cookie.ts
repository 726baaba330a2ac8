/**
 * The session cookie: its name, how it is read from a `Cookie` header and
 * written in `Set-Cookie`.
 *
 * `HttpOnly` (no script reads it, so an injected script cannot steal it),
 * `SameSite=Strict` (no other site's page makes the browser send it),
 * `Path=/`, and `Secure` when the request came over HTTPS or the public URL
 * is https. No `Domain`: the cookie stays on this exact host.
 */
export const SESSION_COOKIE = 'steward_session';

export type CookieValue = { readonly kind: 'none' } | { readonly kind: 'one'; readonly value: string } | { readonly kind: 'ambiguous' };

/**
 * The session cookie in a `Cookie` header. Two of them (a sibling subdomain
 * can plant a second one for the parent domain) is `ambiguous`: guessing
 * which is ours could adopt a planted session, so the caller refuses both.
 */
export function readSessionCookie(header: string | undefined): CookieValue {
  if (header === undefined || header.length > 16_384) return { kind: 'none' };
  const values = header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part.startsWith(`${SESSION_COOKIE}=`))
    .map((part) => part.slice(SESSION_COOKIE.length + 1));
  if (values.length === 0) return { kind: 'none' };
  if (values.length > 1) return { kind: 'ambiguous' };
  return { kind: 'one', value: values[0] as string };
}

/** `Set-Cookie` for a new session; a session cookie (no Max-Age): the server's timeouts decide when it ends. */
export function sessionCookie(secret: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${secret}; Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}

/** `Set-Cookie` that makes the browser drop the cookie. */
export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT${secure ? '; Secure' : ''}`;
}

/** Whether cookies must be `Secure`: the request came over HTTPS, or browsers reach us at an https public URL. */
export function wantsSecureCookie(request: Request, publicUrl: string | undefined): boolean {
  return new URL(request.url).protocol === 'https:' || (publicUrl !== undefined && publicUrl.startsWith('https:'));
}
