/**
 * Request bodies: the size limit, and reading a body as text.
 *
 * On the network server (@hono/node-server) a request whose body is never
 * touched as a WHATWG `Request` costs no `Request`, `ReadableStream` or
 * `AbortSignal`: those were a quarter of what a small JSON request allocated
 * (docs/trino.md). So a body with a `Content-Length` is checked against the
 * limit from that header alone (Node's parser never delivers more than it
 * says), and read straight from Node's `IncomingMessage`, counting bytes
 * anyway. A body without one (chunked) goes through hono's `bodyLimit`, which
 * counts as it streams. In-process calls (the embedded CLI) have no
 * `IncomingMessage` and read through hono as before.
 */
import type { IncomingMessage } from 'node:http';
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { StewardError } from '../errors.js';
import type { LocalBindings } from './auth.js';

export const MAX_BODY_BYTES = 8 * 1024 * 1024;

const tooLarge = (): StewardError => new StewardError('STEWARD_E_PAYLOAD_TOO_LARGE', `request body exceeds ${MAX_BODY_BYTES} bytes`);

/** The declared length, or null when the body is chunked or the header is absent or malformed. */
function declaredLength(c: Context): number | null {
  if (c.req.header('transfer-encoding') !== undefined) return null;
  const text = c.req.header('content-length');
  return text !== undefined && /^\d+$/.test(text) ? Number(text) : null;
}

/** Refuses a body over MAX_BODY_BYTES with 413, touching the body only when its length is not declared. */
export function bodySizeGuard(): MiddlewareHandler {
  const streaming = bodyLimit({
    maxSize: MAX_BODY_BYTES,
    onError: () => {
      throw tooLarge();
    },
  });
  return async (c, next) => {
    const length = declaredLength(c);
    if (length === null) return streaming(c, next);
    if (length > MAX_BODY_BYTES) throw tooLarge();
    return next();
  };
}

/** The request body as UTF-8 text, read once. */
export async function bodyText(c: Context<{ Bindings: LocalBindings }>): Promise<string> {
  const incoming: IncomingMessage | undefined = c.env?.incoming;
  if (incoming === undefined || declaredLength(c) === null || incoming.readableEnded) return c.req.text();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of incoming as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks, size).toString('utf8');
}
