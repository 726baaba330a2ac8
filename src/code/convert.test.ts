import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StewardError } from '../errors.js';
import type { Predicate } from '../policy/predicate.js';
import { derivedGrantId, fromWorld, preparePredicates, toManagedWorld } from './convert.js';
import { loadPolicy, loadPolicySources } from './load.js';
import { DEMO_CATALOG, stubParsePredicate } from './test-catalog.js';

const parsePredicate = stubParsePredicate;

const SAMPLE = `
apiVersion: steward/v1
tagKeys:
  pii: { values: [true, false], description: personal data }
  domain: { values: [claims, finance] }
tags:
  Lake.Claims: { domain: claims }
  lake.claims.patient_claims.ssn: { pii: true }
users:
  alice: { displayName: Alice Analyst }
  bob:
groups:
  analysts: { members: [group:juniors, alice, alice] }
  juniors: { members: [bob] }
idpMappings:
  - { provider: okta, externalGroup: "Data Analysts", group: analysts }
filters:
  lake.claims.patient_claims:
    north_only: { rowFilter: "hospital = 'North Hospital'", excludedColumns: [ssn, patient_name] }
grants:
  - id: analysts-read-claims
    principal: group:analysts
    resource: lake.claims.patient_claims
    permissions: [SELECT, DESCRIBE, SELECT]
    grantable: [SELECT]
    notAfter: 2027-01-01T00:00:00Z
  - principal: bob
    resource: { table: lake.claims.patient_claims, filter: north_only }
    permissions: [SELECT]
  - principal: bob
    resource: { catalog: lake, tags: { pii: "false", domain: [finance, claims] } }
    permissions: [DESCRIBE]
guardrails:
  pii-officers-only:
    except: []
    actions: [SELECT]
    resources: "pii=true"
`;

test('fromWorld(toManagedWorld(doc)) is the canonical form of doc', () => {
  const { document } = loadPolicySources([{ file: 'p.yaml', text: SAMPLE }]);
  const world = toManagedWorld(document, { parsePredicate, catalog: DEMO_CATALOG });
  const canonical = fromWorld(world);
  assert.deepEqual(canonical, {
    apiVersion: 'steward/v1',
    tagKeys: { domain: { values: ['claims', 'finance'] }, pii: { values: ['true', 'false'], description: 'personal data' } },
    tags: { 'lake.claims': { domain: 'claims' }, 'lake.claims.patient_claims.ssn': { pii: 'true' } },
    users: { alice: { displayName: 'Alice Analyst' }, bob: {} },
    groups: { analysts: { members: ['user:alice', 'group:juniors'] }, juniors: { members: ['user:bob'] } },
    idpMappings: [{ provider: 'okta', externalGroup: 'Data Analysts', group: 'analysts' }],
    filters: { 'lake.claims.patient_claims': { north_only: { rowFilter: "hospital = 'North Hospital'", excludedColumns: ['patient_name', 'ssn'] } } },
    grants: [
      {
        id: 'analysts-read-claims',
        principal: 'group:analysts',
        resource: 'lake.claims.patient_claims',
        permissions: ['DESCRIBE', 'SELECT'],
        grantable: ['SELECT'],
        notAfter: '2027-01-01T00:00:00Z',
      },
      // Sorted by (derived) id; derived ids are not written back.
      ...[
        { principal: 'user:bob', resource: { table: 'lake.claims.patient_claims', filter: 'north_only' }, permissions: ['SELECT'] },
        { principal: 'user:bob', resource: { catalog: 'lake', tags: { domain: ['claims', 'finance'], pii: ['false'] } }, permissions: ['DESCRIBE'] },
      ].sort((a, b) => {
        const ida = world.grants.find((g) => g.principal === a.principal && JSON.stringify(g.resource).includes(typeof a.resource === 'object' && 'filter' in a.resource ? 'filter' : 'tag'))?.id ?? '';
        const idb = world.grants.find((g) => g.principal === b.principal && JSON.stringify(g.resource).includes(typeof b.resource === 'object' && 'filter' in b.resource ? 'filter' : 'tag'))?.id ?? '';
        return ida < idb ? -1 : 1;
      }),
    ],
    guardrails: { 'pii-officers-only': { actions: ['SELECT'], resources: { pii: ['true'] } } },
  });
  // Canonical is a fixed point.
  assert.deepEqual(fromWorld(toManagedWorld(canonical, { parsePredicate })), canonical);
});

test('the world carries parsed predicates, memberships and derived grant ids', () => {
  const { document } = loadPolicySources([{ file: 'p.yaml', text: SAMPLE }]);
  const world = toManagedWorld(document, { parsePredicate });
  const filter = world.filters[0];
  assert.deepEqual(filter?.predicate, { k: 'cmp', op: '=', left: { k: 'col', name: 'hospital' }, right: { k: 'lit', value: 'North Hospital' } });
  assert.deepEqual(
    world.memberships.map((m) => `${m.group}<${m.member}`),
    ['analysts<group:juniors', 'analysts<user:alice', 'juniors<user:bob'],
  );
  const bobFilter = world.grants.find((g) => g.resource.kind === 'filter');
  assert.equal(bobFilter?.id, derivedGrantId('user:bob', { kind: 'filter', catalog: 'lake', database: 'claims', table: 'patient_claims', filter: 'north_only' }));
  assert.match(bobFilter?.id ?? '', /^bob-patient_claims-[0-9a-f]{8}$/);
});

test('derived grant ids ignore list order but change with the resource', () => {
  const r = (columns: string[]) => ({ kind: 'columns', catalog: 'lake', database: 'claims', table: 'patient_claims', columns }) as const;
  assert.equal(derivedGrantId('group:a', r(['x', 'y'])), derivedGrantId('group:a', r(['y', 'x'])));
  assert.notEqual(derivedGrantId('group:a', r(['x'])), derivedGrantId('group:a', r(['y'])));
  assert.notEqual(derivedGrantId('group:a', r(['x'])), derivedGrantId('user:a', r(['x'])));
});

test('reports every reference problem at the entity that has it', () => {
  const text = [
    'apiVersion: steward/v1', // 1
    'tagKeys:', // 2
    '  pii: { values: ["true", "false"] }', // 3
    'tags:', // 4
    '  lake.claims: { domain: claims, pii: maybe }', // 5
    '  lake.nowhere.t: { pii: "true" }', // 6
    'users:', // 7
    '  alice: {}', // 8
    'groups:', // 9
    '  a: { members: [alice, ghost, "group:b"] }', // 10
    '  b: { members: ["group:a"] }', // 11
    'idpMappings:', // 12
    '  - { provider: okta, externalGroup: X, group: nobody }', // 13
    'filters:', // 14
    '  lake.claims.patient_claims:', // 15
    '    bad_sql: { rowFilter: "1; DROP TABLE x" }', // 16
    '    bad_col: { rowFilter: "nope = 1", columns: [amount, wat] }', // 17
    'grants:', // 18
    '  - { principal: group:ghosts, resource: lake, permissions: [DESCRIBE] }', // 19
    '  - { principal: alice, resource: { table: lake.claims.patient_claims, filter: missing }, permissions: [SELECT] }', // 20
    '  - { principal: alice, resource: { table: lake.claims.patient_claims, columns: [amount] }, permissions: [DELETE] }', // 21
    '  - { principal: alice, resource: { catalog: lake, tags: "domain=claims" }, permissions: [DESCRIBE] }', // 22
    '  - { principal: alice, resource: lake.claims.nope, permissions: [SELECT] }', // 23
    'guardrails:', // 24
    '  g: { except: [group:nobody], actions: [SELECT], catalog: other, resources: pii=perhaps }', // 25
  ].join('\n');
  const loaded = loadPolicySources([{ file: 'p.yaml', text }]);
  let error: unknown;
  try {
    toManagedWorld(loaded.document, { parsePredicate, locations: loaded.locations, catalog: DEMO_CATALOG });
  } catch (e) {
    error = e;
  }
  assert.ok(error instanceof StewardError);
  assert.equal(error.code, 'STEWARD_E_VALIDATION');
  const got = error.details.map((d) => `${d.path ?? ''} ${d.message}`);
  const expected = [
    'p.yaml:5:18 unknown tag key `domain`',
    'p.yaml:5:34 `maybe` is not a value of tag key `pii`',
    'p.yaml:6:21 unknown table `lake.nowhere.t`',
    'p.yaml:10:3 groups form a cycle: `a` -> `b` -> `a`',
    'p.yaml:10:25 group `a`: unknown user `ghost`',
    'p.yaml:13:5 unknown group `nobody`',
    'p.yaml:16:5 filter `bad_sql`: invalid row filter: unsupported predicate `1; DROP TABLE x`',
    'p.yaml:17:5 filter `bad_col`: unknown column `nope` in `lake.claims.patient_claims`',
    'p.yaml:17:5 filter `bad_col`: unknown column `wat` in `lake.claims.patient_claims`',
    'p.yaml:19:5 grant `ghosts-lake-',
    'p.yaml:20:5 grant `',
    'p.yaml:21:5 grant `',
    'p.yaml:22:5 grant `',
    'p.yaml:23:5 grant `',
    'p.yaml:25:3 guardrail `g`: unknown group `nobody`',
    'p.yaml:25:3 guardrail `g`: unknown catalog `other`',
    'p.yaml:25:3 guardrail `g`: `perhaps` is not a value of tag key `pii`',
  ];
  // In file order, each at its entity.
  expected.forEach((prefix, i) => assert.ok(got[i]?.startsWith(prefix), `${prefix}\n---\n${got.join('\n')}`));
  const has = (re: RegExp): boolean => got.some((g) => re.test(g));
  assert.ok(has(/^p\.yaml:20:5 grant `.*`: unknown filter `missing` on `lake\.claims\.patient_claims`$/));
  assert.ok(has(/^p\.yaml:21:5 grant `.*`: `DELETE` cannot be granted on columns$/));
  assert.ok(has(/^p\.yaml:22:5 grant `.*`: unknown tag key `domain`$/));
  assert.ok(has(/^p\.yaml:23:5 grant `.*`: unknown table `lake\.claims\.nope`$/));
  assert.equal(got.length, expected.length, got.join('\n'));
});

test('preparePredicates adapts an async parser and keeps its errors for the filter that caused them', async () => {
  const { document, locations } = loadPolicySources([
    { file: 'p.yaml', text: "apiVersion: steward/v1\nfilters:\n  lake.claims.patient_claims:\n    ok: { rowFilter: \"region = 'EU'\" }\n    bad: { rowFilter: 'region ~ 1' }\n" },
  ]);
  const parse = async (sql: string): Promise<Predicate> => stubParsePredicate(sql);
  const prepared = await preparePredicates(document, parse);
  assert.throws(
    () => toManagedWorld(document, { parsePredicate: prepared, locations }),
    (e: unknown) => e instanceof StewardError && e.details.length === 1 && e.details[0]?.path === 'p.yaml:5:5',
  );
});

test('the demo policy is valid against the demo catalog', async () => {
  const { document, locations } = await loadPolicy('examples/demo-policy');
  const world = toManagedWorld(document, { parsePredicate, locations, catalog: DEMO_CATALOG });
  assert.deepEqual(world.groups.map((g) => g.name), ['analysts', 'auditors', 'finance', 'hospital-admins', 'privacy-officers']);
  assert.ok(world.users.some((u) => u.name === 'north_admin'));
  const north = world.filters.find((f) => f.name === 'north_hospital_only');
  assert.equal(north?.rowFilter, "hospital = 'North Hospital'");
  assert.equal(north?.columns, undefined);
  assert.deepEqual(world.guardrails.map((g) => g.name), ['pii-requires-privacy-officer']);
  // The only tag grant must not be able to lift the row filter (see grants.yaml).
  for (const g of world.grants.filter((x) => x.resource.kind === 'tag')) assert.deepEqual(g.permissions, ['DESCRIBE']);
});
