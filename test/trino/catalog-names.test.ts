/**
 * Trino catalog names mapped onto Steward's (STEWARD_TRINO_CATALOGS): the
 * mapped name gets the Steward catalog's answers, and the Steward name itself,
 * seen from Trino, gets nothing.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { loadConfig } from '../../src/config.js';
import { createEngine } from '../../src/policy/engine.js';
import { inStewardCatalogs, stewardCatalog } from '../../src/trino/catalog-names.js';
import { decideAllow, decideRowFilters } from '../../src/trino/opa-decide.js';
import { OpaRequest } from '../../src/trino/opa-input.js';
import { NOW, randomWorld } from '../support/random-world.js';
import { single, table } from './fixtures.js';

it('answers a mapped Trino catalog as its Steward catalog, on every table of random worlds', () => {
  let allowed = 0;
  for (let seed = 1; seed <= 40; seed++) {
    const world = randomWorld(seed);
    const w = { world, engine: createEngine(world), now: NOW };
    const target = world.catalogs[0]?.name as string;
    const names = { hive: target };
    for (const u of world.users) {
      for (const t of world.tables.filter((x) => x.catalog === target)) {
        const ask = (catalog: string, op: string) => inStewardCatalogs(names, OpaRequest.parse(single(u.name, op, table(catalog, t.database, t.name))).input);
        const direct = OpaRequest.parse(single(u.name, 'FilterTables', table(target, t.database, t.name))).input;
        assert.equal(decideAllow(w, ask('hive', 'FilterTables')), decideAllow(w, direct));
        assert.deepEqual(decideRowFilters(w, ask('hive', 'GetRowFilters')), decideRowFilters(w, { ...direct, action: { ...direct.action, operation: 'GetRowFilters' } }));
        if (decideAllow(w, direct)) allowed++;
      }
    }
  }
  assert.ok(allowed > 0, 'no allowed table: the comparison proved nothing');
});

it('denies the Steward name itself once it is mapped, so an unrelated Trino catalog of that name inherits nothing', () => {
  // Threat: Trino's own catalog `lake` (another data source) reading with the grants of Steward's `lake`.
  assert.equal(stewardCatalog({ hive: 'lake' }, 'lake'), '');
  assert.equal(stewardCatalog({ hive: 'lake' }, 'hive'), 'lake');
  assert.equal(stewardCatalog({ hive: 'lake' }, 'other'), 'other');
  assert.equal(stewardCatalog({}, 'lake'), 'lake');
});

it('reads STEWARD_TRINO_CATALOGS and refuses entries without a target or with a prototype key', () => {
  const env = (v: string) => ({ STEWARD_HOME: `${os.tmpdir()}/steward-trino-catalogs`, STEWARD_TRINO_CATALOGS: v });
  assert.deepEqual({ ...loadConfig(env('hive=lake, iceberg = acme-prod')).trinoCatalogs }, { hive: 'lake', iceberg: 'acme-prod' });
  for (const bad of ['hive', 'hive=Lake!', '__proto__=lake', 'hive=']) {
    assert.throws(() => loadConfig(env(bad)), (e: Error) => /STEWARD_TRINO_CATALOGS/.test(e.message), bad);
  }
});
