/**
 * The desired state keeps its items as a list with keys (walked by the diff)
 * and builds the key map from it on first use. The two views must agree: each
 * key once, in map order, the key of its item. Table privileges skip the
 * duplicate check when tables map 1:1, so the random worlds here also run with
 * a table mapping that sends every table onto one warehouse table, where
 * duplicates do occur and must collapse as a map would collapse them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createEngine } from '../../src/policy/engine.js';
import { desiredState } from '../../src/sync/desired-state.js';
import { diffStates, EMPTY_ACTUAL } from '../../src/sync/diff.js';
import { itemKey } from '../../src/sync/names.js';
import type { TargetSpec } from '../../src/sync/sync-types.js';
import { NOW, randomWorld } from '../support/random-world.js';

const base = (catalog: string): TargetSpec => ({ name: 't', catalog, rolePrefix: 'p_', userRoleTemplate: '{user}', userRoles: {}, schemaMap: {}, tableMap: {}, drift: 'revoke' });

test('the desired list and the desired map agree on 150 random worlds, 1:1 and with every table mapped onto one', () => {
  let collapsed = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const world = randomWorld(seed);
    const engine = createEngine(world);
    for (const c of world.catalogs) {
      const tables = world.tables.filter((t) => t.catalog === c.name);
      const onto = Object.fromEntries(tables.map((t) => [`${t.database}.${t.name}`, 'one.t']));
      const privileges: number[] = [];
      for (const target of [base(c.name), { ...base(c.name), tableMap: onto }]) {
        const d = desiredState({ world, engine, target, now: NOW });
        assert.equal(d.keys.length, d.list.length);
        assert.equal(new Set(d.keys).size, d.keys.length, `seed ${seed}: a key twice in the list`);
        d.list.forEach((it, i) => assert.equal(d.keys[i], itemKey(it)));
        assert.deepEqual([...d.items], d.list.map((it, i) => [d.keys[i], it]), `seed ${seed}: map and list differ`);
        // the diff walks the list: against an empty warehouse it grants every usable item once
        const plan = diffStates(d, { ...EMPTY_ACTUAL, roles: new Set(world.users.map((u) => u.name)) }, { target });
        assert.equal(new Set(plan.steps.map((s) => s.key)).size, plan.steps.length, `seed ${seed}: a step twice`);
        privileges.push(d.list.filter((it) => it.k === 'table').length);
      }
      if ((privileges[1] as number) < (privileges[0] as number)) collapsed++;
    }
  }
  assert.ok(collapsed > 20, `only ${collapsed} catalogs where mapping collapsed table privileges: the collapsing case went untested`);
});
