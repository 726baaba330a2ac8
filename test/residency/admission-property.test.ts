/**
 * The admission rule as an invariant (docs/residency.md): starting from a world
 * an enforced residency guardrail holds in, no sequence of admitted changes —
 * tables put and moved, tags set and removed at every level, guardrails
 * switched between report-only and enforce — reaches a world where it is broken.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { applyChanges, type Change } from '../../src/policy/changes.js';
import { EMPTY_WORLD, type Guardrail, type PolicyWorld, type TaggableRef } from '../../src/policy/model.js';
import { enforced } from '../../src/policy/residency.js';
import { admitResidency, lakeViolations } from '../../src/residency/residency-gate.js';
import type { LakeRegions } from '../../src/catalog/lake-regions.js';
import { StewardError } from '../../src/errors.js';

let dir: string;
let regions: LakeRegions;
before(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'steward-residency-prop-')));
  for (const d of ['eu', 'us']) {
    fs.mkdirSync(path.join(dir, d));
    fs.writeFileSync(path.join(dir, d, 'a.csv'), 'id\n1\n');
  }
  fs.symlinkSync(path.join(dir, 'us', 'a.csv'), path.join(dir, 'eu', 'link.csv'));
  regions = { folders: { [path.join(dir, 'eu')]: 'eu-west-1', [path.join(dir, 'us')]: 'us-east-1' }, fallback: null };
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const DATABASES = ['claims'] as const;
// few names, so random steps often hit the same table from several sides
const TABLES = ['t1', 't2'] as const;
const LOCATIONS = ['eu/a.csv', 'us/a.csv', 'eu/link.csv', '*/a.csv', 'eu/../us/a.csv'] as const;

const guardrail = (name: string, value: string, pattern: string, mode: 'enforce' | 'report-only'): Guardrail => ({
  name,
  actions: [],
  resources: { residency: [value] },
  residency: { regions: [pattern], mode },
});

const START: PolicyWorld = {
  ...EMPTY_WORLD,
  catalogs: [{ name: 'lake' }],
  databases: DATABASES.map((name) => ({ catalog: 'lake', name })),
  tagKeys: [{ key: 'residency', values: ['eu', 'us'] }],
  guardrails: [guardrail('eu-stays', 'eu', 'eu-*', 'enforce'), guardrail('us-stays', 'us', 'us-*', 'report-only')],
};

const resource = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom(...DATABASES).map((database): TaggableRef => ({ level: 'database', catalog: 'lake', database })) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...DATABASES), fc.constantFrom(...TABLES)).map(([database, table]): TaggableRef => ({ level: 'table', catalog: 'lake', database, table })) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...DATABASES), fc.constantFrom(...TABLES)).map(([database, table]): TaggableRef => ({ level: 'column', catalog: 'lake', database, table, column: 'id' })) },
);

const change: fc.Arbitrary<Change> = fc.oneof(
  fc.tuple(fc.constantFrom(...DATABASES), fc.constantFrom(...TABLES), fc.constantFrom(...LOCATIONS)).map(
    ([database, name, loc]): Change => ({
      op: 'put',
      kind: 'table',
      entity: { catalog: 'lake', database, name, columns: [{ name: 'id', type: 'BIGINT', ordinal: 0 }], source: { kind: 'lake', format: 'csv', location: `${dir}/${loc}`, hivePartitioning: false } },
    }),
  ),
  fc.tuple(resource, fc.constantFrom('eu', 'us')).map(([r, value]): Change => ({ op: 'put', kind: 'tagAssignment', entity: { resource: r, key: 'residency', value } })),
  resource.map((r): Change => {
    const text = [r.catalog, r.database, r.level === 'database' ? undefined : r.table, r.level === 'column' ? r.column : undefined].filter((x) => x !== undefined).join('.');
    return { op: 'delete', kind: 'tagAssignment', key: `${text}#residency` };
  }),
  fc.tuple(fc.constantFrom('eu-stays', 'us-stays'), fc.constantFrom('enforce', 'report-only') as fc.Arbitrary<'enforce' | 'report-only'>).map(
    ([name, mode]): Change => ({ op: 'put', kind: 'guardrail', entity: guardrail(name, name.slice(0, 2), `${name.slice(0, 2)}-*`, mode) }),
  ),
);

test('no sequence of admitted changes breaks an enforced residency guardrail (property)', () => {
  // Threat: a path around the admission rule, e.g. tag first and move later, or relax, violate, then enforce again.
  fc.assert(
    fc.property(fc.array(fc.array(change, { minLength: 1, maxLength: 3 }), { maxLength: 16 }), (steps) => {
      let world = START;
      let refused = 0;
      for (const changes of steps) {
        const next = applyChanges(world, changes);
        try {
          admitResidency(changes, { before: world, after: next, actor: 'user:prop', action: 'test' }, regions);
        } catch (e) {
          if (!(e instanceof StewardError) || e.code !== 'STEWARD_E_RESIDENCY') throw e;
          refused++;
          continue;
        }
        world = next;
        assert.deepEqual(enforced(lakeViolations(world, regions)), [], `after ${JSON.stringify(changes)}`);
      }
      return refused >= 0;
    }),
    { numRuns: 400 },
  );
});

test('refuses removing a table’s own tag when its database’s tag then covers it outside its regions', () => {
  // Threat: tag the database while a table-level override exempts the table, then drop the override.
  const steps: Change[][] = [
    [{ op: 'put', kind: 'table', entity: { catalog: 'lake', database: 'claims', name: 't1', columns: [{ name: 'id', type: 'BIGINT', ordinal: 0 }], source: { kind: 'lake', format: 'csv', location: `${dir}/us/a.csv`, hivePartitioning: false } } }],
    [{ op: 'put', kind: 'tagAssignment', entity: { resource: { level: 'table', catalog: 'lake', database: 'claims', table: 't1' }, key: 'residency', value: 'us' } }],
    [{ op: 'put', kind: 'tagAssignment', entity: { resource: { level: 'database', catalog: 'lake', database: 'claims' }, key: 'residency', value: 'eu' } }],
  ];
  let world = START;
  for (const changes of steps) {
    const next = applyChanges(world, changes);
    admitResidency(changes, { before: world, after: next, actor: 'user:prop', action: 'test' }, regions);
    world = next;
  }
  const drop: Change[] = [{ op: 'delete', kind: 'tagAssignment', key: 'lake.claims.t1#residency' }];
  assert.throws(
    () => admitResidency(drop, { before: world, after: applyChanges(world, drop), actor: 'user:prop', action: 'tag.unset' }, regions),
    (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_RESIDENCY' && /lake\.claims\.t1.*eu-stays/.test(e.message),
  );
});
