/**
 * The embed role in the desired state, on random worlds with random dashboard
 * datasets: it never reads a column a dataset's `runAs` may not read, every
 * table it gets row security on keeps every other role's rows (a SELECT
 * policy for each role that reads there), and a table-scoped run computes the
 * same items for it as a full run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/policy/engine.js';
import type { Table } from '../../src/policy/model.js';
import { desiredState } from '../../src/sync/desired-state.js';
import { projectionFor } from '../../src/sync/trino-rules.js';
import type { EmbedDataset } from '../../src/sync/session-tag-rls.js';
import type { Item, TargetSpec } from '../../src/sync/sync-types.js';
import { createRng, NOW, randomWorld, type Rng } from '../support/random-world.js';

const APP = 'app_embed';
const target = (catalog: string): TargetSpec => ({ name: 't', catalog, rolePrefix: 'p_', userRoleTemplate: '{user}', userRoles: {}, schemaMap: {}, tableMap: {}, drift: 'revoke', embedRole: APP });

function randomEmbeds(rng: Rng, tables: readonly Table[], users: readonly string[]): EmbedDataset[] {
  const out: EmbedDataset[] = [];
  const n = rng.int(1, 4);
  for (let i = 0; i < n; i++) {
    const t = rng.pick(tables);
    const text = t.columns.filter((c) => c.type === 'VARCHAR');
    if (text.length === 0 || users.length === 0) continue;
    const column = rng.pick(text).name;
    out.push({ dashboard: `d${i}`, dataset: 'ds', catalog: t.catalog, database: t.database, table: t.name, runAs: rng.pick(users), rule: { tagRules: [{ tagKey: 'k', column, multiValueDelimiter: ',', matchAllValue: '*' }], configurations: [['k']] } });
  }
  return out;
}

const selectCols = (items: readonly Item[], role: string, t: Table): string[] | null => {
  const it = items.find((x) => (x.k === 'table' || x.k === 'columns') && x.priv === 'SELECT' && x.role === role && x.schema === t.database && x.table === t.name);
  if (it === undefined) return null;
  return it.k === 'table' ? t.columns.map((c) => c.name) : (it as Extract<Item, { k: 'columns' }>).columns.slice();
};

test('the embed role reads no more than its datasets’ runAs, other roles keep a policy wherever row security is on, and scoped runs agree, on 120 random worlds', () => {
  // Threat: the application's role reading columns the dashboard's runAs may not, or row security for it locking other roles out.
  let embedded = 0;
  for (let seed = 1; seed <= 120; seed++) {
    const rng = createRng(seed + 900);
    const world = randomWorld(seed);
    const engine = createEngine(world);
    for (const c of world.catalogs) {
      const tables = world.tables.filter((t) => t.catalog === c.name);
      if (tables.length === 0) continue;
      const embeds = randomEmbeds(rng, tables, world.users.map((u) => u.name));
      const full = desiredState({ world, engine, target: target(c.name), now: NOW, embeds });
      const items = full.list;
      for (const t of tables) {
        const where = `seed ${seed}, ${t.database}.${t.name}`;
        const mine = embeds.filter((e) => e.database === t.database && e.table === t.name);
        const readers = mine.map((e) => projectionFor(engine, `user:${e.runAs}`, t, NOW)).filter((p) => p.columns.length > 0);
        const cols = selectCols(items, APP, t);
        const policies = items.filter((x): x is Extract<Item, { k: 'policy' }> => x.k === 'policy' && x.role === APP && x.schema === t.database && x.table === t.name);
        if (readers.length === 0) {
          assert.equal(cols, null, `${where}: no runAs reads it, the embed role gets nothing`);
          assert.equal(policies.length, 0, where);
          continue;
        }
        const common = t.columns.map((x) => x.name).filter((n) => readers.every((p) => p.columns.includes(n)));
        if (common.length === 0) {
          assert.equal(cols, null, where);
          continue;
        }
        embedded++;
        assert.deepEqual(cols, common, `${where}: the columns every runAs reads`);
        assert.deepEqual(policies.map((p) => p.restrictive === true).sort(), [false, true], `${where}: a permissive and a restrictive policy`);
        assert.equal(policies[0]!.expr, policies[1]!.expr, where);
        assert.ok(items.some((x) => x.k === 'rls' && x.schema === t.database && x.table === t.name), `${where}: row security on`);
      }
      // wherever row security is on, every role that reads the table has a SELECT policy there
      for (const r of items.filter((x): x is Extract<Item, { k: 'rls' }> => x.k === 'rls')) {
        const t = tables.find((x) => x.database === r.schema && x.name === r.table) as Table;
        for (const role of new Set(items.filter((x) => (x.k === 'table' || x.k === 'columns') && x.priv === 'SELECT' && x.schema === r.schema && x.table === r.table).map((x) => (x as { role: string }).role))) {
          assert.ok(
            items.some((x) => x.k === 'policy' && x.cmd === 'SELECT' && x.role === role && x.restrictive !== true && x.schema === r.schema && x.table === r.table),
            `seed ${seed}: ${role} reads ${t.database}.${t.name} but has no SELECT policy there`,
          );
        }
      }
      // a table-scoped run gives the embed role exactly the full run's items on its tables
      const picked = tables.filter((t) => embeds.some((e) => e.database === t.database && e.table === t.name) || rng.chance(0.2));
      const keys = new Set(picked.map((x) => `${x.database}.${x.name}`));
      const scoped = desiredState({ world, engine, target: target(c.name), now: NOW, embeds, tables: keys, personalUsers: new Set(full.personal.keys()) });
      if (scoped.needsFull) continue;
      const ofApp = (list: readonly Item[]): string[] =>
        list
          .filter((x) => x.k !== 'rls' && x.k !== 'role' && x.k !== 'member' && x.role === APP && (x.k === 'usage' || keys.has(`${x.schema}.${x.table}`)))
          .map((x) => JSON.stringify(x))
          .sort();
      assert.deepEqual(ofApp(scoped.list), ofApp(full.list), `seed ${seed}, catalog ${c.name}`);
    }
  }
  assert.ok(embedded > 30, `only ${embedded} embedded tables checked`);
});

test('no embed items when the embed role is a user login role or missing from the warehouse, each with a warning', () => {
  // Threat: an application role that doubles as a user's login role inheriting that user's group memberships on top of the rule.
  const world = randomWorld(3);
  const engine = createEngine(world);
  const c = world.catalogs[0]!.name;
  const t = world.tables.find((x) => x.catalog === c && x.columns.some((col) => col.type === 'VARCHAR'))!;
  const user = world.users[0]!.name;
  const embeds: EmbedDataset[] = [{ dashboard: 'd', dataset: 'ds', catalog: c, database: t.database, table: t.name, runAs: user, rule: { tagRules: [{ tagKey: 'k', column: t.columns.find((col) => col.type === 'VARCHAR')!.name, multiValueDelimiter: ',', matchAllValue: '*' }], configurations: [['k']] } }];
  const asUser = desiredState({ world, engine, target: { ...target(c), embedRole: user }, now: NOW, embeds });
  assert.ok(!asUser.list.some((x) => x.k !== 'rls' && x.k !== 'role' && x.k !== 'member' && x.role === user && x.k === 'policy'));
  assert.ok(asUser.warnings.some((w) => w.code === 'EMBED_SKIPPED' && w.message.includes('login role')));
  const missing = desiredState({ world, engine, target: target(c), now: NOW, embeds, loginRoles: new Set() });
  assert.ok(!missing.list.some((x) => x.k !== 'rls' && x.k !== 'role' && x.k !== 'member' && x.role === APP));
  assert.ok(missing.warnings.some((w) => w.code === 'EMBED_SKIPPED' && w.message.includes('does not exist')));
});
