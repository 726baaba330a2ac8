/**
 * Serves the web console (console/, built by `npm run build:console` into
 * dist/console) at `/`: hashed assets with a year-long immutable cache,
 * `index.html` never cached, and the SPA fallback for any other GET that is
 * not an API path. Every console response carries a strict Content-Security-
 * Policy (no inline script or style, no framing, no `<base>`, forms only to
 * ourselves), `nosniff` and `no-referrer`: the console renders names, tag
 * values, query results and justifications written by other people, and the
 * CSP is the second wall if an escaping mistake ever lets markup through.
 */
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Context, MiddlewareHandler } from 'hono';

/** Two folders up from both src/server and dist/server. */
export const CONSOLE_DIR = fileURLToPath(new URL('../../dist/console', import.meta.url));

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'self'",
].join('; ');

export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // For browsers that predate frame-ancestors.
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
};

/** Paths the console never answers: the API and the server's own pages keep their JSON 404. */
const NOT_CONSOLE = /^\/(v1|auth|health|openapi\.json|docs)(\/|$)/;

const TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

interface Asset {
  readonly body: Uint8Array;
  readonly type: string;
}

/**
 * The console's request handler. Files are read once and kept: the built
 * console is a handful of small files and never changes while a server runs.
 */
export function consoleAssets(dir: string = CONSOLE_DIR): MiddlewareHandler {
  const cache = new Map<string, Asset | null>();
  const load = async (rel: string): Promise<Asset | null> => {
    const hit = cache.get(rel);
    if (hit !== undefined) return hit;
    const asset = await readAsset(dir, rel);
    cache.set(rel, asset);
    return asset;
  };
  return async (c, next) => {
    const method = c.req.method;
    if ((method !== 'GET' && method !== 'HEAD') || NOT_CONSOLE.test(c.req.path)) return next();
    const rel = safeRelative(c.req.path);
    if (rel === null) return next();
    const file = rel === '' ? null : await load(rel);
    if (file !== null) return send(c, file, rel.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    // A missing asset is a 404, not the app: a stale hashed file name must not be answered with HTML.
    if (rel.startsWith('assets/') || path.extname(rel) !== '') return next();
    const index = await load('index.html');
    if (index === null) return next();
    return send(c, index, 'no-cache');
  };
}

function send(c: Context, asset: Asset, cacheControl: string): Response {
  const headers = new Headers({ ...CONSOLE_HEADERS, 'content-type': asset.type, 'cache-control': cacheControl });
  return new Response(c.req.method === 'HEAD' ? null : asset.body, { status: 200, headers });
}

/** The request path as a file path under the console folder, or null for anything that tries to leave it. */
function safeRelative(urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const normalized = path.posix.normalize(decoded).replace(/^\/+/, '');
  if (normalized === '.' || normalized === '') return '';
  if (normalized.split('/').some((part) => part === '..' || part.startsWith('.'))) return null;
  return normalized;
}

async function readAsset(dir: string, rel: string): Promise<Asset | null> {
  const type = TYPES[path.extname(rel).toLowerCase()];
  if (type === undefined) return null;
  const file = path.join(dir, rel);
  if (!file.startsWith(dir + path.sep)) return null;
  try {
    if (!(await stat(file)).isFile()) return null;
    return { body: new Uint8Array(await readFile(file)), type };
  } catch {
    return null;
  }
}
