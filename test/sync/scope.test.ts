/**
 * The affected scope of a policy change compares only the entities whose
 * objects differ (worlds built by applyChanges share the rest), and finds the
 * tables a tag grant reaches through the sync's tag index. Both must give the
 * same answers as the plain definitions, on random worlds and changes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges, diffWorlds } from '../../src/policy/changes.js';
import type { PolicyWorld, Table, TagAssignment, TagExpression } from '../../src/policy/model.js';
import { matchesTagExpression } from '../../src/policy/tag-expression.js';
import { effectiveTags, tagValues } from '../../src/policy/tags.js';
import { affectedScope, type Scope } from '../../src/sync/scope.js';
import { tablesMatchingTags } from '../../src/sync/desired-state.js';
import { createRng, randomWorld } from '../support/random-world.js';

const norm = (s: Scope): unknown => (s.kind === 'full' ? 'full' : [...s.tables].sort());

test('scope from shared entities equals scope from a full comparison, on 200 random changes', () => {
  for (let seed = 1; seed <= 200; seed++) {
    const rng = createRng(seed);
    const before = randomWorld(seed);
    const other = randomWorld(seed + 10_000);
    const candidates = diffWorlds(before, other, ['tagAssignment', 'grant', 'filter', 'table']);
    const picked = candidates.filter(() => rng.chance(0.2)).slice(0, 4);
    const after = applyChanges(before, picked);
    for (const c of before.catalogs) {
      const fast = affectedScope(before, after, c.name);
      // structuredClone shares nothing: every entity is compared
      const slow = affectedScope(structuredClone(before), structuredClone(after), c.name);
      assert.deepEqual(norm(fast), norm(slow), `seed ${seed}, catalog ${c.name}`);
    }
  }
});

/** The definition: effective tags of the table, or of one of its columns, match. */
function reference(world: PolicyWorld, catalog: string, expr: TagExpression): string[] {
  return world.tables
    .filter((t) => {
      if (t.catalog !== catalog) return false;
      const ref = { level: 'table', catalog, database: t.database, table: t.name } as const;
      return (
        matchesTagExpression(expr, tagValues(effectiveTags(world, ref))) ||
        t.columns.some((col) => matchesTagExpression(expr, tagValues(effectiveTags(world, { ...ref, level: 'column', column: col.name }))))
      );
    })
    .map((t) => `${t.database}.${t.name}`)
    .sort();
}

/**
 * Random worlds hold few tables, which the sync tests one by one; copies of every table (own tags
 * copied, some copies given a random tag of their own) push a catalog past that, through the index.
 */
function inflate(world: PolicyWorld, seed: number): PolicyWorld {
  const rng = createRng(seed);
  const tables: Table[] = [...world.tables];
  const tags: TagAssignment[] = [...world.tagAssignments];
  for (const t of world.tables) {
    for (let i = 0; i < 14; i++) {
      const name = `${t.name}_x${i}`;
      tables.push({ ...t, name });
      for (const a of world.tagAssignments) {
        const r = a.resource;
        if (r.level !== 'database' && r.catalog === t.catalog && r.database === t.database && r.table === t.name) tags.push({ ...a, resource: { ...r, table: name } });
      }
      const k = rng.pick(world.tagKeys);
      if (rng.chance(0.3) && k.values.length > 0 && !tags.some((a) => a.resource.level === 'table' && a.resource.table === name && a.key === k.key)) {
        tags.push({ resource: { level: 'table', catalog: t.catalog, database: t.database, table: name }, key: k.key, value: rng.pick(k.values) });
      }
    }
  }
  return { ...world, tables, tagAssignments: tags };
}

test('tables a tag expression reaches, from the tag index, equal the definition on 300 random worlds (half of them inflated past the one-by-one size)', () => {
  let hits = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rng = createRng(seed);
    const world = seed % 2 === 0 ? inflate(randomWorld(seed), seed) : randomWorld(seed);
    for (const c of world.catalogs) {
      const keys = rng.subset(world.tagKeys, 0.5);
      const expr: Record<string, string[]> = {};
      for (const k of keys) expr[k.key] = rng.subset([...k.values], 0.5);
      const want = reference(world, c.name, expr);
      assert.deepEqual([...tablesMatchingTags(world, c.name, expr)].sort(), want, `seed ${seed}, ${JSON.stringify(expr)}`);
      hits += want.length;
    }
  }
  assert.ok(hits > 100, `only ${hits} matches: the worlds do not exercise tags`);
});
