import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { arbWorld } from '../../test/support/random-world.js';
import { catalogTables, createEngine } from './index.js';
import type { PolicyWorld, Table } from './model.js';
import { EMPTY_WORLD } from './model.js';

const col = (name: string, ordinal = 0) => ({ name, type: 'string', ordinal });
const tbl = (database: string, name: string): Table => ({ catalog: 'lake', database, name, columns: [col('id')], source: { kind: 'virtual' } });

function lake(tables: Table[]): PolicyWorld {
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }, { name: 'other' }],
    databases: [
      { catalog: 'lake', name: 'claims' },
      { catalog: 'lake', name: 'hr' },
      { catalog: 'other', name: 'claims' },
    ],
    tables,
  };
}

// threat: the sync numbers a catalog's tables its own way; a view that numbered them differently
// from the catalog's world order would grant one table's privileges on another
test('the catalog view numbers tables in world order and finds each by name, on 200 random worlds', () => {
  fc.assert(
    fc.property(arbWorld(), (world) => {
      for (const c of world.catalogs) {
        const view = catalogTables(world, c.name);
        const expected = world.tables.filter((t) => t.catalog === c.name);
        assert.deepStrictEqual(view.tables, expected);
        view.tables.forEach((t, i) => {
          assert.equal(view.find(t.database, t.name), i);
          assert.equal(view.databases[view.dbOf[i] as number], t.database);
          assert.ok((view.tablesOf[view.dbOf[i] as number] as readonly number[]).includes(i));
        });
        assert.deepStrictEqual(view.databases, world.databases.filter((d) => d.catalog === c.name).map((d) => d.name));
        for (const list of view.tablesOf) assert.deepStrictEqual([...list], [...list].sort((a, b) => a - b));
        assert.equal(view.find('no_such_db', 'x'), -1);
      }
    }),
    { numRuns: 200 },
  );
});

// threat: a same-named table in another catalog, or an undeclared catalog, answered as if it were this catalog's
test('a table of another catalog or of an unknown catalog is not found', () => {
  const world: PolicyWorld = { ...lake([tbl('claims', 'members')]), tables: [{ ...tbl('claims', 'members'), catalog: 'other' }, tbl('claims', 'members')] };
  const view = catalogTables(world, 'lake');
  assert.equal(view.tables.length, 1);
  assert.equal(view.tables[0], world.tables[1]);
  assert.equal(view.find('claims', 'members'), 0);
  const unknown = catalogTables(world, 'nope');
  assert.deepStrictEqual([unknown.tables.length, unknown.databases.length, unknown.find('claims', 'members')], [0, 0, -1]);
});

// threat: an invalid world (bypassing validation) gets two answers for one name; the view keeps the
// engine's: first table of a name wins, a table of an undeclared database does not exist
test('a second table of one name and a table of an undeclared database are left out, as the engine decides them', () => {
  const first = tbl('claims', 'members');
  const world = lake([first, { ...tbl('claims', 'members'), columns: [col('ssn')] }, tbl('ghost', 'x'), tbl('hr', 'staff')]);
  const view = catalogTables(world, 'lake');
  assert.deepStrictEqual(view.tables, [first, world.tables[3]]);
  assert.equal(view.find('ghost', 'x'), -1);
  assert.deepStrictEqual(view.tablesOf.map((l) => [...l]), [[0], [1]]);
});

// threat: the shared index is remembered across worlds; a stale one would hide a new table from
// the sync (no privileges) or keep a dropped database's tables granted
test('a change to the tables or databases is seen, not served from the index of the world before', () => {
  const before = lake([tbl('claims', 'members')]);
  const viewBefore = catalogTables(before, 'lake');
  const added = { ...before, tables: [...before.tables, tbl('hr', 'staff')] };
  assert.equal(catalogTables(added, 'lake').find('hr', 'staff'), 1);
  const dropped = { ...before, databases: before.databases.filter((d) => d.name !== 'claims') };
  assert.equal(catalogTables(dropped, 'lake').find('claims', 'members'), -1);
  // the world before still answers as before
  assert.equal(catalogTables(before, 'lake'), viewBefore);
  assert.equal(viewBefore.find('claims', 'members'), 0);
});

// failure: the sync re-indexing every table name the engine already indexed, on every plan
test('a world whose catalog is unchanged shares one catalog view, built once', () => {
  const world = lake([tbl('claims', 'members'), tbl('hr', 'staff')]);
  createEngine(world);
  const view = catalogTables(world, 'lake');
  const grantChange: PolicyWorld = { ...world, grants: [...world.grants] };
  createEngine(grantChange);
  assert.equal(catalogTables(grantChange, 'lake'), view);
  assert.equal(catalogTables(world, 'lake'), view);
});
