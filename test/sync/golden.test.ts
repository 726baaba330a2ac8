/**
 * Golden files: the Redshift script and the PostgreSQL plan (against an empty
 * warehouse that has the tables) for the small world. Regenerate with
 * `UPDATE_GOLDEN=1 node --import tsx --test test/sync/golden.test.ts` and
 * review the diff.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createEngine } from '../../src/policy/engine.js';
import { redshiftPlan } from '../../src/sync/redshift.js';
import { desiredState } from '../../src/sync/desired-state.js';
import { diffStates } from '../../src/sync/diff.js';
import { tableKey } from '../../src/sync/names.js';
import { COLUMNS, smallWorld, targetDef } from './support/small-world.js';

const NOW = Date.UTC(2025, 0, 15);
const target = targetDef('golden', 'stw_', '', 'UNUSED');

function golden(name: string, text: string): void {
  const file = fileURLToPath(new URL(`./golden/${name}`, import.meta.url));
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, text);
  assert.equal(text, readFileSync(file, 'utf8'), `${name} differs from the golden file (UPDATE_GOLDEN=1 to regenerate)`);
}

test('redshift dialect: roles, column-level grants, RLS policies with ATTACH, RLS on', () => {
  const world = smallWorld({ tables: 2 });
  const plan = redshiftPlan({ world, engine: createEngine(world), target, now: NOW });
  const sql = `${plan.steps.map((s) => `${s.sql};`).join('\n')}\n`;
  assert.match(sql, /CREATE RLS POLICY "stw_rls_[0-9a-f]+" WITH \("region" VARCHAR\(65535\)\) USING \(\("region" = 'east'\)\);/);
  assert.match(sql, /ATTACH RLS POLICY "stw_rls_[0-9a-f]+" ON "sales"\."t0" TO ROLE "stw_g3";/);
  assert.match(sql, /ALTER TABLE "sales"\."t0" ROW LEVEL SECURITY ON;/);
  assert.match(sql, /GRANT SELECT \("id", "region", "amount"\) ON TABLE "sales"\."t0" TO ROLE "stw_g1";/);
  assert.match(sql, /GRANT ROLE "stw_g1" TO "u1";/);
  golden('redshift-small.sql', sql);
});

test('postgres dialect: the full plan against a warehouse that has the tables', () => {
  const world = smallWorld({ tables: 2 });
  const desired = desiredState({ world, engine: createEngine(world), target, now: NOW });
  const actual = {
    items: new Map(),
    roles: new Set(world.users.map((u) => u.name)),
    tables: new Map(world.tables.map((t) => [tableKey('sales', t.name), new Set<string>(COLUMNS)])),
    schemas: new Set(['sales']),
    ledger: new Set<string>(),
  };
  const plan = diffStates(desired, actual, { target });
  golden('postgres-small.sql', `${plan.steps.map((s) => `${s.sql};`).join('\n')}\n`);
});

test('identifiers are quoted by one function: a hostile name stays one identifier', () => {
  // threat: a table or column named with a quote breaks out of the identifier and runs SQL
  const world = smallWorld({ tables: 1 });
  const evil = 'x"; DROP TABLE t; --';
  const w2 = { ...world, tables: world.tables.map((t) => ({ ...t, columns: [...t.columns, { name: evil, type: 'VARCHAR', ordinal: t.columns.length }] })) };
  const plan = redshiftPlan({ world: w2, engine: createEngine(w2), target, now: NOW });
  for (const s of plan.steps) assert.ok(!s.sql.includes('"; DROP') || s.sql.includes('"x""; DROP TABLE t; --"'), s.sql);
});
