/**
 * Hostile input never produces a 500: NUL bytes in any path parameter, and
 * out-of-range instants or durations in any field that takes one, are 400s
 * naming the field. The routes and fields are found by walking the route
 * table and the OpenAPI document, so a new route is covered without editing
 * this file.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { allRoutes } from '../../src/server/routes.js';
import { FORMAT_KEY } from '../../src/server/schemas.js';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(async () => s.close());

const BAD_INSTANTS = ['+275760-09-14T00:00:00.001Z', '+275760-09-13T00:00:00.000Z', '9999999-01-01', '10000-01-01T00:00:00Z', '2027-02-30T00:00:00Z', '1969-12-31T23:59:59Z', '-000001-01-01T00:00:00Z'];
const BAD_DURATIONS = ['PT999999999999H', '999999999999h', '99999999999999999999d', '3651d', '0s', '1h\u0000'];

interface Detail {
  path?: string;
  message: string;
}

const bodyOf = (method: string): string | undefined => (method === 'get' || method === 'delete' ? undefined : '{}');

describe('no 500s from hostile input', () => {
  it('every route with path parameters declares a schema for them', () => {
    // Failure mode: a route without one hands raw path text to its handler, past the shared checks' bounds.
    const missing = allRoutes.filter((r) => r.path.includes(':') && r.params === undefined).map((r) => `${r.method} ${r.path}`);
    assert.deepEqual(missing, []);
  });

  it('refuses a NUL byte in every path parameter of every route with a 400 naming the parameter', async () => {
    // Threat: a NUL reaches PostgreSQL (which cannot store it) or a file path and turns into a 500 or worse.
    let checked = 0;
    for (const r of allRoutes) {
      const names = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1] as string);
      for (const target of names) {
        const p = r.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (name === target ? 'x%00y' : name === 'resource' ? 'lake.claims' : 'x'));
        for (const token of [s.adminToken, null]) {
          const res = await s.call(r.method.toUpperCase(), p, bodyOf(r.method), token);
          assert.ok(res.status >= 400 && res.status < 500, `${r.method} ${p} answered ${res.status}: ${JSON.stringify(res.json)}`);
          if (token !== null && r.auth !== 'public') {
            assert.equal(res.status, 400, `${r.method} ${p}`);
            assert.ok((res.json.error.details as Detail[]).some((d) => d.path === `path.${target}`), `${r.method} ${p}: ${JSON.stringify(res.json.error)}`);
          }
        }
        checked++;
      }
    }
    assert.ok(checked > 40, `only ${checked} path parameters found`);
  });

  it('refuses control characters in query values with a 400 naming them', async () => {
    // Threat: the same NUL through a query string instead of the path.
    for (const r of allRoutes.filter((x) => x.method === 'get' && x.query !== undefined)) {
      const doc = await openapi();
      const params = ((doc.paths[openapiPath(r.path)]?.['get'] as { parameters?: { name: string; in: string }[] })?.parameters ?? []).filter((p) => p.in === 'query');
      for (const q of params) {
        const p = `${r.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => (name === 'resource' ? 'lake.claims' : 'x'))}?${q.name}=a%00b`;
        const res = await s.call('GET', p);
        // A route with credentials of its own (a share token) refuses the admin's token before it reads the query.
        assert.equal(res.status, r.credentials === undefined ? 400 : 401, `${p} answered ${res.status}`);
      }
    }
  });

  it('refuses out-of-range instants and durations in every field that takes one, naming the field', async () => {
    // Threat: `+275760-09-14T00:00:00.001Z` or `PT999999999999H` overflows a Date into `Invalid time value` and a 500.
    const doc = await openapi();
    let checked = 0;
    for (const [p, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const schema = (op as { requestBody?: { content: { 'application/json': { schema: JsonSchema } } } }).requestBody?.content['application/json'].schema;
        if (schema === undefined) continue;
        for (const field of formattedFields(schema)) {
          for (const value of field.format === 'instant' ? BAD_INSTANTS : BAD_DURATIONS) {
            const route = p.replace(/\{([A-Za-z0-9_]+)\}/g, (_m, name: string) => (name === 'resource' ? 'lake.claims' : 'x'));
            const res = await s.call(method.toUpperCase(), route, withValue(field.path, value));
            const where = `body.${field.path.map((x) => (x === '[]' ? '0' : x)).join('.')}`;
            assert.equal(res.status, 400, `${method} ${p} ${where}=${value} answered ${res.status}: ${JSON.stringify(res.json)}`);
            assert.ok((res.json.error.details as Detail[]).some((d) => d.path === where), `${method} ${p} ${where}=${value}: ${JSON.stringify(res.json.error)}`);
          }
          checked++;
        }
      }
    }
    // tokens.expiresAt, grants.notAfter, access request start and duration, extend duration.
    assert.ok(checked >= 5, `only ${checked} instant/duration fields found`);
  });

  it('refuses out-of-range durations in the access configuration and instants in policy files', async () => {
    // Threat: the same overflow through a document instead of a plain field.
    for (const d of BAD_DURATIONS) {
      const res = await s.call('PUT', '/v1/access/config', {
        apiVersion: 'steward/v1',
        permissionSets: { read: { permissions: ['SELECT'] } },
        eligibility: { e: { principal: 'group:analysts', scope: { catalogs: ['lake'] }, permissionSets: ['read'], maxDuration: d } },
      });
      assert.equal(res.status, 400, `maxDuration ${d}: ${JSON.stringify(res.json)}`);
      assert.match(res.json.error.message, /maxduration/i);
      const timeout = await s.call('PUT', '/v1/access/config', { apiVersion: 'steward/v1', pendingTimeout: d });
      assert.equal(timeout.status, 400, `pendingTimeout ${d}`);
    }
    for (const t of BAD_INSTANTS) {
      const text = `apiVersion: steward/v1\ngrants:\n  - principal: user:alice\n    resource: lake\n    permissions: [DESCRIBE]\n    notAfter: "${t}"\n`;
      const res = await s.call('POST', '/v1/policy/plan', { files: [{ file: 'p.yaml', text }] });
      assert.equal(res.status, 400, `notAfter ${t}: ${JSON.stringify(res.json)}`);
      assert.ok((res.json.error.details as Detail[]).some((d) => d.path === 'p.yaml:6:15'), JSON.stringify(res.json.error));
    }
  });

  it('answers the largest in-range start and duration without a 500', async () => {
    // Failure mode: each value is in range but their sum (end time) is not representable.
    assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
    const config = await s.call('PUT', '/v1/access/config', {
      apiVersion: 'steward/v1',
      permissionSets: { read: { permissions: ['DESCRIBE', 'SELECT'] } },
      eligibility: { long: { principal: 'group:analysts', scope: { databases: ['lake.claims'] }, permissionSets: ['read'], maxDuration: '3650d', approvalRequired: false } },
    });
    assert.equal(config.status, 200, JSON.stringify(config.json));
    const res = await fetch(`${s.url}/v1/access/requests`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.adminToken}`, 'content-type': 'application/json', 'x-steward-as': 'user:alice' },
      body: JSON.stringify({ scope: 'lake.claims', permissionSet: 'read', duration: '3650d', start: '9999-12-31T23:59:59Z', justification: 'edge of time' }),
    });
    const text = await res.text();
    assert.equal(res.status, 400, text);
    assert.match(text, /duration: ends at \+?010009-12-2\dT23:59:59\.000Z, after 9999-12-31/);
  });

  it('refuses an empty or apiVersion-less access configuration replace instead of wiping the configuration', async () => {
    // Failure mode: a truncated upload (empty body) replaces every eligibility and approval policy with nothing.
    const before = await s.call('GET', '/v1/access/config');
    for (const body of ['', '{}', JSON.stringify({ permissionSets: {} })]) {
      const res = await s.call('PUT', '/v1/access/config', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)} answered ${res.status}`);
      assert.equal(res.json.error.details[0].path, 'body.apiVersion');
    }
    assert.deepEqual((await s.call('GET', '/v1/access/config')).json, before.json);
  });
});

// ------------------------------------------------------------------ helpers

interface JsonSchema {
  [key: string]: unknown;
}

let doc: { paths: Record<string, Record<string, unknown>> } | undefined;
async function openapi(): Promise<{ paths: Record<string, Record<string, unknown>> }> {
  if (doc === undefined) {
    const res = await s.call('GET', '/openapi.json');
    assert.equal(res.status, 200);
    doc = res.json;
  }
  return doc as { paths: Record<string, Record<string, unknown>> };
}

const openapiPath = (p: string): string => p.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/** Every property marked with FORMAT_KEY, as a path of property names (`[]` for an array element). */
function formattedFields(schema: JsonSchema, path: string[] = []): { path: string[]; format: string }[] {
  const out: { path: string[]; format: string }[] = [];
  const format = schema[FORMAT_KEY];
  if (typeof format === 'string') out.push({ path, format });
  for (const [name, sub] of Object.entries((schema['properties'] ?? {}) as Record<string, JsonSchema>)) out.push(...formattedFields(sub, [...path, name]));
  if (schema['items'] !== undefined && typeof schema['items'] === 'object') out.push(...formattedFields(schema['items'] as JsonSchema, [...path, '[]']));
  for (const key of ['allOf', 'anyOf', 'oneOf']) {
    for (const sub of (schema[key] ?? []) as JsonSchema[]) out.push(...formattedFields(sub, path));
  }
  return out;
}

/** A body holding `value` at `path`, and nothing else. */
function withValue(path: string[], value: string): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return value;
  if (head === '[]') return [withValue(rest, value)];
  return { [head]: withValue(rest, value) };
}
