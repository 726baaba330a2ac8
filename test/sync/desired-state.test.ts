/**
 * The desired state asks the engine once per decision class of tables (same
 * database, columns and own tags, not named by a grant or filter) instead of
 * once per table. On random worlds, with every table cloned so that classes
 * have several members (and some clones given a tag of their own so they must
 * not share a class), every group role holds exactly the projection of the
 * engine's own per-table decision.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/policy/engine.js';
import type { PolicyWorld, Table, TagAssignment } from '../../src/policy/model.js';
import { desiredState } from '../../src/sync/desired-state.js';
import { hasAccess } from '../../src/sync/projection.js';
import { projectionFor } from '../../src/sync/trino-rules.js';
import { groupRole } from '../../src/sync/names.js';
import type { Item, TargetSpec } from '../../src/sync/sync-types.js';
import { createRng, NOW, randomWorld } from '../support/random-world.js';

/** Each table gets clones in its database: one with the same own tags, one with an extra tag of its own. */
function withClones(world: PolicyWorld, seed: number): PolicyWorld {
  const rng = createRng(seed);
  const tables: Table[] = [...world.tables];
  const tags: TagAssignment[] = [...world.tagAssignments];
  const key = world.tagKeys[0];
  for (const t of world.tables) {
    for (const suffix of ['_c1', '_c2']) {
      const name = `${t.name}${suffix}`;
      tables.push({ ...t, name });
      for (const a of world.tagAssignments) {
        const r = a.resource;
        if (r.level !== 'database' && r.catalog === t.catalog && r.database === t.database && r.table === t.name) tags.push({ ...a, resource: { ...r, table: name } });
      }
    }
    if (key !== undefined && key.values.length > 0 && rng.chance(0.7)) {
      tags.push({ resource: { level: 'table', catalog: t.catalog, database: t.database, table: `${t.name}_c2` }, key: key.key, value: rng.pick(key.values) });
    }
  }
  return { ...world, tables, tagAssignments: tags };
}

const target = (catalog: string): TargetSpec => ({ name: 't', catalog, rolePrefix: 'p_', userRoleTemplate: '{user}', userRoles: {}, schemaMap: {}, tableMap: {}, drift: 'revoke' });

test('per-class decisions equal per-table decisions on 120 random worlds with cloned tables', () => {
  let checked = 0;
  let granted = 0;
  for (let seed = 1; seed <= 120; seed++) {
    const world = withClones(randomWorld(seed), seed);
    const engine = createEngine(world);
    for (const c of world.catalogs) {
      const d = desiredState({ world, engine, target: target(c.name), now: NOW });
      const byRoleTable = new Map<string, Extract<Item, { k: 'table' | 'columns' }>[]>();
      for (const it of d.items.values()) {
        if (it.k !== 'table' && it.k !== 'columns') continue;
        const k = `${it.role}|${it.schema}|${it.table}`;
        byRoleTable.set(k, [...(byRoleTable.get(k) ?? []), it]);
      }
      for (const g of world.groups) {
        const role = groupRole('p_', g.name);
        for (const t of world.tables.filter((x) => x.catalog === c.name)) {
          const p = projectionFor(engine, `group:${g.name}`, t, NOW);
          const have = byRoleTable.get(`${role}|${t.database}|${t.name}`) ?? [];
          const sel = have.find((i) => i.priv === 'SELECT');
          const cols = sel === undefined ? [] : sel.k === 'table' ? t.columns.map((x) => x.name) : sel.columns;
          const where = `seed ${seed}, ${role} on ${t.database}.${t.name}`;
          assert.deepEqual(cols, [...p.columns], where);
          assert.equal(have.some((i) => i.priv === 'INSERT'), p.insert, where);
          assert.equal(have.some((i) => i.priv === 'DELETE'), p.delete, where);
          checked++;
          if (hasAccess(p)) granted++;
        }
      }
    }
  }
  assert.ok(checked > 2000 && granted > 200, `checked ${checked}, granted ${granted}`);
});

test('a table-scoped run holds exactly the full run’s items of its tables, on 120 random worlds', () => {
  let compared = 0;
  for (let seed = 1; seed <= 120; seed++) {
    const rng = createRng(seed + 500);
    const world = withClones(randomWorld(seed), seed);
    const engine = createEngine(world);
    for (const c of world.catalogs) {
      const t = target(c.name);
      const full = desiredState({ world, engine, target: t, now: NOW });
      const picked = world.tables.filter((x) => x.catalog === c.name && rng.chance(0.2));
      if (picked.length === 0) continue;
      const keys = new Set(picked.map((x) => `${x.database}.${x.name}`));
      const scoped = desiredState({ world, engine, target: t, now: NOW, tables: keys, personalUsers: new Set(full.personal.keys()) });
      if (scoped.needsFull) continue;
      const ofScope = (items: Iterable<Item>): string[] =>
        [...items]
          .filter((it) => it.k !== 'role' && it.k !== 'member' && it.k !== 'usage' && keys.has(`${it.schema}.${it.table}`))
          .map((it) => JSON.stringify({ ...it, pred: undefined }))
          .sort();
      assert.deepEqual(ofScope(scoped.items.values()), ofScope(full.items.values()), `seed ${seed}, catalog ${c.name}, tables ${[...keys].join(', ')}`);
      // USAGE: a scoped run grants only what its tables or DESCRIBE give, so a subset of the full run's
      const fullUsage = new Set([...full.items.keys()].filter((k) => k.startsWith('usage|')));
      for (const k of scoped.items.keys()) if (k.startsWith('usage|')) assert.ok(fullUsage.has(k), `seed ${seed}: ${k} only in the scoped run`);
      compared += keys.size;
    }
  }
  assert.ok(compared > 200, `only ${compared} tables compared`);
});
