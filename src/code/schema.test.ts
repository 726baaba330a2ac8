import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PolicyDocumentSchema, policyJsonSchema } from './schema.js';
import { JSON_SCHEMA_PATH, renderJsonSchema } from './write-json-schema.js';

const base = { apiVersion: 'steward/v1' };

test('the committed JSON Schema is the one the zod schema generates (run src/code/write-json-schema.ts)', () => {
  assert.equal(readFileSync(JSON_SCHEMA_PATH, 'utf8'), renderJsonSchema());
});

test('every string in the JSON Schema has a maximum length', () => {
  const unbounded: string[] = [];
  const walk = (node: unknown, path: string): void => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${path}[${i}]`));
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    if (o.type === 'string' && o.maxLength === undefined && o.const === undefined && o.enum === undefined) unbounded.push(path);
    for (const [k, v] of Object.entries(o)) walk(v, `${path}.${k}`);
  };
  walk(policyJsonSchema(), '$');
  assert.deepEqual(unbounded, []);
});

test('rejects unknown fields at every level (a misspelt field must not be silently ignored)', () => {
  const cases: unknown[] = [
    { ...base, extra: 1 },
    { ...base, tagKeys: { pii: { values: ['x'], descripton: 'typo' } } },
    { ...base, users: { alice: { display_name: 'A' } } },
    { ...base, groups: { g: { member: ['alice'] } } },
    { ...base, idpMappings: [{ provider: 'okta', externalGroup: 'X', group: 'g', role: 'admin' }] },
    { ...base, filters: { 'lake.d.t': { f: { rowfilter: "a = 'x'" } } } },
    { ...base, grants: [{ principal: 'alice', resource: 'lake', permissions: ['SELECT'], expires: '2027-01-01T00:00:00Z' }] },
    { ...base, grants: [{ principal: 'alice', resource: { table: 'lake.d.t', colums: ['a'] }, permissions: ['SELECT'] }] },
    { ...base, guardrails: { g: { actions: ['SELECT'], resources: 'pii=true', exempt: ['alice'] } } },
  ];
  for (const c of cases) assert.equal(PolicyDocumentSchema.safeParse(c).success, false, JSON.stringify(c));
});

test('normalizes names, principals, tag values and tag expressions', () => {
  const doc = PolicyDocumentSchema.parse({
    ...base,
    tagKeys: { ' PII ': { values: [true, false] } },
    tags: { ' Lake.Claims.T ': { PII: true } },
    users: { ' Alice ': null },
    groups: { Analysts: { members: ['Alice', 'group:Juniors'] } },
    grants: [
      { principal: ' Alice ', resource: { catalog: 'lake', tags: 'PII IN (true, false)' }, permissions: ['DESCRIBE'] },
      { principal: 'group:analysts', resource: { catalog: 'lake', tags: { pii: [false, true] } }, permissions: ['DESCRIBE'] },
    ],
  });
  assert.deepEqual(doc.tagKeys, { pii: { values: ['true', 'false'] } });
  assert.deepEqual(doc.tags, { 'lake.claims.t': { pii: 'true' } });
  assert.deepEqual(doc.users, { alice: {} });
  assert.deepEqual(doc.groups?.analysts?.members, ['user:alice', 'group:juniors']);
  const [g0, g1] = doc.grants ?? [];
  assert.equal(g0?.principal, 'user:alice');
  assert.deepEqual(g0?.resource, { catalog: 'lake', tags: { pii: ['false', 'true'] } });
  assert.deepEqual(g1?.resource, g0?.resource);
});

test('rejects resources at the wrong level and overlong text', () => {
  const bad: unknown[] = [
    { ...base, tags: { lake: { pii: 'true' } } },
    { ...base, filters: { 'lake.d': { f: {} } } },
    { ...base, grants: [{ principal: 'alice', resource: 'lake.d.t.c', permissions: ['SELECT'] }] },
    { ...base, grants: [{ principal: 'alice', resource: 'lake..t', permissions: ['SELECT'] }] },
    { ...base, users: { alice: { displayName: 'x'.repeat(257) } } },
    { ...base, tagKeys: { k: { values: ['a'], description: 'x'.repeat(2001) } } },
    { ...base, grants: [{ principal: 'alice', resource: 'lake', permissions: ['SELECT'], grantable: ['DESCRIBE'] }] },
    { ...base, grants: [{ principal: 'alice', resource: { table: 'lake.d.t', columns: ['a'], filter: 'f' }, permissions: ['SELECT'] }] },
    { apiVersion: 'steward/v2' },
  ];
  for (const c of bad) assert.equal(PolicyDocumentSchema.safeParse(c).success, false, JSON.stringify(c).slice(0, 120));
});

test('tag expressions use the shared parser; `*` and the empty text match everything', () => {
  const parse = (resources: unknown) => PolicyDocumentSchema.safeParse({ ...base, guardrails: { g: { actions: ['SELECT'], resources } } });
  const ok = (resources: unknown) => {
    const r = parse(resources);
    assert.ok(r.success, JSON.stringify(resources));
    return r.data.guardrails?.g?.resources;
  };
  assert.deepEqual(ok('*'), {});
  assert.deepEqual(ok(''), {});
  assert.deepEqual(ok({}), {});
  assert.deepEqual(ok("Domain IN (finance, claims) AND owner='team:data'"), { domain: ['claims', 'finance'], owner: ['team:data'] });
  for (const bad of ['pii', 'pii=true AND', 'pii=true OR x=y', 'pii=true AND pii=false', 'pii=true; DROP']) {
    const r = parse(bad);
    assert.equal(r.success, false, bad);
    // Inside the union's text branch; the loader flattens it to this message.
    if (!r.success) assert.match(JSON.stringify(r.error.issues), /"invalid tag expression: [a-z]/, bad);
  }
});
