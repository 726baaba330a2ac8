/**
 * The emitted Trino rules, evaluated with Trino's first-match semantics, give
 * every user exactly the warehouse projection of Steward's own decision — on
 * random worlds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/policy/engine.js';
import { membershipGraph, principalSet } from '../../src/policy/principals.js';
import { toSql } from '../../src/policy/predicate.js';
import { projectionFor, trinoRules, type TrinoRules, type TrinoTableRule } from '../../src/sync/trino-rules.js';
import { NOW, randomWorld } from '../support/random-world.js';

interface Access {
  readonly privileges: readonly string[];
  readonly columns: readonly string[];
  readonly filter: string | null;
}

/** Trino's file-based table rules: the first rule whose patterns all match decides; no match denies. */
function evaluate(rules: TrinoRules, user: string, groups: ReadonlySet<string>, catalog: string, schema: string, table: string, allColumns: readonly string[]): Access {
  const full = (pattern: string | undefined, value: string): boolean => pattern === undefined || new RegExp(`^(?:${pattern})$`).test(value);
  const hit: TrinoTableRule | undefined = rules.tables.find(
    (r) =>
      full(r.user, user) &&
      (r.group === undefined || [...groups].some((g) => full(r.group, g))) &&
      full(r.catalog, catalog) &&
      full(r.schema, schema) &&
      full(r.table, table),
  );
  if (hit === undefined || !hit.privileges.includes('SELECT')) return { privileges: hit?.privileges ?? [], columns: [], filter: null };
  const denied = new Set((hit.columns ?? []).filter((c) => !c.allow).map((c) => c.name));
  return { privileges: hit.privileges, columns: allColumns.filter((c) => !denied.has(c)), filter: hit.filter ?? null };
}

test('Trino rules agree with Steward decisions on 150 random worlds (first-match evaluation)', () => {
  let checked = 0;
  let withFilter = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const world = randomWorld(seed);
    const engine = createEngine(world);
    const graph = membershipGraph(world);
    for (const cat of world.catalogs) {
      const rules = trinoRules(world, engine, { catalog: cat.name, now: NOW });
      for (const t of world.tables.filter((x) => x.catalog === cat.name)) {
        for (const u of world.users) {
          const groups = new Set([...principalSet(graph, `user:${u.name}`)].filter((p) => p.startsWith('group:')).map((p) => p.slice(6)));
          const got = evaluate(rules, u.name, groups, cat.name, t.database, t.name, t.columns.map((c) => c.name));
          const want = projectionFor(engine, `user:${u.name}`, t, NOW);
          const wantPrivs = [...(want.columns.length > 0 ? ['SELECT'] : []), ...(want.insert ? ['INSERT'] : []), ...(want.delete ? ['DELETE'] : [])];
          const where = `seed ${seed}, user ${u.name}, table ${cat.name}.${t.database}.${t.name}`;
          assert.deepEqual([...got.privileges].sort(), wantPrivs.sort(), where);
          assert.deepEqual(got.columns, want.columns, where);
          assert.equal(got.filter, want.columns.length > 0 && want.rowFilter !== null ? toSql(want.rowFilter, 'trino') : null, where);
          if (got.filter !== null) withFilter++;
          checked++;
        }
      }
    }
  }
  assert.ok(checked > 1000, `only ${checked} (user, table) pairs checked`);
  assert.ok(withFilter > 10, `only ${withFilter} row-filtered answers: the worlds do not exercise filters`);
});

test('demo-like world: rules are ordered users first, then groups, then a catch-all deny', () => {
  const world = randomWorld(7);
  const rules = trinoRules(world, createEngine(world), { catalog: world.catalogs[0]!.name, now: NOW });
  const last = rules.tables.at(-1)!;
  assert.deepEqual(last.privileges, []);
  assert.equal(last.table, '.*');
});

test('a name with regex metacharacters cannot widen a rule', () => {
  // threat: a principal named `a.b` would match `axb` if the dot were not escaped
  const world = randomWorld(3);
  const rules = trinoRules({ ...world, users: [...world.users, { name: 'a.b' }] }, createEngine(world), { catalog: world.catalogs[0]!.name, now: NOW });
  for (const r of rules.tables) if (r.user !== undefined) assert.ok(!/(^|[^\\])\./.test(r.user), r.user);
});
