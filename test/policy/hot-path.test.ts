/**
 * The structures that make cold decisions fast (issue #10 item 15) must not
 * change an answer: the one hash table over every table, and the tag
 * programs principal sets share. And the benchmark's requests must be built
 * like real callers' ones.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { createEngine, createEngineWith } from '../../src/policy/engine.js';
import { buildCatalogIndex, findTable } from '../../src/policy/engine/catalog-index.js';
import type { Grant, PolicyWorld, PrincipalRef, ResourceRef, Table } from '../../src/policy/model.js';
import { EMPTY_WORLD } from '../../src/policy/model.js';
import { createReferenceEvaluator } from '../../src/policy/reference-evaluator.js';
import { NOW, normalizeDecision } from '../support/random-world.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const RUNS = Math.min(300, Number(process.env.STEWARD_PROPERTY_RUNS ?? 300));

const columns = [
  { name: 'id', type: 'BIGINT', ordinal: 0 },
  { name: 'ssn', type: 'VARCHAR', ordinal: 1 },
];
const table = (database: string, name: string): Table => ({ catalog: 'lake', database, name, columns, source: { kind: 'virtual' } });
const tref = (database: string, name: string): ResourceRef => ({ level: 'table', catalog: 'lake', database, table: name });

/**
 * `members_1pf8` and `members_irj6` have the same 32-bit hash in the first
 * database (found by search; catalog-index.ts hashes with FNV-1a seeded by
 * the database id), so they probe the same slots.
 */
const GRANTED = 'members_1pf8';
const COLLIDING = 'members_irj6';

function collisionWorld(tables: Table[]): PolicyWorld {
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: [
      { catalog: 'lake', name: 'claims' },
      { catalog: 'lake', name: 'hr' },
    ],
    tables,
    users: [{ name: 'mallory' }],
    grants: [{ id: 'g-1', principal: 'user:mallory', resource: { kind: 'table', catalog: 'lake', database: 'claims', table: GRANTED }, permissions: ['SELECT'], grantable: [] }],
  };
}

test('a table name crafted to collide with a granted table in the name hash is not resolved to that table', () => {
  // threat: a lookup that trusts the hash would answer a request on one table with another table's grants
  const world = collisionWorld([table('claims', GRANTED)]);
  const engine = createEngineWith(world, { memo: false });
  const req = { principal: 'user:mallory', action: 'SELECT', resource: tref('claims', COLLIDING), now: NOW } as const;
  const got = engine.authorize(req);
  assert.equal(got.decision, 'deny');
  assert.equal(got.reasons[0]?.code, 'UNKNOWN_RESOURCE');
  assert.equal(engine.authorize({ ...req, resource: tref('claims', GRANTED) }).decision, 'allow');
});

test('two colliding table names in one database each resolve to their own table, whichever was catalogued first', () => {
  // threat: the second of two colliding tables inherits the first one's grants, or becomes unreachable
  for (const order of [
    [GRANTED, COLLIDING],
    [COLLIDING, GRANTED],
  ]) {
    const world = collisionWorld(order.map((n) => table('claims', n)));
    const engine = createEngineWith(world, { memo: false });
    const reference = createReferenceEvaluator(world);
    for (const name of order) {
      const req = { principal: 'user:mallory', action: 'SELECT', resource: tref('claims', name), now: NOW } as const;
      assert.deepStrictEqual(normalizeDecision(engine.authorize(req)), normalizeDecision(reference.authorize(req)), name);
    }
    assert.equal(engine.authorize({ principal: 'user:mallory', action: 'SELECT', resource: tref('claims', COLLIDING), now: NOW }).decision, 'deny');
  }
});

test('the table lookup finds exactly the catalogued tables, by database and name, for any names', () => {
  // threat: a hand-written hash table that loses a table (a false deny) or finds one in the wrong database (a false allow)
  const names = fc.oneof(fc.string({ maxLength: 6 }), fc.constantFrom(GRANTED, COLLIDING, 't', 'T', '\u00e9', 'e\u0301', '\ud83d\ude00'));
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom('claims', 'hr'), names), { maxLength: 60 }), fc.array(fc.tuple(fc.constantFrom('claims', 'hr', 'nope'), names), { maxLength: 30 }), (catalogued, asked) => {
      const world = collisionWorld(catalogued.map(([db, n]) => table(db, n)));
      const ix = buildCatalogIndex(world);
      // the plain answer: the first table of that database and name, in world order
      const expected = (db: string, name: string): number => {
        const seen = new Set<string>();
        let id = 0;
        for (const t of world.tables) {
          const key = JSON.stringify([t.database, t.name]);
          if (seen.has(key)) continue;
          seen.add(key);
          if (t.database === db && t.name === name) return id;
          id++;
        }
        return -1;
      };
      for (const [db, name] of [...catalogued, ...asked]) assert.equal(findTable(ix, 'lake', db, name), expected(db, name), JSON.stringify([db, name]));
    }),
    { numRuns: RUNS },
  );
});

/** Bob holds a tag grant on secret tables, Alice and Carol (through a group) one on public ones: as many grants, different programs. */
function tagWorld(): PolicyWorld {
  const tagGrant = (id: string, principal: PrincipalRef, value: string): Grant => ({
    id,
    principal,
    resource: { kind: 'tag', catalog: 'lake', expression: { level: [value] } },
    permissions: ['SELECT'],
    grantable: [],
  });
  const tag = (name: string, value: string) => ({ resource: { level: 'table', catalog: 'lake', database: 'claims', table: name } as const, key: 'level', value });
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: [{ catalog: 'lake', name: 'claims' }],
    tables: [table('claims', 'public'), table('claims', 'secret')],
    users: [{ name: 'alice' }, { name: 'bob' }, { name: 'carol' }],
    groups: [{ name: 'analysts' }],
    memberships: [
      { member: 'user:alice', group: 'analysts' },
      { member: 'user:carol', group: 'analysts' },
    ],
    tagKeys: [{ key: 'level', values: ['public', 'secret'] }],
    tagAssignments: [tag('public', 'public'), tag('secret', 'secret')],
    grants: [
      tagGrant('g-public-group', 'group:analysts', 'public'),
      tagGrant('g-secret-bob', 'user:bob', 'secret'),
    ],
  };
}

test('a principal set never decides with the tag program another set built for other grants', () => {
  // threat: programs are shared between principal sets; one keyed too loosely would let Alice use Bob's secret grant
  const world = tagWorld();
  const reference = createReferenceEvaluator(world);
  for (const engine of [createEngine(world), createEngineWith(world, { memo: false })]) {
    const ask = (who: string, name: string) => ({ principal: `user:${who}`, action: 'SELECT', resource: tref('claims', name), now: NOW }) as const;
    // Bob first, so his program exists before anyone else's is built
    for (const req of [ask('bob', 'secret'), ask('bob', 'public'), ask('alice', 'secret'), ask('alice', 'public'), ask('carol', 'secret'), ask('carol', 'public')]) {
      assert.deepStrictEqual(normalizeDecision(engine.authorize(req)), normalizeDecision(reference.authorize(req)), JSON.stringify(req));
    }
    assert.equal(engine.authorize(ask('alice', 'secret')).decision, 'deny');
    assert.equal(engine.authorize(ask('carol', 'secret')).decision, 'deny');
    assert.deepStrictEqual(engine.authorize(ask('carol', 'public')).matchedGrants, ['g-public-group']);
  }
});

test('the benchmark builds column requests with one hidden class, as parseResource does, so its cold figure times no megamorphic reads', () => {
  // threat: a benchmark whose requests each get their own V8 hidden class (what `{ ...tref, level: 'column', column }`
  // did) times megamorphic property reads no real caller causes, and hides or fakes engine changes
  const script = [
    "const { makeRequests } = await import('./bench/policy.bench.ts');",
    "const { generateLargeWorld } = await import('./test/support/random-world.ts');",
    "const { parseResource } = await import('./src/policy/model.ts');",
    'const world = generateLargeWorld({ tables: 200, columnsPerTable: 5, principals: 20, tagGrants: 10, guardrails: 2, seed: 5 });',
    "const cols = makeRequests(world, 2000, 3).filter((r) => r.kind === 'column SELECT').map((r) => r.req.resource);",
    "const parsed = parseResource('lake.db0.t0.c0');",
    'const same = cols.every((r) => %HaveSameMap(r, cols[0])) && %HaveSameMap(cols[0], parsed);',
    'process.stdout.write(JSON.stringify({ n: cols.length, same }));',
  ].join('\n');
  const out = execFileSync(process.execPath, ['--allow-natives-syntax', '--import', 'tsx', '--input-type=module', '-e', script], { cwd: ROOT, encoding: 'utf8' });
  const { n, same } = JSON.parse(out) as { n: number; same: boolean };
  assert.ok(n > 100, `only ${n} column requests drawn`);
  assert.equal(same, true, 'column requests of the benchmark have differing hidden classes');
});
