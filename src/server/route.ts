/**
 * Routes are data: method, path, auth mode, zod schemas for params, query,
 * body and response, and one handler. The same definitions register the Hono
 * handlers and produce the OpenAPI document, so the document cannot drift from
 * what the server accepts.
 */
import type { z } from 'zod';
import { actorName, type Actor } from './actor.js';
import type { ChangeRequest } from '../workspace/state-service.js';
import type { Services } from './services.js';
import type { AuthFailureKind } from './auth-failures.js';

export type HttpMethod = 'get' | 'post' | 'put' | 'delete';

/** public: no token (health only). user: a valid admin or user token. admin: an admin token. embed: an admin or embed token (minting embed tokens). */
export type AuthMode = 'public' | 'user' | 'admin' | 'embed';

export interface HandlerContext<P, Q, B> {
  readonly params: P;
  readonly query: Q;
  readonly body: B;
  readonly actor: Actor;
  readonly services: Services;
  readonly request: Request;
  /**
   * Counts a failed authentication of this request's address, for routes that
   * check credentials of their own (ingest keys): one row per address and
   * interval instead of one per request, and the address's rate limit.
   */
  readonly authFailed: (reason: string, kind: AuthFailureKind) => void;
  /** The caller's address as the socket reports it (src/server/auth.ts `sourceAddress`). */
  readonly source: string;
  /** Who the route's own `credentials` check found (a share's consumer, an ingest key); undefined on other routes. */
  readonly caller: string | undefined;
}

/** What a route's own credential check sees: the raw request, before anything in it is validated. */
export interface CredentialContext {
  readonly services: Services;
  readonly request: Request;
  /** The path parameters as sent, unvalidated: compare them, never trust their shape. */
  readonly rawParams: Readonly<Record<string, string>>;
  readonly authFailed: HandlerContext<unknown, unknown, unknown>['authFailed'];
}

export interface RouteDef<P = unknown, Q = unknown, B = unknown, R = unknown> {
  readonly method: HttpMethod;
  /** Hono syntax: `/v1/grants/:id`. */
  readonly path: string;
  readonly summary: string;
  readonly tag: string;
  readonly auth: AuthMode;
  /**
   * For a public route whose callers hold credentials of its own (ingest keys,
   * share tokens): checked before the path, query and body are validated, so a
   * caller without them learns nothing, not even what is well formed. Throws
   * to refuse; returns who the caller is (the handler's `caller`).
   */
  readonly credentials?: (ctx: CredentialContext) => Promise<string>;
  readonly params?: z.ZodType<P>;
  readonly query?: z.ZodType<Q>;
  readonly body?: z.ZodType<B>;
  /** The handler reads the raw body itself (NDJSON ingest); otherwise a write without `body` takes no body but JSON or none. */
  readonly rawBody?: true;
  readonly response: z.ZodType<R>;
  /** Success status; 200 unless the route creates something. */
  readonly status?: 200 | 201 | 202;
  readonly handler: (ctx: HandlerContext<P, Q, B>) => Promise<R> | R;
}

/** Keeps inference of P/Q/B/R at each definition site while the table stays homogeneous. */
export function route<P = Record<string, never>, Q = Record<string, never>, B = undefined, R = unknown>(
  def: RouteDef<P, Q, B, R>,
): RouteDef {
  return def as unknown as RouteDef;
}

/**
 * The common shape of a write route: build changes from the current world,
 * commit them with a decision-log entry, answer with the new version.
 */
export async function commit(
  ctx: Pick<HandlerContext<unknown, unknown, unknown>, 'services' | 'actor'>,
  action: string,
  resource: string,
  build: ChangeRequest['build'],
  details?: Record<string, unknown>,
): Promise<{ ok: true; version: number }> {
  const r = await ctx.services.state.change({
    actor: actorName(ctx.actor),
    action,
    resource,
    build,
    ...(details === undefined ? {} : { details }),
  });
  return { ok: true, version: r.version };
}
