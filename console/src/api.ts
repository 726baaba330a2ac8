/**
 * The console's only way to the server: the public HTTP API with the session
 * cookie. Every state-changing call carries the session's CSRF token in
 * `x-steward-csrf`; bodies are always JSON (the browser guard refuses others).
 */

export interface Session {
  readonly principal: string;
  readonly role: 'admin' | 'user' | string;
  readonly csrfToken: string;
  readonly idleExpiresAt?: string;
  readonly expiresAt?: string;
}

export interface ApiErrorBody {
  readonly code: string;
  readonly message: string;
  readonly details?: readonly { path?: string; message?: string }[];
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }
}

const CSRF_HEADER = 'x-steward-csrf';
let csrfToken: string | null = null;
let onUnauthenticated: (() => void) | null = null;

/** Set once signed in; every write sends it. */
export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

/** Called when a request answers 401 (the session expired or was revoked elsewhere). */
export function setUnauthenticatedHandler(handler: (() => void) | null): void {
  onUnauthenticated = handler;
}

export interface CallOptions {
  readonly body?: unknown;
  readonly signal?: AbortSignal;
  readonly accept?: string;
}

/** A raw API call: the caller reads the body (streamed query results, CSV). */
export async function request(method: string, path: string, options: CallOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken !== null) headers[CSRF_HEADER] = csrfToken;
  const res = await fetch(path, {
    method,
    headers,
    credentials: 'same-origin',
    cache: 'no-store',
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
  });
  if (!res.ok) {
    const body = await errorBody(res);
    if (res.status === 401 && !path.startsWith('/v1/session')) onUnauthenticated?.();
    throw new ApiError(res.status, body);
  }
  return res;
}

/** A JSON API call. */
export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const res = await request(method, path, { ...(body === undefined ? {} : { body }), ...(signal === undefined ? {} : { signal }) });
  const text = await res.text();
  return (text === '' ? null : JSON.parse(text)) as T;
}

async function errorBody(res: Response): Promise<ApiErrorBody> {
  try {
    const json = (await res.json()) as { error?: ApiErrorBody };
    if (json.error !== undefined && typeof json.error.message === 'string') return json.error;
  } catch {
    // not JSON: fall through
  }
  return { code: `HTTP_${res.status}`, message: `${res.status} ${res.statusText}` };
}

/** One path segment, encoded: names come from other people and may hold anything. */
export function seg(value: string): string {
  return encodeURIComponent(value);
}

export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return e.body.message;
  if (e instanceof Error) return e.message;
  return String(e);
}
