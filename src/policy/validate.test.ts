import assert from 'node:assert/strict';
import { test } from 'node:test';
import { StewardError } from '../errors.js';
import type { Guardrail, PolicyWorld } from './model.js';
import { assertValidWorld, validateWorld } from './validate.js';

const valid: PolicyWorld = {
  catalogs: [{ name: 'lake' }],
  databases: [{ catalog: 'lake', name: 'claims' }],
  tables: [
    {
      catalog: 'lake',
      database: 'claims',
      name: 'members',
      columns: [
        { name: 'id', type: 'BIGINT', ordinal: 0 },
        { name: 'region', type: 'VARCHAR', ordinal: 1 },
        { name: 'ssn', type: 'VARCHAR', ordinal: 2 },
      ],
      source: { kind: 'virtual' },
    },
  ],
  users: [{ name: 'alice' }],
  groups: [{ name: 'analysts' }, { name: 'staff' }],
  memberships: [
    { group: 'analysts', member: 'user:alice' },
    { group: 'staff', member: 'group:analysts' },
  ],
  idpMappings: [{ provider: 'okta', externalGroup: 'Data Analysts', group: 'analysts' }],
  tagKeys: [
    { key: 'pii', values: ['true', 'false'] },
    { key: 'domain', values: ['claims', 'sales'] },
  ],
  tagAssignments: [
    { resource: { level: 'database', catalog: 'lake', database: 'claims' }, key: 'domain', value: 'claims' },
    { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'ssn' }, key: 'pii', value: 'true' },
  ],
  filters: [
    {
      name: 'east',
      catalog: 'lake',
      database: 'claims',
      table: 'members',
      rowFilter: "region = 'East'",
      predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'region' }, right: { k: 'lit', value: 'East' } },
      excludedColumns: ['ssn'],
    },
  ],
  grants: [
    { id: 'g1', principal: 'group:analysts', resource: { kind: 'tag', catalog: 'lake', expression: { pii: ['false'] } }, permissions: ['SELECT'], grantable: [] },
    { id: 'g2', principal: 'user:alice', resource: { kind: 'columns', catalog: 'lake', database: 'claims', table: 'members', columns: ['id'] }, permissions: ['SELECT'], grantable: ['SELECT'], notAfter: '2030-01-01T00:00:00Z' },
    { id: 'g3', principal: 'user:alice', resource: { kind: 'filter', catalog: 'lake', database: 'claims', table: 'members', filter: 'east' }, permissions: ['SELECT'], grantable: [] },
  ],
  guardrails: [{ name: 'no-pii', except: ['group:staff'], actions: ['SELECT'], resources: { pii: ['true'] } }],
};

/** The world with one field replaced. */
function withField<K extends keyof PolicyWorld>(key: K, value: PolicyWorld[K]): PolicyWorld {
  return { ...valid, [key]: value };
}

function codes(w: PolicyWorld): string[] {
  return validateWorld(w).map((i) => `${i.code} ${i.path}`);
}

test('a valid world has no issue and passes the assertion', () => {
  assert.deepStrictEqual(validateWorld(valid), []);
  assertValidWorld(valid);
});

test('names must match their patterns', () => {
  assert.deepStrictEqual(codes(withField('catalogs', [{ name: 'lake' }, { name: 'Bad Name' }])), ['STEWARD_E_VALIDATION catalogs[Bad Name]']);
  assert.deepStrictEqual(codes(withField('users', [{ name: 'alice' }, { name: 'a b' }])), ['STEWARD_E_VALIDATION users[a b]']);
  assert.deepStrictEqual(codes(withField('tagKeys', [...valid.tagKeys, { key: 'Bad', values: ['x'] }])), ['STEWARD_E_VALIDATION tagKeys[Bad]']);
});

test('natural keys are unique', () => {
  assert.deepStrictEqual(codes(withField('groups', [...valid.groups, { name: 'staff' }])), ['STEWARD_E_ALREADY_EXISTS groups[staff]']);
  assert.deepStrictEqual(codes(withField('grants', [...valid.grants, valid.grants[0]!])), ['STEWARD_E_ALREADY_EXISTS grants[g1]']);
});

test('columns are unique and ordinals run 0..n-1', () => {
  const t = valid.tables[0]!;
  const issues = codes(withField('tables', [{ ...t, columns: [...t.columns, { name: 'id', type: 'X', ordinal: 5 }] }]));
  assert.deepStrictEqual(issues, ['STEWARD_E_ALREADY_EXISTS tables[lake.claims.members].columns[3]', 'STEWARD_E_VALIDATION tables[lake.claims.members].columns[3]']);
});

test('containers and memberships must point at existing things', () => {
  assert.deepStrictEqual(codes(withField('databases', [...valid.databases, { catalog: 'nope', name: 'x' }])), ['STEWARD_E_NOT_FOUND databases[nope.x].catalog']);
  assert.deepStrictEqual(codes(withField('memberships', [{ group: 'ghosts', member: 'user:casper' }])), [
    'STEWARD_E_NOT_FOUND memberships[ghosts<user:casper].group',
    'STEWARD_E_NOT_FOUND memberships[ghosts<user:casper].member',
  ]);
  assert.deepStrictEqual(codes(withField('idpMappings', [{ provider: 'okta', externalGroup: 'X', group: 'nope' }])), ['STEWARD_E_NOT_FOUND idpMappings[okta/X].group']);
});

test('a group cycle is reported with its path', () => {
  const issues = validateWorld(withField('memberships', [...valid.memberships, { group: 'analysts', member: 'group:staff' }]));
  assert.deepStrictEqual(issues, [{ path: 'groups[analysts]', code: 'STEWARD_E_GROUP_CYCLE', message: 'group cycle `analysts → staff → analysts`' }]);
});

test('tag keys have 1..1000 unique, well-formed values', () => {
  assert.deepStrictEqual(codes(withField('tagKeys', [...valid.tagKeys, { key: 'empty', values: [] }])), ['STEWARD_E_VALIDATION tagKeys[empty].values']);
  const many = Array.from({ length: 1001 }, (_, i) => `v${i}`);
  assert.deepStrictEqual(codes(withField('tagKeys', [...valid.tagKeys, { key: 'big', values: many }])), ['STEWARD_E_TOO_MANY_VALUES tagKeys[big].values']);
  assert.deepStrictEqual(codes(withField('tagKeys', [...valid.tagKeys, { key: 'odd', values: ['a', 'a', '-x'] }])), [
    'STEWARD_E_VALIDATION tagKeys[odd].values[1]',
    'STEWARD_E_VALIDATION tagKeys[odd].values[2]',
  ]);
});

test('tag assignments need an existing resource, a known key and an allowed value, once per key', () => {
  const col = { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'id' } as const;
  assert.deepStrictEqual(
    codes(
      withField('tagAssignments', [
        { resource: col, key: 'color', value: 'red' },
        { resource: col, key: 'pii', value: 'maybe' },
        { resource: { ...col, column: 'nope' }, key: 'pii', value: 'true' },
        { resource: { ...col, column: 'region' }, key: 'pii', value: 'true' },
        { resource: { ...col, column: 'region' }, key: 'pii', value: 'false' },
      ]),
    ),
    [
      'STEWARD_E_DUPLICATE_TAG tagAssignments[lake.claims.members.region#pii]',
      'STEWARD_E_UNKNOWN_TAG tagAssignments[lake.claims.members.id#color]',
      'STEWARD_E_UNKNOWN_TAG_VALUE tagAssignments[lake.claims.members.id#pii]',
      'STEWARD_E_NOT_FOUND tagAssignments[lake.claims.members.nope#pii].resource',
    ],
  );
});

test('grants: principal and resource exist, permissions fit the kind, grantable within permissions', () => {
  const g = valid.grants[1]!;
  const bad = (over: object): string[] => codes(withField('grants', [{ ...g, ...over }]));
  assert.deepStrictEqual(bad({ principal: 'user:ghost' }), ['STEWARD_E_NOT_FOUND grants[g2].principal']);
  assert.deepStrictEqual(bad({ principal: 'alice' }), ['STEWARD_E_VALIDATION grants[g2].principal']);
  assert.deepStrictEqual(bad({ permissions: ['SELECT', 'INSERT'] }), ['STEWARD_E_VALIDATION grants[g2].permissions[1]']);
  assert.deepStrictEqual(bad({ permissions: [], grantable: [] }), ['STEWARD_E_VALIDATION grants[g2].permissions']);
  assert.deepStrictEqual(bad({ grantable: ['INSERT'] }), ['STEWARD_E_VALIDATION grants[g2].grantable[0]']);
  assert.deepStrictEqual(bad({ notAfter: 'next tuesday' }), ['STEWARD_E_VALIDATION grants[g2].notAfter']);
  assert.deepStrictEqual(bad({ resource: { kind: 'table', catalog: 'lake', database: 'claims', table: 'nope' } }), ['STEWARD_E_NOT_FOUND grants[g2].resource']);
  assert.deepStrictEqual(bad({ resource: { kind: 'filter', catalog: 'lake', database: 'claims', table: 'members', filter: 'west' } }), ['STEWARD_E_NOT_FOUND grants[g2].resource']);
  assert.deepStrictEqual(bad({ resource: { kind: 'database', catalog: 'lake', database: 'nope' } }), ['STEWARD_E_NOT_FOUND grants[g2].resource']);
});

test('a columns grant has exactly one existing column list', () => {
  const g = valid.grants[1]!;
  const res = { kind: 'columns', catalog: 'lake', database: 'claims', table: 'members' } as const;
  const bad = (resource: object): string[] => codes(withField('grants', [{ ...g, resource: { ...res, ...resource } as typeof g.resource }]));
  assert.deepStrictEqual(bad({ columns: ['id', 'nope'] }), ['STEWARD_E_UNKNOWN_COLUMN grants[g2].resource.columns[1]']);
  assert.deepStrictEqual(bad({ excludedColumns: ['nope'] }), ['STEWARD_E_UNKNOWN_COLUMN grants[g2].resource.excludedColumns[0]']);
  assert.deepStrictEqual(bad({ columns: ['id'], excludedColumns: ['ssn'] }), ['STEWARD_E_VALIDATION grants[g2].resource']);
  assert.deepStrictEqual(bad({}), ['STEWARD_E_VALIDATION grants[g2].resource']);
});

test('a tag grant expression uses known keys and values', () => {
  const g = valid.grants[0]!;
  const issues = validateWorld(withField('grants', [{ ...g, resource: { kind: 'tag', catalog: 'lake', expression: { color: ['red'], pii: ['maybe'], domain: [] } } }]));
  assert.deepStrictEqual(
    issues.map((i) => `${i.code} ${i.path}`),
    ['STEWARD_E_UNKNOWN_TAG grants[g1].resource.expression.color', 'STEWARD_E_UNKNOWN_TAG_VALUE grants[g1].resource.expression.pii[0]', 'STEWARD_E_VALIDATION grants[g1].resource.expression.domain'],
  );
  assert.equal(issues[0]?.message, 'unknown tag key `color`');
});

test('filters: table exists, one column list of existing columns, predicate reads existing columns, predicate iff text', () => {
  const f = valid.filters[0]!;
  const bad = (over: object): string[] => codes(withField('filters', [{ ...f, ...over }]));
  assert.deepStrictEqual(bad({ table: 'nope' }), ['STEWARD_E_NOT_FOUND filters[lake.claims.nope/east].table', 'STEWARD_E_NOT_FOUND grants[g3].resource']);
  assert.deepStrictEqual(bad({ columns: ['id'] }), ['STEWARD_E_VALIDATION filters[lake.claims.members/east]']);
  assert.deepStrictEqual(bad({ excludedColumns: ['nope'] }), ['STEWARD_E_UNKNOWN_COLUMN filters[lake.claims.members/east].excludedColumns[0]']);
  assert.deepStrictEqual(bad({ predicate: { k: 'isnull', arg: { k: 'col', name: 'zip' }, negated: false } }), ['STEWARD_E_UNKNOWN_COLUMN filters[lake.claims.members/east].predicate']);
  assert.deepStrictEqual(bad({ predicate: null }), ['STEWARD_E_INVALID_PREDICATE filters[lake.claims.members/east].predicate']);
  assert.deepStrictEqual(bad({ rowFilter: null }), ['STEWARD_E_INVALID_PREDICATE filters[lake.claims.members/east].predicate']);
});

test('guardrails: actions, principals, catalog and expression are checked', () => {
  const g = valid.guardrails[0]!;
  const bad = (over: object): string[] => codes(withField('guardrails', [{ ...g, ...over }]));
  assert.deepStrictEqual(bad({ actions: [] }), ['STEWARD_E_VALIDATION guardrails[no-pii].actions']);
  assert.deepStrictEqual(bad({ principals: [] }), ['STEWARD_E_VALIDATION guardrails[no-pii].principals']);
  assert.deepStrictEqual(bad({ except: ['group:nope'] }), ['STEWARD_E_NOT_FOUND guardrails[no-pii].except[0]']);
  assert.deepStrictEqual(bad({ catalog: 'nope' }), ['STEWARD_E_NOT_FOUND guardrails[no-pii].catalog']);
  assert.deepStrictEqual(bad({ resources: { pii: ['yes'] } }), ['STEWARD_E_UNKNOWN_TAG_VALUE guardrails[no-pii].resources.pii[0]']);
});

test('a grant lifts only existing, liftable guardrails, and only when time-bound', () => {
  const g = valid.grants[1]!;
  const liftable = { ...valid.guardrails[0]!, liftable: true };
  const world = (grant: object, guardrail: Guardrail = liftable): PolicyWorld => ({ ...valid, grants: [{ ...g, ...grant }], guardrails: [guardrail] });
  assert.deepStrictEqual(codes(world({ liftsGuardrails: ['no-pii'] })), []);
  const { notAfter: _n, ...forever } = g;
  const unbounded = validateWorld({ ...world({}), grants: [{ ...forever, liftsGuardrails: ['no-pii'] }] });
  assert.deepStrictEqual(unbounded.map((i) => `${i.code} ${i.path}`), ['STEWARD_E_VALIDATION grants[g2].liftsGuardrails']);
  assert.equal(unbounded[0]?.message, 'a grant that lifts guardrails must be time-bound, set `notAfter`');
  const notLiftable = validateWorld(world({ liftsGuardrails: ['no-pii'] }, valid.guardrails[0]!));
  assert.deepStrictEqual(notLiftable.map((i) => `${i.code} ${i.path}`), ['STEWARD_E_VALIDATION grants[g2].liftsGuardrails[0]']);
  assert.equal(notLiftable[0]?.message, 'guardrail `no-pii` is not liftable, mark it `liftable: true` to let time-bound grants lift it');
  assert.deepStrictEqual(codes(world({ liftsGuardrails: ['nope'] })), ['STEWARD_E_VALIDATION grants[g2].liftsGuardrails[0]']);
  assert.deepStrictEqual(codes(world({ liftsGuardrails: ['no-pii', 'no-pii'] })), ['STEWARD_E_VALIDATION grants[g2].liftsGuardrails[1]']);
});

test('assertValidWorld throws one StewardError carrying every issue', () => {
  const w = withField('grants', [{ ...valid.grants[1]!, principal: 'user:ghost', grantable: ['DROP'] }]);
  assert.throws(
    () => assertValidWorld(w),
    (e: unknown) => {
      assert.ok(e instanceof StewardError);
      assert.equal(e.code, 'STEWARD_E_VALIDATION');
      assert.equal(e.details.length, 2);
      assert.equal(e.message, '2 problems in the policy, first: grants[g2].principal: principal `user:ghost` not found');
      return true;
    },
  );
  assert.throws(() => assertValidWorld(withField('grants', [{ ...valid.grants[1]!, principal: 'user:ghost' }])), { code: 'STEWARD_E_NOT_FOUND' });
});
