import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEngine } from './engine.js';
import { checkGrantOption } from './grant-option.js';
import type { Grant, GrantResource, Permission, PolicyWorld } from './model.js';

const NOW = Date.UTC(2025, 0, 15, 12);
const T = { catalog: 'lake', database: 'claims', table: 'members' } as const;

const base: PolicyWorld = {
  catalogs: [{ name: 'lake' }, { name: 'wh' }],
  databases: [
    { catalog: 'lake', name: 'claims' },
    { catalog: 'lake', name: 'sales' },
  ],
  tables: [
    { ...T, name: 'members', columns: ['id', 'region', 'ssn'].map((name, ordinal) => ({ name, type: 'VARCHAR', ordinal })), source: { kind: 'virtual' } },
    { catalog: 'lake', database: 'claims', name: 'payments', columns: [{ name: 'id', type: 'BIGINT', ordinal: 0 }], source: { kind: 'virtual' } },
  ],
  users: [{ name: 'alice' }, { name: 'bob' }],
  groups: [{ name: 'stewards' }],
  memberships: [{ group: 'stewards', member: 'user:alice' }],
  idpMappings: [],
  tagKeys: [{ key: 'domain', values: ['claims', 'sales'] }, { key: 'pii', values: ['true', 'false'] }],
  tagAssignments: [],
  filters: [
    { name: 'east', ...T, rowFilter: null, predicate: null },
    { name: 'west', ...T, rowFilter: null, predicate: null },
  ],
  grants: [],
  guardrails: [],
};

function held(resource: GrantResource, grantable: Permission[], extra: Partial<Grant> = {}): PolicyWorld {
  return { ...base, grants: [{ id: 'h1', principal: 'group:stewards', resource, permissions: [...new Set([...grantable, 'SELECT' as const])], grantable, ...extra }] };
}

const wanted = (resource: GrantResource, permissions: Permission[] = ['SELECT'], extra: Partial<Grant> = {}): Grant => ({
  id: 'new',
  principal: 'user:bob',
  resource,
  permissions,
  grantable: [],
  ...extra,
});

const ok = (w: PolicyWorld, g: Grant): boolean => checkGrantOption(w, 'user:alice', g, NOW).ok;

test('a table grant with the option lets its holder re-grant the table, its columns and its filters', () => {
  const w = held({ kind: 'table', ...T }, ['SELECT']);
  assert.deepStrictEqual(checkGrantOption(w, 'user:alice', wanted({ kind: 'table', ...T }), NOW), { ok: true, via: 'h1' });
  assert.equal(ok(w, wanted({ kind: 'columns', ...T, columns: ['id'] })), true);
  assert.equal(ok(w, wanted({ kind: 'filter', ...T, filter: 'east' })), true);
  assert.equal(ok(w, wanted({ kind: 'table', ...T, table: 'payments' })), false, 'another table');
  assert.equal(ok(w, wanted({ kind: 'database', catalog: 'lake', database: 'claims' })), false, 'the container');
});

test('catalog contains database contains table', () => {
  assert.equal(ok(held({ kind: 'catalog', catalog: 'lake' }, ['SELECT']), wanted({ kind: 'database', catalog: 'lake', database: 'sales' })), true);
  assert.equal(ok(held({ kind: 'database', catalog: 'lake', database: 'claims' }, ['SELECT']), wanted({ kind: 'columns', ...T, excludedColumns: ['ssn'] })), true);
  assert.equal(ok(held({ kind: 'database', catalog: 'lake', database: 'sales' }, ['SELECT']), wanted({ kind: 'table', ...T })), false);
  assert.equal(ok(held({ kind: 'catalog', catalog: 'wh' }, ['SELECT']), wanted({ kind: 'table', ...T })), false);
});

test('a columns grant contains columns grants showing a subset of its columns', () => {
  const w = held({ kind: 'columns', ...T, excludedColumns: ['ssn'] }, ['SELECT']);
  assert.equal(ok(w, wanted({ kind: 'columns', ...T, columns: ['id', 'region'] })), true);
  assert.equal(ok(w, wanted({ kind: 'columns', ...T, columns: ['ssn'] })), false);
  assert.equal(ok(w, wanted({ kind: 'columns', ...T, excludedColumns: ['id'] })), false, 'all but id includes ssn');
  assert.equal(ok(w, wanted({ kind: 'table', ...T })), false, 'the whole table is wider');
  assert.equal(ok(w, wanted({ kind: 'filter', ...T, filter: 'east' })), false);
});

test('a filter grant contains only grants of the same filter', () => {
  const w = held({ kind: 'filter', ...T, filter: 'east' }, ['SELECT']);
  assert.equal(ok(w, wanted({ kind: 'filter', ...T, filter: 'east' })), true);
  assert.equal(ok(w, wanted({ kind: 'filter', ...T, filter: 'west' })), false);
  assert.equal(ok(w, wanted({ kind: 'columns', ...T, columns: ['id'] })), false, 'a filter restricts rows, a columns grant does not');
});

test('a tag grant contains tag grants of its catalog that are at least as narrow', () => {
  const w = held({ kind: 'tag', catalog: 'lake', expression: { domain: ['claims', 'sales'] } }, ['SELECT']);
  assert.equal(ok(w, wanted({ kind: 'tag', catalog: 'lake', expression: { domain: ['claims'], pii: ['false'] } })), true);
  assert.equal(ok(w, wanted({ kind: 'tag', catalog: 'lake', expression: { pii: ['false'] } })), false, 'dropping a key widens');
  assert.equal(ok(w, wanted({ kind: 'tag', catalog: 'wh', expression: { domain: ['claims'] } })), false);
  assert.equal(ok(w, wanted({ kind: 'table', ...T })), false, 'tags can change, a named table cannot be derived from them');
  assert.equal(ok(held({ kind: 'catalog', catalog: 'lake' }, ['SELECT']), wanted({ kind: 'tag', catalog: 'lake', expression: {} })), true);
});

test('every permission of the new grant needs the option, from one single grant', () => {
  const split: PolicyWorld = {
    ...base,
    grants: [
      { id: 'h1', principal: 'user:alice', resource: { kind: 'table', ...T }, permissions: ['SELECT'], grantable: ['SELECT'] },
      { id: 'h2', principal: 'user:alice', resource: { kind: 'table', ...T }, permissions: ['INSERT'], grantable: ['INSERT'] },
    ],
  };
  assert.equal(ok(split, wanted({ kind: 'table', ...T }, ['SELECT', 'INSERT'])), false, 'options are not pooled across grants');
  assert.equal(ok(split, wanted({ kind: 'table', ...T }, ['INSERT'])), true);
  assert.equal(ok(held({ kind: 'table', ...T }, []), wanted({ kind: 'table', ...T })), false, 'holding without the option is not enough');
});

test('a grantable permission the holder does not actually hold is no option', () => {
  const w: PolicyWorld = { ...base, grants: [{ id: 'h1', principal: 'user:alice', resource: { kind: 'table', ...T }, permissions: ['INSERT'], grantable: ['SELECT'] }] };
  assert.equal(ok(w, wanted({ kind: 'table', ...T })), false);
});

test('an expired grant gives no option, and a re-grant never outlives its source', () => {
  const expiring = held({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-02-01T00:00:00Z' });
  assert.equal(ok(expiring, wanted({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-01-20T00:00:00Z' })), true);
  const forever = checkGrantOption(expiring, 'user:alice', wanted({ kind: 'table', ...T }), NOW);
  assert.deepStrictEqual(forever, { ok: false, reason: 'the new grant must expire no later than `2025-02-01T00:00:00Z`, when grant `h1` does' });
  assert.equal(ok(expiring, wanted({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-03-01T00:00:00Z' })), false);
  assert.equal(checkGrantOption(expiring, 'user:alice', wanted({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-01-20T00:00:00Z' }), Date.UTC(2025, 1, 2)).ok, false);
});

test('the refusal says what was missing', () => {
  const r = checkGrantOption(base, 'user:alice', wanted({ kind: 'columns', ...T, columns: ['id'] }), NOW);
  assert.deepStrictEqual(r, { ok: false, reason: '`user:alice` holds no unexpired grant with the grant option for SELECT on a resource containing `lake.claims.members (id)`' });
  assert.deepStrictEqual(checkGrantOption(base, 'user:mallory', wanted({ kind: 'table', ...T }), NOW), { ok: false, reason: 'unknown principal `user:mallory`' });
});

test('works from an engine as well as from a world', () => {
  const w = held({ kind: 'table', ...T }, ['SELECT']);
  assert.deepStrictEqual(checkGrantOption(createEngine(w), 'user:alice', wanted({ kind: 'table', ...T }), NOW), { ok: true, via: 'h1' });
  assert.equal(checkGrantOption(createEngine(w), 'user:bob', wanted({ kind: 'table', ...T }), NOW).ok, false);
});

test('a re-grant lifts only guardrails its holder grant lifts (no laundering a guardrail exemption)', () => {
  const plain = held({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-02-01T00:00:00Z' });
  const lifting = wanted({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-01-20T00:00:00Z', liftsGuardrails: ['no-pii'] });
  assert.deepStrictEqual(checkGrantOption(plain, 'user:alice', lifting, NOW), { ok: false, reason: 'the new grant lifts guardrail `no-pii`, which grant `h1` does not lift' });
  const holder = held({ kind: 'table', ...T }, ['SELECT'], { notAfter: '2025-02-01T00:00:00Z', liftsGuardrails: ['no-pii'] });
  assert.deepStrictEqual(checkGrantOption(holder, 'user:alice', lifting, NOW), { ok: true, via: 'h1' });
});
