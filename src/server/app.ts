/**
 * The HTTP application: authentication, validation, one error mapping, and the
 * route table. The CLI drives the very same app in-process when it works on an
 * embedded workspace, so both front doors share every check.
 */
import { timingSafeEqual } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { z } from 'zod';
import { StewardError, isStewardError } from '../errors.js';
import { LOCAL_ADMIN, type Actor } from './actor.js';
import { parsePrincipal, principalRef } from '../policy/model.js';
import { buildOpenApi } from './openapi.js';
import type { RouteDef } from './route.js';
import type { Services } from './services.js';
import { docsPage } from './docs-page.js';
import { createTokenUseAudit, type TokenUseAudit } from '../audit/token-use.js';

/** In-process callers (the embedded CLI) pass this as Hono's env; the network adapter never can. */
export interface LocalBindings {
  readonly stewardLocalActor?: Actor;
}

const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface AppOptions {
  /**
   * A per-process secret written to `$STEWARD_HOME/server.json` (mode 0600) so
   * that CLI commands on the same workspace go through this server. It is never
   * stored in the database and dies with the process.
   */
  readonly localToken?: string;
}

export function createApp(services: Services, routes: readonly RouteDef[], options: AppOptions = {}): Hono<{ Bindings: LocalBindings }> {
  const app = new Hono<{ Bindings: LocalBindings }>();
  // Built on first request: converting every route's zod schemas costs a CLI command about half a second it rarely needs.
  let openapi: ReturnType<typeof buildOpenApi> | undefined;
  const doc = (): ReturnType<typeof buildOpenApi> => (openapi ??= buildOpenApi(routes));
  // Successful token use: one Authentication event per token per interval (src/audit/token-use.ts).
  const tokenUse = createTokenUseAudit({ log: (entries) => services.state.log(entries) });

  app.use(
    '*',
    bodyLimit({
      maxSize: MAX_BODY_BYTES,
      onError: () => {
        throw new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);
      },
    }),
  );

  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) => errorResponse(c, new StewardError('STEWARD_E_NOT_FOUND', `no route for \`${c.req.method} ${c.req.path}\``)));

  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/openapi.json', async (c) => {
    await authenticate(c, services, options, tokenUse);
    return c.json(doc());
  });
  app.get('/docs', async (c) => {
    await authenticate(c, services, options, tokenUse);
    return c.html(docsPage(doc()));
  });

  for (const def of routes) {
    app.on(def.method.toUpperCase(), def.path, async (c) => {
      const actor = def.auth === 'public' ? LOCAL_ADMIN : await authenticate(c, services, options, tokenUse);
      if (def.auth === 'admin' && actor.role !== 'admin') {
        throw new StewardError('STEWARD_E_FORBIDDEN', 'this operation needs an admin token');
      }
      const params = parseInput('path', def.params, c.req.param());
      const query = parseInput('query', def.query, c.req.query());
      const body = def.body === undefined ? undefined : parseInput('body', def.body, await readJson(c));
      const result = await def.handler({ params, query, body, actor, services, request: c.req.raw });
      if (result instanceof Response) return result; // streamed bodies (query results)
      return c.json(result as object, def.status ?? 200);
    });
  }
  return app;
}

async function authenticate(c: Context<{ Bindings: LocalBindings }>, services: Services, options: AppOptions, tokenUse: TokenUseAudit): Promise<Actor> {
  const local = c.env?.stewardLocalActor;
  if (local !== undefined) return local;
  const token = tokenFrom(c.req.header('authorization'));
  if (token !== null && options.localToken !== undefined && sameSecret(token, options.localToken)) return LOCAL_ADMIN;
  if (token === null) {
    c.header('WWW-Authenticate', 'Bearer realm="steward", Basic realm="steward"');
    throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'missing token: send `Authorization: Bearer <token>`');
  }
  const found = await services.tokens.verifyToken(token);
  if (found === null) {
    await services.state.log([
      { actor: 'anonymous', action: 'auth.token', resource: 'api', result: 'deny', reason: 'invalid, expired or revoked token' },
    ]);
    throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'invalid, expired or revoked token');
  }
  const principal = parsePrincipal(found.principal);
  if (principal === null) throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'token names an invalid principal');
  const ref = principalRef(principal.kind, principal.name);
  await tokenUse.accepted({ tokenId: found.id, principal: ref, role: found.role });
  return { principal: ref, role: found.role, via: found.id };
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Bearer tokens, or Basic auth with the token as the password, so that a
 * browser can open the docs page behind the same check.
 */
export function tokenFrom(header: string | undefined): string | null {
  if (header === undefined || header.length > 1024) return null;
  const [scheme, value] = header.trim().split(/\s+/, 2);
  if (value === undefined) return null;
  if (scheme?.toLowerCase() === 'bearer') return value;
  if (scheme?.toLowerCase() === 'basic') {
    const decoded = Buffer.from(value, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    return colon >= 0 && colon < decoded.length - 1 ? decoded.slice(colon + 1) : null;
  }
  return null;
}

async function readJson(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') return {};
  let json: unknown;
  try {
    json = JSON.parse(text, forbidPrototypeKeys);
  } catch (e) {
    if (isStewardError(e)) throw e;
    throw new StewardError('STEWARD_E_PARSE', `request body is not valid JSON: ${(e as Error).message}`);
  }
  return json;
}

/** `__proto__` and friends have no business in a request; refusing them closes prototype-pollution paths in every handler at once. */
function forbidPrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
    throw new StewardError('STEWARD_E_VALIDATION', `body: field \`${key}\` is not allowed`, { details: [{ path: `body.${key}`, message: 'not allowed' }] });
  }
  return value;
}

function parseInput<T>(where: 'path' | 'query' | 'body', schema: z.ZodType<T> | undefined, value: unknown): T {
  if (schema === undefined) return value as T;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw zodToStewardError(where, parsed.error);
}

export function zodToStewardError(where: string, error: z.ZodError): StewardError {
  const details = error.issues.map((i) => ({
    path: [where, ...i.path.map(String)].join('.'),
    message: i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.map((k) => `\`${k}\``).join(', ')}` : i.message.toLowerCase(),
  }));
  const first = details[0];
  const message = first === undefined ? `invalid ${where}` : `${first.path}: ${first.message}${details.length > 1 ? ` (and ${details.length - 1} more)` : ''}`;
  return new StewardError('STEWARD_E_VALIDATION', message, { details });
}

function errorResponse(c: Context, err: unknown): Response {
  if (isStewardError(err)) {
    const status = err.status >= 500 && err.code !== 'STEWARD_E_INTERNAL' ? 500 : err.status;
    return c.json({ error: err.toJSON() }, status as 400);
  }
  if (err instanceof z.ZodError) return c.json({ error: zodToStewardError('input', err).toJSON() }, 400);
  // Anything else is our bug: say nothing about internals, keep the detail in the server log.
  console.error('[steward] unhandled error', err);
  return c.json({ error: { code: 'STEWARD_E_INTERNAL', message: 'internal error', details: [] } }, 500);
}
