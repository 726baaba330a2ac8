/**
 * The OpenAPI 3.1 document, generated from the route table. OpenAPI 3.1 uses
 * JSON Schema 2020-12, which is what zod emits.
 */
import { z } from 'zod';
import type { RouteDef } from './route.js';
import { ErrorSchema } from './schemas.js';

export interface OpenApiDocument {
  readonly openapi: '3.1.0';
  readonly info: { title: string; version: string; description: string };
  readonly paths: Record<string, Record<string, unknown>>;
  readonly components: Record<string, unknown>;
  readonly security: readonly Record<string, readonly string[]>[];
}

const jsonSchema = (schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> =>
  z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Record<string, unknown>;

export function buildOpenApi(routes: readonly RouteDef[]): OpenApiDocument {
  const paths: Record<string, Record<string, unknown>> = {
    '/health': { get: { summary: 'Liveness', tags: ['system'], security: [], responses: { '200': { description: 'ok' } } } },
  };
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: r.summary,
      tags: [r.tag],
      operationId: `${r.method}${path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, ch: string | undefined) => (ch ?? '').toUpperCase())}`,
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      responses: {
        [String(r.status ?? 200)]: { description: 'success', content: { 'application/json': { schema: jsonSchema(r.response, 'output') } } },
        '4XX': { description: 'refused; `error.code` is stable', content: { 'application/json': { schema: jsonSchema(ErrorSchema, 'output') } } },
      },
      'x-steward-auth': r.auth,
    };
    if (r.body !== undefined) {
      op['requestBody'] = { required: true, content: { 'application/json': { schema: jsonSchema(r.body, 'input') } } };
    }
    if (r.auth === 'public') op['security'] = [];
    paths[path] = { ...(paths[path] ?? {}), [r.method]: op };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Steward API',
      version: '1',
      description: 'One tag-based entitlement source for the data platform. Every route but /health needs a token.',
    },
    paths,
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an API token (`stw_…`)' },
        basic: { type: 'http', scheme: 'basic', description: 'any user name, the API token as password: only for `/docs` and `/openapi.json` in a browser' },
      },
    },
    security: [{ bearer: [] }],
  };
}

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query'): Record<string, unknown>[] {
  if (schema === undefined) return [];
  const js = jsonSchema(schema, 'input');
  const props = (js['properties'] ?? {}) as Record<string, unknown>;
  const required = new Set((js['required'] ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => ({ name, in: where, required: where === 'path' || required.has(name), schema: s }));
}
