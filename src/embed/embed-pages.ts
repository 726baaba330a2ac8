/**
 * What a browser opens without an API token, mounted beside the API routes
 * (not in the route table, where every route needs a token):
 * - `GET /embed/dashboards/:id?token=`: the dashboard page for the session of
 *   the embed token, which is the credential and is used up by the request;
 *   framable only by the token's origins (render.ts);
 * - `GET /embed/assets/echarts.min.js`: the charting library the page loads;
 * - `GET /embed/assets/steward-dashboard.js`: the `<steward-dashboard>` element for vendors' pages (element.ts);
 * - `GET /.well-known/jwks.json`: the public keys that verify embed tokens.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Context, Hono } from 'hono';
import { StewardError, isStewardError } from '../errors.js';
import type { LocalBindings } from '../server/auth.js';
import type { AuthFailureGuard } from '../server/auth-failures.js';
import type { Services } from '../server/services.js';
import { ECHARTS_PATH, renderDashboard } from './render.js';
import { ELEMENT_PATH, ELEMENT_SOURCE } from './element.js';

type EmbedContext = Context<{ Bindings: LocalBindings }>;

const DASHBOARD_ID = /^[a-z0-9][a-z0-9_-]{0,62}$/;
const EMBED_FAILURE = Object.freeze({ action: 'auth.embed-token', resource: 'embed' });

let echarts: Promise<string> | undefined;
const echartsSource = (): Promise<string> => (echarts ??= readFile(createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js'), 'utf8'));

export function mountEmbedPages(
  app: Hono<{ Bindings: LocalBindings }>,
  deps: { readonly services: Services; readonly failures: AuthFailureGuard; readonly throttle: (c: EmbedContext) => void; readonly source: (c: EmbedContext) => string },
): void {
  const embed = deps.services.embed;
  if (embed === undefined) return;

  app.get('/.well-known/jwks.json', async (c) => {
    c.header('cache-control', 'public, max-age=300');
    return c.json({ keys: (await embed.keys.published()).map((k) => ({ ...k.jwk })) });
  });

  app.get(ECHARTS_PATH, async (c) => {
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'public, max-age=86400');
    c.header('x-content-type-options', 'nosniff');
    return c.body(await echartsSource());
  });

  app.get(ELEMENT_PATH, (c) => {
    c.header('content-type', 'text/javascript; charset=utf-8');
    c.header('cache-control', 'public, max-age=3600');
    c.header('x-content-type-options', 'nosniff');
    // Loaded by the vendor's pages, on their origin: a classic cross-origin script needs no CORS, and gets none.
    c.header('cross-origin-resource-policy', 'cross-origin');
    return c.body(ELEMENT_SOURCE);
  });

  app.get('/embed/dashboards/:id', async (c) => {
    // Each try costs the address's failed-attempt budget when refused, like a bad API token.
    deps.throttle(c);
    const id = c.req.param('id');
    const token = c.req.query('token');
    if (!DASHBOARD_ID.test(id)) throw new StewardError('STEWARD_E_NOT_FOUND', 'dashboard not found');
    try {
      if (token === undefined || token === '') throw new StewardError('STEWARD_E_UNAUTHENTICATED', 'embed token refused: missing `token`');
      const page = renderDashboard(await embed.open(token, id));
      return new Response(page.html, { status: 200, headers: page.headers });
    } catch (e) {
      if (isStewardError(e) && e.code === 'STEWARD_E_UNAUTHENTICATED') deps.failures.failed(deps.source(c), e.message, EMBED_FAILURE);
      throw e;
    }
  });
}
