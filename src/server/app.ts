/**
 * The HTTP application: the browser guard, authentication, validation, one
 * error mapping, and the route table. The CLI drives the very same app
 * in-process when it works on an embedded workspace, so both front doors
 * share every check.
 */
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { RETRY_AFTER_SECONDS, StewardError, isStewardError } from '../errors.js';
import { LOCAL_ADMIN } from './actor.js';
import { buildOpenApi } from './openapi.js';
import type { RouteDef } from './route.js';
import type { Services } from './services.js';
import { docsPage } from './docs-page.js';
import { createTokenUseAudit } from '../audit/token-use.js';
import { createAuthenticator, type LocalBindings } from './auth.js';
import { clientAddress, trustedProxiesFromEnv, type TrustedProxies } from './client-address.js';
import { createAuthFailureGuard, type AuthFailureGuard, type AuthFailureKind } from './auth-failures.js';
import { identityRoutes } from '../identity/identity-routes.js';
import { mountOidcRoutes } from '../identity/oidc-routes.js';
import { mountEmbedPages } from '../embed/embed-pages.js';
import { allowedOriginsFromEnv, originGuard, requireJsonBody, type AllowedOrigins } from './browser-guard.js';
import { consoleAssets } from './console-assets.js';
import { zodToStewardError } from './zod-error.js';
import { bodySizeGuard, bodyText } from './body.js';

export { zodToStewardError } from './zod-error.js';

export type { LocalBindings } from './auth.js';


export interface AppOptions {
  /**
   * A per-process secret written to `$STEWARD_HOME/server.json` (mode 0600) so
   * that CLI commands on the same workspace go through this server. It is never
   * stored in the database and dies with the process.
   */
  readonly localToken?: string;
  /** Origins besides the server's own that may change state; default: `STEWARD_ALLOWED_ORIGINS`. */
  readonly allowedOrigins?: AllowedOrigins;
  /** Reverse proxies whose `X-Forwarded-For` names the client; default: `STEWARD_TRUSTED_PROXIES` (client-address.ts). */
  readonly trustedProxies?: TrustedProxies;
  /** Counts and rate-limits failed authentications; whoever passes it closes it. Default: one of the app's own. */
  readonly authFailures?: AuthFailureGuard;
  /** Folder of the built web console served at `/`; default dist/console (src/server/console-assets.ts). */
  readonly consoleDir?: string;
}

export function createApp(services: Services, apiRoutes: readonly RouteDef[], options: AppOptions = {}): Hono<{ Bindings: LocalBindings }> {
  const app = new Hono<{ Bindings: LocalBindings }>();
  // Successful token use: one Authentication event per token per interval (src/audit/token-use.ts).
  const tokenUse = createTokenUseAudit({ log: (entries) => services.state.log(entries) });
  const failures = options.authFailures ?? createAuthFailureGuard({ log: (entries) => services.state.log(entries) });
  const sourceAddress = clientAddress(options.trustedProxies ?? trustedProxiesFromEnv());
  const { authenticate, throttle, verifyApiToken } = createAuthenticator({
    services,
    tokenUse,
    failures,
    source: sourceAddress,
    ...(options.localToken === undefined ? {} : { localToken: options.localToken }),
    ...(services.sessions === undefined ? {} : { sessions: services.sessions }),
  });
  // The sign-in routes need the authenticator's token check, so they join the table here rather than in routes.ts.
  const routes: readonly RouteDef[] = [...apiRoutes, ...identityRoutes(services, verifyApiToken)];
  // Built on first request: converting every route's zod schemas costs a CLI command about half a second it rarely needs.
  let openapi: ReturnType<typeof buildOpenApi> | undefined;
  const doc = (): ReturnType<typeof buildOpenApi> => (openapi ??= buildOpenApi(routes));
  const allowedOrigins = options.allowedOrigins ?? allowedOriginsFromEnv();

  app.use('*', bodySizeGuard());

  app.use('*', originGuard(allowedOrigins));

  app.onError((err, c) => errorResponse(c, err));
  app.notFound((c) => errorResponse(c, new StewardError('STEWARD_E_NOT_FOUND', `no route for \`${c.req.method} ${c.req.path}\``)));

  app.get('/health', (c) => c.json({ status: 'ok' }));
  app.get('/openapi.json', async (c) => {
    await authenticate(c, { basic: true });
    return c.json(doc());
  });
  app.get('/docs', async (c) => {
    await authenticate(c, { basic: true });
    return c.html(docsPage(doc()));
  });

  mountEmbedPages(app, { services, failures, throttle, source: sourceAddress });

  if (services.oidc !== undefined && services.sessions !== undefined) {
    mountOidcRoutes(app, { oidc: services.oidc, sessions: services.sessions, services, failures, source: sourceAddress });
  }

  for (const def of routes) {
    if (def.credentials !== undefined && def.auth !== 'public') throw new Error(`${def.method} ${def.path}: credentials of its own are for public routes`);
    app.on(def.method.toUpperCase(), def.path, async (c) => {
      const authFailed = (reason: string, kind: AuthFailureKind): void => failures.failed(sourceAddress(c), reason, kind);
      // A public route checks credentials of its own (ingest keys, share tokens): the address's failed-attempt budget still applies.
      if (def.auth === 'public') throttle(c);
      const actor = def.auth === 'public' ? LOCAL_ADMIN : await authenticate(c);
      if (def.auth === 'admin' && actor.role !== 'admin') {
        throw new StewardError('STEWARD_E_FORBIDDEN', 'this operation needs an admin token');
      }
      // An embed token (a vendor's back end) mints embed tokens and does nothing else; only it and admins mint them.
      if (actor.role === 'embed' && def.auth !== 'embed') throw new StewardError('STEWARD_E_FORBIDDEN', 'an embed token may only mint embed tokens');
      if (def.auth === 'embed' && actor.role === 'user') throw new StewardError('STEWARD_E_FORBIDDEN', 'minting embed tokens needs an admin or embed token');
      // The content type is checked before anything else about the request: it is the cross-site rule, not a detail.
      const json = def.body === undefined ? await refuseForeignBody(c, def) : await readJson(c);
      // Then a route's own credentials, before anything in the request is validated against its schemas.
      const caller = def.credentials === undefined ? undefined : await def.credentials({ services, request: c.req.raw, rawParams: c.req.param(), authFailed });
      const params = parseInput('path', def.params, noControlCharacters('path', c.req.param()));
      const query = parseInput('query', def.query, noControlCharacters('query', c.req.query()));
      const body = def.body === undefined || json === undefined ? undefined : parseInput('body', def.body, json.nulFree ? json.value : noNul('body', json.value));
      const result = await def.handler({ params, query, body, actor, services, request: c.req.raw, authFailed, source: sourceAddress(c), caller });
      if (result instanceof Response) return result; // streamed bodies (query results)
      return c.json(result as object, def.status ?? 200);
    });
  }
  // Last: only a GET that no route above answered reaches the console.
  app.use('*', consoleAssets(options.consoleDir));
  return app;
}

/** A write that takes no body still refuses one that is not JSON: the content-type rule holds on every write route. */
async function refuseForeignBody(c: Context, def: RouteDef): Promise<undefined> {
  if (def.method !== 'get' && def.rawBody !== true) requireJsonBody(c.req.header('content-type'), (await bodyText(c)) !== '');
  return undefined;
}

/** A parsed body, and whether its text already proves it free of NUL (`noNul` need not walk it). */
interface JsonBody {
  readonly value: unknown;
  readonly nulFree: boolean;
}

/**
 * JSON text with no `\u` escape and no `proto` or `constructor` anywhere can
 * hold neither a NUL (JSON strings cannot hold a raw control character: the
 * parse refuses it) nor a prototype key, so it is parsed without the reviver
 * and not walked again: for a Trino batch of 100 columns, the reviver and the
 * walk were most of the request's garbage.
 */
const plainJson = (text: string): boolean => !text.includes('\\u') && !/proto|constructor/.test(text);

async function readJson(c: Context): Promise<JsonBody> {
  const text = await bodyText(c);
  requireJsonBody(c.req.header('content-type'), text !== '');
  if (text.trim() === '') return { value: {}, nulFree: true };
  const plain = plainJson(text);
  try {
    return { value: plain ? JSON.parse(text) : JSON.parse(text, forbidPrototypeKeys), nulFree: plain };
  } catch (e) {
    if (isStewardError(e)) throw e;
    throw new StewardError('STEWARD_E_PARSE', `request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** `__proto__` and friends have no business in a request; refusing them closes prototype-pollution paths in every handler at once. */
function forbidPrototypeKeys(key: string, value: unknown): unknown {
  if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
    throw new StewardError('STEWARD_E_VALIDATION', `body: field \`${key}\` is not allowed`, { details: [{ path: `body.${key}`, message: 'not allowed' }] });
  }
  return value;
}

/**
 * Path and query values are names and ids: no control characters, NUL above
 * all (PostgreSQL text cannot hold it, and a NUL must not reach a file path
 * or a log line). One check here covers every route.
 */
function noControlCharacters(where: 'path' | 'query', values: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(values)) {
    if (/[\u0000-\u001f\u007f]/.test(value)) {
      throw new StewardError('STEWARD_E_VALIDATION', `${where}.${name}: must not contain control characters`, {
        details: [{ path: `${where}.${name}`, message: 'must not contain control characters' }],
      });
    }
  }
  return values;
}

/** No string anywhere in a body may hold NUL (see above); the error names the first field that does. */
function noNul(path: string, value: unknown): unknown {
  const found = nulPath(path, value);
  if (found !== null) throw new StewardError('STEWARD_E_VALIDATION', `${found}: must not contain NUL characters`, { details: [{ path: found, message: 'must not contain NUL characters' }] });
  return value;
}

function nulPath(root: string, value: unknown): string | null {
  // Iterative: a deeply nested body must not overflow the stack here.
  const stack: [string, unknown][] = [[root, value]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [path, v] = next;
    if (typeof v === 'string') {
      if (v.includes('\u0000')) return path;
    } else if (v !== null && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        if (k.includes('\u0000')) return `${path}.${k.replaceAll('\u0000', '\\0')}`;
        stack.push([`${path}.${k}`, child]);
      }
    }
  }
  return null;
}

function parseInput<T>(where: 'path' | 'query' | 'body', schema: z.ZodType<T> | undefined, value: unknown): T {
  if (schema === undefined) return value as T;
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw zodToStewardError(where, parsed.error);
}

function errorResponse(c: Context, err: unknown): Response {
  if (isStewardError(err)) {
    // "Not now" errors (the database restarting) tell the client when to try again.
    const retryAfter = RETRY_AFTER_SECONDS[err.code];
    if (retryAfter !== undefined) c.header('Retry-After', String(retryAfter));
    return c.json({ error: err.toJSON() }, err.status as 400);
  }
  if (err instanceof z.ZodError) return c.json({ error: zodToStewardError('input', err).toJSON() }, 400);
  // Anything else is our bug: say nothing about internals, keep the detail in the server log.
  console.error('[steward] unhandled error', err);
  return c.json({ error: { code: 'STEWARD_E_INTERNAL', message: 'internal error', details: [] } }, 500);
}
