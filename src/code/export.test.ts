import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type {
  DataFilter,
  Grant,
  GrantResource,
  Group,
  Guardrail,
  IdpGroupMapping,
  Membership,
  Permission,
  PolicyWorld,
  PrincipalRef,
  TagAssignment,
  TaggableRef,
  TagExpression,
  TagKey,
  User,
} from '../policy/model.js';
import { GRANTABLE_ON, PERMISSIONS, parseResource } from '../policy/model.js';
import type { ManagedWorld } from './convert.js';
import { derivedGrantId, toManagedWorld } from './convert.js';
import { exportPolicy, exportPolicyFiles } from './export.js';
import { loadPolicy, loadPolicySources } from './load.js';
import { planPolicy } from './plan.js';
import { CLAIMS_COLUMNS, DEMO_CATALOG, REVENUE_COLUMNS, stubParsePredicate } from './test-catalog.js';

/** export -> load -> convert -> plan against the world it came from. */
function roundTrip(world: ManagedWorld): { text: string; reloaded: ManagedWorld; changes: number } {
  const text = exportPolicy(world);
  const loaded = loadPolicySources([{ file: 'export.yaml', text }]);
  const reloaded = toManagedWorld(loaded.document, { parsePredicate: stubParsePredicate, locations: loaded.locations, catalog: DEMO_CATALOG });
  const plan = planPolicy({ ...DEMO_CATALOG, ...world }, reloaded);
  return { text, reloaded, changes: plan.changes.length };
}

test('the demo policy round-trips through export with no changes, and exports stably', async () => {
  const { document } = await loadPolicy('examples/demo-policy');
  const world = toManagedWorld(document, { parsePredicate: stubParsePredicate, catalog: DEMO_CATALOG });
  const { text, reloaded, changes } = roundTrip(world);
  assert.equal(changes, 0);
  assert.equal(exportPolicy(reloaded), text);
  assert.match(text, /^# /);
  assert.equal(exportPolicy(world, { schemaUrl: 'https://x/s.json' }).split('\n')[0], '# yaml-language-server: $schema=https://x/s.json');

  const files = exportPolicyFiles(world);
  assert.deepEqual(Object.keys(files).sort(), ['grants.yaml', 'guardrails.yaml', 'principals.yaml', 'tags.yaml']);
  const split = loadPolicySources(Object.entries(files).map(([file, t]) => ({ file, text: t })));
  const fromSplit = toManagedWorld(split.document, { parsePredicate: stubParsePredicate });
  assert.equal(planPolicy({ ...DEMO_CATALOG, ...world }, fromSplit).changes.length, 0);
});

// ------------------------------------------------------------ random worlds

const TAG_KEYS = ['pii', 'domain', 'confidentiality', 'owner'] as const;
const TAG_VALUES = ['true', 'false', 'claims', 'finance', 'A.b:c/d@e+f-g', '123', '1e3', 'null', 'yes', 'x_1'] as const;
const USERS = ['alice', 'bob', 'north_admin', 'x.y-z', '0day'] as const;
const GROUPS = ['analysts', 'privacy-officers', 'finance', 'g.1'] as const;
const TAGGABLES: readonly TaggableRef[] = [
  'lake.claims',
  'lake.finance',
  'lake.claims.patient_claims',
  'lake.finance.revenue',
  'lake.claims.patient_claims.ssn',
  'lake.claims.patient_claims.patient_name',
  'lake.finance.revenue.cost',
].map((p) => parseResource(p) as TaggableRef);
const TABLES = [
  { catalog: 'lake', database: 'claims', table: 'patient_claims', columns: CLAIMS_COLUMNS },
  { catalog: 'lake', database: 'finance', table: 'revenue', columns: REVENUE_COLUMNS },
] as const;
// Columns both tables have, so any filter may use any of these.
const ROW_FILTERS = [null, "hospital = 'North Hospital'", "region = 'O''Brien: #1'", 'region = 5'] as const;

/** Free text as people write it: YAML-significant characters, look-alike scalars, unicode, newlines. */
const freeText = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.constantFrom('', ' leading', 'trailing ', 'multi\nline\n', 'quote " and \' ', '# not a comment', 'key: value', '- dash', 'ünïcødé ✓', 'true', '123', 'null', '~', '*star', '&anchor', '!tag', '{a: b}', '[x]'),
);
const opt = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> => fc.option(arb, { nil: undefined });
const pick = <T>(list: readonly T[], i: number): T => list[i % list.length] as T;
const subset = <T>(list: readonly T[], picks: readonly number[]): T[] => [...new Set(picks.map((i) => pick(list, i)))];
const indices = (min: number, max: number) => fc.array(fc.nat(99), { minLength: min, maxLength: max });

const baseArb = fc.record({
  tagKeys: fc.uniqueArray(
    fc.record({ key: fc.constantFrom(...TAG_KEYS), values: fc.uniqueArray(fc.constantFrom(...TAG_VALUES), { minLength: 1, maxLength: 4 }), description: opt(freeText) }),
    { selector: (t) => t.key, maxLength: 4 },
  ),
  users: fc.uniqueArray(fc.record({ name: fc.constantFrom(...USERS), displayName: opt(freeText) }), { selector: (u) => u.name, minLength: 1, maxLength: 5 }),
  groups: fc.uniqueArray(fc.record({ name: fc.constantFrom(...GROUPS), description: opt(freeText) }), { selector: (g) => g.name, maxLength: 4 }),
});

const worldArb: fc.Arbitrary<ManagedWorld> = baseArb.chain((base) => {
  const tagKeys: TagKey[] = base.tagKeys.map((t) => ({ key: t.key, values: t.values, ...(t.description === undefined ? {} : { description: t.description }) }));
  const users: User[] = base.users.map((u) => ({ name: u.name, ...(u.displayName === undefined ? {} : { displayName: u.displayName }) }));
  const groups: Group[] = base.groups.map((g) => ({ name: g.name, ...(g.description === undefined ? {} : { description: g.description }) }));
  const principals: PrincipalRef[] = [...users.map((u) => `user:${u.name}` as const), ...groups.map((g) => `group:${g.name}` as const)];

  const expressionArb: fc.Arbitrary<TagExpression> = fc.array(fc.record({ k: fc.nat(99), vs: indices(1, 3) }), { maxLength: 2 }).map((parts) => {
    const e: Record<string, string[]> = {};
    if (tagKeys.length === 0) return e;
    for (const p of parts) {
      const t = pick(tagKeys, p.k);
      e[t.key] = subset(t.values, p.vs);
    }
    return e;
  });

  const tagAssignmentsArb: fc.Arbitrary<TagAssignment[]> =
    tagKeys.length === 0
      ? fc.constant([])
      : fc
          .uniqueArray(fc.record({ r: fc.nat(99), k: fc.nat(99), v: fc.nat(99) }), { selector: (x) => `${x.r % TAGGABLES.length}#${x.k % tagKeys.length}`, maxLength: 8 })
          .map((xs) =>
            xs.map((x) => {
              const t = pick(tagKeys, x.k);
              return { resource: pick(TAGGABLES, x.r), key: t.key, value: pick(t.values, x.v) };
            }),
          );

  // A group's nested groups come earlier in the list, so memberships never form a cycle.
  const membershipsArb: fc.Arbitrary<Membership[]> =
    groups.length === 0
      ? fc.constant([])
      : fc.array(fc.record({ g: fc.nat(99), m: fc.nat(99), nested: fc.boolean() }), { maxLength: 8 }).map((xs) => {
          const out = new Map<string, Membership>();
          for (const x of xs) {
            const gi = x.g % groups.length;
            const group = (groups[gi] as Group).name;
            const member: PrincipalRef = x.nested && gi > 0 ? `group:${(groups[x.m % gi] as Group).name}` : `user:${pick(users, x.m).name}`;
            out.set(`${group}<${member}`, { group, member });
          }
          return [...out.values()];
        });

  const idpArb: fc.Arbitrary<IdpGroupMapping[]> =
    groups.length === 0
      ? fc.constant([])
      : fc
          .uniqueArray(
            fc.record({ provider: fc.constantFrom('okta', 'azure-ad'), externalGroup: fc.constantFrom('Data Analysts', 'Finance', 'ÜberGroup', 'a, b', 'x: y', '#1'), g: fc.nat(99) }),
            { selector: (m) => `${m.provider}/${m.externalGroup}`, maxLength: 3 },
          )
          .map((xs) => xs.map((m) => ({ provider: m.provider, externalGroup: m.externalGroup, group: pick(groups, m.g).name })));

  const filtersArb: fc.Arbitrary<DataFilter[]> = fc
    .uniqueArray(fc.record({ t: fc.nat(1), name: fc.constantFrom('north', 'south_only', 'f.1'), rf: fc.nat(99), cols: fc.constantFrom('all', 'include', 'exclude'), picks: indices(1, 3) }), {
      selector: (f) => `${f.t}/${f.name}`,
      maxLength: 3,
    })
    .map((xs) =>
      xs.map((x) => {
        const t = TABLES[x.t] as (typeof TABLES)[number];
        const rowFilter = pick(ROW_FILTERS, x.rf);
        const cols = subset(t.columns, x.picks);
        return {
          name: x.name,
          catalog: t.catalog,
          database: t.database,
          table: t.table,
          rowFilter,
          predicate: rowFilter === null ? null : stubParsePredicate(rowFilter),
          ...(x.cols === 'include' ? { columns: cols } : x.cols === 'exclude' ? { excludedColumns: cols } : {}),
        };
      }),
    );

  return fc.record({ tagAssignments: tagAssignmentsArb, memberships: membershipsArb, idpMappings: idpArb, filters: filtersArb }).chain((mid) => {
    const resourceArb: fc.Arbitrary<GrantResource> = fc
      .record({ kind: fc.nat(5), t: fc.nat(1), picks: indices(1, 3), f: fc.nat(99), exclude: fc.boolean(), expression: expressionArb })
      .map((x): GrantResource => {
        const t = TABLES[x.t] as (typeof TABLES)[number];
        const where = { catalog: t.catalog, database: t.database, table: t.table };
        switch (x.kind) {
          case 0:
            return { kind: 'catalog', catalog: 'lake' };
          case 1:
            return { kind: 'database', catalog: t.catalog, database: t.database };
          case 2:
            return { kind: 'table', ...where };
          case 3:
            return x.exclude ? { kind: 'columns', ...where, excludedColumns: subset(t.columns, x.picks) } : { kind: 'columns', ...where, columns: subset(t.columns, x.picks) };
          case 4: {
            if (mid.filters.length === 0) return { kind: 'table', ...where };
            const f = pick(mid.filters, x.f);
            return { kind: 'filter', catalog: f.catalog, database: f.database, table: f.table, filter: f.name };
          }
          default:
            return { kind: 'tag', catalog: 'lake', expression: x.expression };
        }
      });
    const grantArb: fc.Arbitrary<Grant> = fc
      .record({
        id: opt(fc.constantFrom('read-claims', 'g.1', 'x-y_z', '0')),
        p: fc.nat(99),
        resource: resourceArb,
        perms: indices(1, 4),
        grantable: indices(0, 3),
        notAfter: opt(fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString())),
        description: opt(freeText),
      })
      .map((g) => {
        const principal = pick(principals, g.p);
        const permissions = subset(GRANTABLE_ON[g.resource.kind], g.perms) as Permission[];
        return {
          id: g.id ?? derivedGrantId(principal, g.resource),
          principal,
          resource: g.resource,
          permissions,
          grantable: subset(permissions, g.grantable),
          ...(g.notAfter === undefined ? {} : { notAfter: g.notAfter }),
          ...(g.description === undefined ? {} : { description: g.description }),
        };
      });
    const guardrailArb: fc.Arbitrary<Guardrail> = fc
      .record({
        name: fc.constantFrom('no-pii', 'finance.only', 'g1'),
        description: opt(freeText),
        principals: opt(indices(0, 3)),
        except: opt(indices(0, 3)),
        actions: indices(1, 3),
        catalog: opt(fc.constant('lake')),
        resources: expressionArb,
      })
      .map((g) => ({
        name: g.name,
        ...(g.description === undefined ? {} : { description: g.description }),
        ...(g.principals === undefined ? {} : { principals: subset(principals, g.principals) }),
        ...(g.except === undefined ? {} : { except: subset(principals, g.except) }),
        actions: subset(PERMISSIONS, g.actions),
        ...(g.catalog === undefined ? {} : { catalog: g.catalog }),
        resources: g.resources,
      }));
    return fc.record({
      grants: fc.uniqueArray(grantArb, { selector: (g) => g.id, maxLength: 6 }),
      guardrails: fc.uniqueArray(guardrailArb, { selector: (g) => g.name, maxLength: 2 }),
    }).map((last): ManagedWorld => ({ tagKeys, users, groups, ...mid, ...last }));
  });
});

test('property: export, re-load and plan against the same world gives no changes', () => {
  fc.assert(
    fc.property(worldArb, (world) => {
      const { text, reloaded, changes } = roundTrip(world);
      assert.equal(changes, 0, text);
      // Canonical: exporting what was loaded gives the same bytes.
      assert.equal(exportPolicy(reloaded), text);
    }),
    { numRuns: 300 },
  );
});

test('property: export ignores the order of entities and lists in the world', () => {
  const reverse = (w: ManagedWorld): ManagedWorld => {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(w)) out[k] = [...(v as unknown[])].reverse();
    return out as unknown as ManagedWorld;
  };
  fc.assert(
    fc.property(worldArb, (world) => {
      assert.equal(exportPolicy(reverse(world)), exportPolicy(world));
    }),
    { numRuns: 100 },
  );
});

// Keeps the world type honest: a full PolicyWorld exports its managed part only.
test('a full world exports without its catalog', () => {
  const full: PolicyWorld = { ...DEMO_CATALOG };
  const text = exportPolicy(full);
  assert.doesNotMatch(text, /patient_claims/);
});
