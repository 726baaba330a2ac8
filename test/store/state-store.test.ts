import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createStateStore, sortWorld } from '../../src/store/state-store.js';
import { createDecisionLog } from '../../src/store/decision-log.js';
import { openPostgres } from '../../src/store/db.js';
import { applyChanges as applyPure, diffWorlds, entityKey, ENTITY_KINDS, WORLD_FIELD } from '../../src/policy/changes.js';
import type { Change, EntityKind, EntityTypes } from '../../src/policy/changes.js';
import { EMPTY_WORLD, PERMISSIONS } from '../../src/policy/model.js';
import type {
  Catalog,
  Column,
  Database,
  DataFilter,
  Grant,
  GrantResource,
  Group,
  Guardrail,
  IdpGroupMapping,
  Membership,
  PolicyWorld,
  PrincipalRef,
  Table,
  TableSource,
  TagExpression,
  TagKey,
  TaggableRef,
  User,
} from '../../src/policy/model.js';
import type { Predicate } from '../../src/policy/predicate.js';
import { StewardError } from '../../src/errors.js';
import { forEachStore } from '../support/stores.js';

// ------------------------------------------------------------ world generator
// Small name pools make collisions (and so references between entities) likely;
// dangling references are pruned afterwards, so every generated world is one
// the core would accept as far as the store's foreign keys can tell.

const NAMES = ['a', 'b', 'sales', 'c_2', '_x'];
const name = fc.constantFrom(...NAMES);
/** Free text: any Unicode but NUL (PostgreSQL text cannot hold it; the API rejects it earlier). */
const text = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('\u0000'));
const principal: fc.Arbitrary<PrincipalRef> = fc.tuple(fc.constantFrom('user', 'group'), name).map(([k, n]) => `${k}:${n}` as PrincipalRef);
const permissions = fc.subarray([...PERMISSIONS]);
const tagValue = fc.constantFrom('public', 'internal', 'pii', 'a:b/c@d+e');
const expression: fc.Arbitrary<TagExpression> = fc.dictionary(name, fc.array(tagValue, { maxLength: 3 }), { maxKeys: 3, noNullPrototype: true });
const notAfter = fc.oneof(
  fc.date({ min: new Date('2000-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString()),
  fc.constantFrom('2026-01-01', '2026-01-01T00:00:00Z', '2026-06-30T12:00:00+02:00', '2030-12-31T23:59:59.123456Z'),
);

const literal = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((n) => !Object.is(n, -0)),
  text,
);
const predicate: fc.Arbitrary<Predicate> = fc.letrec<{ p: Predicate }>((tie) => ({
  p: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    name.map((n): Predicate => ({ k: 'col', name: n })),
    literal.map((value): Predicate => ({ k: 'lit', value })),
    fc.record({ k: fc.constant('cmp' as const), op: fc.constantFrom('=', '<>', '<', '<=', '>', '>=' as const), left: tie('p'), right: tie('p') }),
    fc.record({ k: fc.constantFrom('and' as const, 'or' as const), args: fc.array(tie('p'), { maxLength: 3 }) }),
    fc.record({ k: fc.constant('not' as const), arg: tie('p') }),
    fc.record({ k: fc.constant('in' as const), arg: tie('p'), list: fc.array(tie('p'), { maxLength: 3 }), negated: fc.boolean() }),
    fc.record({ k: fc.constant('isnull' as const), arg: tie('p'), negated: fc.boolean() }),
    fc.record({ k: fc.constant('fn' as const), name: fc.constantFrom('lower', 'coalesce' as const), args: fc.array(tie('p'), { maxLength: 2 }) }),
  ) as fc.Arbitrary<Predicate>,
})).p;

const catalogArb: fc.Arbitrary<Catalog> = fc.record({ name, description: text }, { requiredKeys: ['name'] });
const databaseArb: fc.Arbitrary<Database> = fc.record({ catalog: name, name, description: text }, { requiredKeys: ['catalog', 'name'] });
const columnsOf = fc
  .uniqueArray(fc.tuple(name, fc.constantFrom('VARCHAR', 'DECIMAL(12,2)', 'integer')), { maxLength: 4, selector: ([n]) => n })
  .map((cols): Column[] => cols.map(([n, type], ordinal) => ({ name: n, type, ordinal })));
const sourceArb: fc.Arbitrary<TableSource> = fc.oneof(
  fc.record({ kind: fc.constant('lake' as const), format: fc.constantFrom('parquet', 'csv', 'json' as const), location: text, hivePartitioning: fc.boolean() }),
  fc.record({ kind: fc.constant('postgres' as const), schema: name, table: name, connection: name }),
  fc.constant({ kind: 'virtual' as const }),
);
const tableArb: fc.Arbitrary<Table> = fc.record({ catalog: name, database: name, name, columns: columnsOf, source: sourceArb });
const userArb: fc.Arbitrary<User> = fc.record({ name, displayName: text }, { requiredKeys: ['name'] });
const groupArb: fc.Arbitrary<Group> = fc.record({ name, description: text }, { requiredKeys: ['name'] });
const membershipArb: fc.Arbitrary<Membership> = fc.record({ group: name, member: principal });
const idpArb: fc.Arbitrary<IdpGroupMapping> = fc.record({ provider: fc.constantFrom('okta', 'entra'), externalGroup: text, group: name });
const tagKeyArb: fc.Arbitrary<TagKey> = fc.record({ key: name, values: fc.uniqueArray(tagValue, { maxLength: 4 }), description: text }, { requiredKeys: ['key', 'values'] });
const filterArb: fc.Arbitrary<DataFilter> = fc
  .record(
    {
      name: fc.constantFrom('east', 'west-1', 'v1.2'),
      catalog: name,
      database: name,
      table: name,
      rowFilter: fc.option(text, { nil: null }),
      predicate: fc.option(predicate, { nil: null }),
      cols: fc.option(fc.tuple(fc.boolean(), fc.uniqueArray(name, { maxLength: 3 })), { nil: undefined }),
    },
    { requiredKeys: ['name', 'catalog', 'database', 'table', 'rowFilter', 'predicate'] },
  )
  .map(({ cols, ...f }) => (cols === undefined ? f : cols[0] ? { ...f, columns: cols[1] } : { ...f, excludedColumns: cols[1] }));
const grantResourceArb: fc.Arbitrary<GrantResource> = fc.oneof(
  fc.record({ kind: fc.constant('catalog' as const), catalog: name }),
  fc.record({ kind: fc.constant('database' as const), catalog: name, database: name }),
  fc.record({ kind: fc.constant('table' as const), catalog: name, database: name, table: name }),
  fc.record({ kind: fc.constant('columns' as const), catalog: name, database: name, table: name, columns: fc.array(name, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('columns' as const), catalog: name, database: name, table: name, excludedColumns: fc.array(name, { maxLength: 3 }) }),
  fc.record({ kind: fc.constant('filter' as const), catalog: name, database: name, table: name, filter: name }),
  fc.record({ kind: fc.constant('tag' as const), catalog: name, expression }),
);
const grantArb: fc.Arbitrary<Grant> = fc.record(
  {
    id: fc.oneof(fc.uuid(), fc.constantFrom('g1', 'g2', 'grant with spaces', 'ünïcödé')),
    principal,
    resource: grantResourceArb,
    permissions,
    grantable: permissions,
    notAfter,
    description: text,
  },
  { requiredKeys: ['id', 'principal', 'resource', 'permissions', 'grantable'] },
);
const guardrailArb: fc.Arbitrary<Guardrail> = fc.record(
  {
    name: fc.constantFrom('no-pii', 'r.1', 'x'),
    description: text,
    principals: fc.array(principal, { maxLength: 2 }),
    except: fc.array(principal, { maxLength: 2 }),
    actions: permissions,
    catalog: name,
    resources: expression,
  },
  { requiredKeys: ['name', 'actions', 'resources'] },
);

function dedupe<K extends EntityKind>(kind: K, items: readonly EntityTypes[K][]): EntityTypes[K][] {
  const seen = new Set<string>();
  return items.filter((e) => {
    const key = entityKey(kind, e);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/** Entities that reference others are drawn from what exists, so deep worlds (tables, filters, assignments) are common. */
const arrayOver = <T, U>(parents: readonly T[], child: (parent: T) => fc.Arbitrary<U>, maxLength: number): fc.Arbitrary<U[]> =>
  parents.length === 0 ? fc.constant([]) : fc.array(fc.constantFrom(...parents).chain(child), { maxLength });

// fast-check builds records with a null prototype; a world from JSON, the API or a policy file has Object's.
const plain = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;

const worldArb: fc.Arbitrary<PolicyWorld> = fc
  .record({
    catalogs: fc.array(catalogArb, { maxLength: 3 }),
    users: fc.array(userArb, { maxLength: 4 }),
    groups: fc.array(groupArb, { maxLength: 4 }),
    tagKeys: fc.array(tagKeyArb, { maxLength: 3 }),
    grants: fc.array(grantArb, { maxLength: 6 }),
    guardrails: fc.array(guardrailArb, { maxLength: 3 }),
  })
  .map((raw) => {
    const b = plain(raw);
    return {
      catalogs: dedupe('catalog', b.catalogs),
      users: dedupe('user', b.users),
      groups: dedupe('group', b.groups),
      tagKeys: dedupe('tagKey', b.tagKeys),
      grants: dedupe('grant', b.grants),
      guardrails: dedupe('guardrail', b.guardrails),
    };
  })
  .chain((base) =>
    fc
      .record({
        databases: arrayOver(base.catalogs, (c) => databaseArb.map((d) => ({ ...d, catalog: c.name })), 5),
        memberships: arrayOver(base.groups, (g) => membershipArb.map((m) => ({ ...m, group: g.name })), 6),
        idpMappings: arrayOver(base.groups, (g) => idpArb.map((m) => ({ ...m, group: g.name })), 3),
      })
      .map((r) => {
        const p = plain(r);
        return { ...base, databases: dedupe('database', p.databases), memberships: dedupe('membership', p.memberships), idpMappings: dedupe('idpMapping', p.idpMappings) };
      }),
  )
  .chain((w) =>
    arrayOver(w.databases, (d) => tableArb.map((t) => ({ ...t, catalog: d.catalog, database: d.name })), 6).map((tables) => ({
      ...w,
      tables: dedupe('table', plain(tables)),
    })),
  )
  .chain((w) => {
    const resources: TaggableRef[] = [
      ...w.databases.map((d): TaggableRef => ({ level: 'database', catalog: d.catalog, database: d.name })),
      ...w.tables.map((t): TaggableRef => ({ level: 'table', catalog: t.catalog, database: t.database, table: t.name })),
      ...w.tables.flatMap((t) => t.columns.map((c): TaggableRef => ({ level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: c.name }))),
    ];
    const keys = w.tagKeys.map((k) => k.key);
    return fc
      .record({
        filters: arrayOver(w.tables, (t) => filterArb.map((f) => ({ ...f, catalog: t.catalog, database: t.database, table: t.name })), 5),
        tagAssignments: keys.length === 0 ? fc.constant([]) : arrayOver(resources, (resource) => fc.record({ resource: fc.constant(resource), key: fc.constantFrom(...keys), value: tagValue }), 8),
      })
      .map((r): PolicyWorld => {
        const p = plain(r);
        return { ...w, filters: dedupe('filter', p.filters), tagAssignments: dedupe('tagAssignment', p.tagAssignments) };
      });
  });

const RUNS = Number(process.env.STEWARD_PROPERTY_RUNS ?? 40);

if (process.env.STEWARD_PROPERTY_STATS === '1') {
  fc.statistics(worldArb, (w) => `${w.tables.length > 0 ? 'tables' : 'no tables'}, ${w.filters.length > 0 ? 'filters' : 'no filters'}, ${w.tagAssignments.length > 0 ? 'assignments' : 'no assignments'}`, 500);
}

// ---------------------------------------------------------------------- tests

forEachStore('round trip: writing any world then loading it gives the same world', async ({ db }) => {
  const store = createStateStore(db);
  await fc.assert(
    fc.asyncProperty(worldArb, worldArb, async (w1, w2) => {
      const { world: before, version: v0 } = await store.loadWorld();
      const reset = diffWorlds(before, EMPTY_WORLD);
      const v1 = await store.applyChanges(reset);
      assert.deepStrictEqual((await store.loadWorld()).world, EMPTY_WORLD);

      const v2 = await store.applyChanges(diffWorlds(EMPTY_WORLD, w1), { expectedVersion: v1 });
      const loaded1 = await store.loadWorld();
      assert.deepStrictEqual(loaded1.world, sortWorld(w1));
      assert.equal(loaded1.version, v2);

      // Updates and deletes too: moving from one world to another.
      const diff = diffWorlds(w1, w2);
      const v3 = await store.applyChanges(diff, { expectedVersion: v2 });
      assert.deepStrictEqual((await store.loadWorld()).world, sortWorld(w2));
      assert.equal(v1, reset.length === 0 ? v0 : v0 + 1);
      assert.equal(v3, diff.length === 0 ? v2 : v2 + 1);
    }),
    { numRuns: RUNS },
  );
});

forEachStore('one change can re-point a reference and delete what it pointed at', async ({ db }) => {
  // Found by the round-trip property on PostgreSQL: an IdP mapping moved from
  // group `a` to group `sales` in the same change that deletes `a`.
  const store = createStateStore(db);
  const before: PolicyWorld = { ...EMPTY_WORLD, groups: [{ name: 'a' }], idpMappings: [{ provider: 'entra', externalGroup: 'Analysts', group: 'a' }] };
  const after: PolicyWorld = { ...EMPTY_WORLD, groups: [{ name: 'sales' }], idpMappings: [{ provider: 'entra', externalGroup: 'Analysts', group: 'sales' }] };
  const v1 = await store.applyChanges(diffWorlds(EMPTY_WORLD, before));
  // The store must not depend on the order the caller lists changes in.
  const changes = diffWorlds(before, after);
  for (const order of [changes, [...changes].reverse()]) {
    await store.applyChanges(diffWorlds((await store.loadWorld()).world, before));
    await store.applyChanges(order);
    assert.deepStrictEqual((await store.loadWorld()).world, sortWorld(after));
  }
  assert.ok(v1 > 0);
});

forEachStore('optional fields come back absent, not null', async ({ db }) => {
  const store = createStateStore(db);
  const world: PolicyWorld = {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'c' }],
    databases: [{ catalog: 'c', name: 'd' }],
    tables: [{ catalog: 'c', database: 'd', name: 't', columns: [{ name: 'x', type: 'integer', ordinal: 0 }], source: { kind: 'virtual' } }],
    filters: [{ name: 'f', catalog: 'c', database: 'd', table: 't', rowFilter: null, predicate: null }],
    grants: [{ id: 'g', principal: 'user:u', resource: { kind: 'catalog', catalog: 'c' }, permissions: ['SELECT'], grantable: [] }],
    guardrails: [{ name: 'r', actions: ['SELECT'], resources: {} }],
    users: [{ name: 'u' }],
  };
  await store.applyChanges(diffWorlds(EMPTY_WORLD, world));
  const { world: loaded } = await store.loadWorld();
  assert.deepStrictEqual(loaded, world);
  for (const kind of ENTITY_KINDS) {
    for (const e of loaded[WORLD_FIELD[kind]] as readonly object[]) {
      for (const [k, v] of Object.entries(e)) {
        if (v === null) assert.ok(kind === 'filter' && (k === 'rowFilter' || k === 'predicate'), `${kind}.${k} is null`);
      }
    }
  }
});

forEachStore('a failing change in the middle leaves nothing written and the version unchanged', async ({ db }) => {
  const store = createStateStore(db);
  const log = createDecisionLog(db);
  await store.applyChanges([{ op: 'put', kind: 'catalog', entity: { name: 'keep' } }]);
  const before = await store.loadWorld();

  const danglingDatabase: Change[] = [
    { op: 'put', kind: 'catalog', entity: { name: 'c1' } },
    { op: 'put', kind: 'user', entity: { name: 'u1' } },
    { op: 'put', kind: 'database', entity: { catalog: 'missing', name: 'd' } },
    { op: 'put', kind: 'grant', entity: { id: 'g1', principal: 'user:u1', resource: { kind: 'catalog', catalog: 'c1' }, permissions: ['SELECT'], grantable: [] } },
    { op: 'delete', kind: 'catalog', key: 'keep' },
  ];
  await assert.rejects(
    store.applyChanges(danglingDatabase, { log: [{ actor: 'user:admin', action: 'policy.apply', resource: '*', result: 'ok', reason: 'test' }] }),
    (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_IN_USE',
  );
  assert.deepStrictEqual(await store.loadWorld(), before);
  assert.equal((await log.listDecisions()).length, 0, 'the log entry rolled back with the change');

  // A failure raised by our own code half-way (after some statements ran) rolls back too.
  const badInstant: Change[] = [
    { op: 'put', kind: 'catalog', entity: { name: 'c2' } },
    { op: 'put', kind: 'grant', entity: { id: 'g2', principal: 'user:u', resource: { kind: 'catalog', catalog: 'c2' }, permissions: [], grantable: [], notAfter: 'tomorrow' } },
  ];
  await assert.rejects(store.applyChanges(badInstant), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_VALIDATION');
  assert.deepStrictEqual(await store.loadWorld(), before);
});

forEachStore('deleting a parent that still has children is refused (second line of defense)', async ({ db }) => {
  const store = createStateStore(db);
  await store.applyChanges([
    { op: 'put', kind: 'catalog', entity: { name: 'c' } },
    { op: 'put', kind: 'database', entity: { catalog: 'c', name: 'd' } },
    { op: 'put', kind: 'group', entity: { name: 'g' } },
    { op: 'put', kind: 'membership', entity: { group: 'g', member: 'user:u' } },
  ]);
  const before = await store.loadWorld();
  await assert.rejects(store.applyChanges([{ op: 'delete', kind: 'catalog', key: 'c' }]), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_IN_USE');
  await assert.rejects(store.applyChanges([{ op: 'delete', kind: 'group', key: 'g' }]), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_IN_USE');
  assert.deepStrictEqual(await store.loadWorld(), before);
  // Children and parent in one list, in any order: the store orders them.
  await store.applyChanges([
    { op: 'delete', kind: 'catalog', key: 'c' },
    { op: 'delete', kind: 'database', key: 'c.d' },
  ]);
  assert.deepStrictEqual((await store.loadWorld()).world.catalogs, []);
});

forEachStore('repeated keys in one list: the last operation wins, as in the pure applyChanges', async ({ db }) => {
  const store = createStateStore(db);
  const changes: Change[] = [
    { op: 'put', kind: 'user', entity: { name: 'a', displayName: 'first' } },
    { op: 'delete', kind: 'user', key: 'a' },
    { op: 'put', kind: 'user', entity: { name: 'b' } },
    { op: 'delete', kind: 'user', key: 'b' },
    { op: 'put', kind: 'user', entity: { name: 'b', displayName: 'again' } },
    { op: 'put', kind: 'user', entity: { name: 'c', displayName: 'one' } },
    { op: 'put', kind: 'user', entity: { name: 'c', displayName: 'two' } },
    { op: 'delete', kind: 'user', key: 'never-existed' },
  ];
  await store.applyChanges(changes);
  assert.deepStrictEqual((await store.loadWorld()).world, sortWorld(applyPure(EMPTY_WORLD, changes)));
});

forEachStore('optimistic concurrency: a stale expectedVersion is a conflict', async ({ db, url }) => {
  const a = createStateStore(db);
  const other = url === undefined ? db : await openPostgres(url);
  const b = createStateStore(other);
  try {
    const v = await a.version();
    const v1 = await a.applyChanges([{ op: 'put', kind: 'user', entity: { name: 'alice' } }], { expectedVersion: v });
    assert.equal(v1, v + 1);
    assert.equal(await b.version(), v1, 'the second store sees the first one\'s commit');
    await assert.rejects(
      b.applyChanges([{ op: 'put', kind: 'user', entity: { name: 'bob' } }], { expectedVersion: v }),
      (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_CONFLICT' && e.message === 'the policy changed while this change was prepared; retry',
    );
    assert.deepStrictEqual((await a.loadWorld()).world.users, [{ name: 'alice' }]);

    // Racing writers that read the same version: exactly one wins.
    const results = await Promise.allSettled([
      a.applyChanges([{ op: 'put', kind: 'user', entity: { name: 'carol' } }], { expectedVersion: v1 }),
      b.applyChanges([{ op: 'put', kind: 'user', entity: { name: 'dave' } }], { expectedVersion: v1 }),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    const lost = results.find((r) => r.status === 'rejected');
    assert.ok(lost !== undefined && lost.status === 'rejected' && lost.reason instanceof StewardError && lost.reason.code === 'STEWARD_E_CONFLICT');
    assert.equal(await a.version(), v1 + 1);
  } finally {
    if (other !== db) await other.close();
  }
});

forEachStore('log entries are written with the change, in the same transaction', async ({ db }) => {
  const store = createStateStore(db);
  const v = await store.applyChanges([{ op: 'put', kind: 'group', entity: { name: 'analysts' } }], {
    log: [
      { actor: 'user:admin', action: 'group.create', resource: 'group:analysts', result: 'ok', reason: 'created' },
      { actor: 'user:admin', action: 'policy.apply', resource: '*', result: 'ok', reason: '1 change', details: { changes: 1 } },
    ],
  });
  assert.equal(v, 1);
  const entries = await createDecisionLog(db).listDecisions();
  assert.deepEqual(
    entries.map((e) => [e.action, e.details]),
    [
      ['policy.apply', { changes: 1 }],
      ['group.create', undefined],
    ],
  );
  // An empty change list leaves the version alone.
  assert.equal(await store.applyChanges([]), 1);
});
