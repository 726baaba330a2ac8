import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { EMPTY_WORLD, REGION_PATTERN, type Guardrail, type PolicyWorld, type TagAssignment } from './model.js';
import { regionAllowed, residencyViolations } from './residency.js';

const region = fc.stringMatching(REGION_PATTERN);

test('a region pattern without `*` admits exactly that region; `*` never crosses into other characters', () => {
  // Threat: a pattern read as a prefix or a regex admitting regions the author never listed.
  fc.assert(
    fc.property(region, region, (p, r) => {
      assert.equal(regionAllowed([p], r), p === r);
      assert.equal(regionAllowed(['*'], r), true);
      assert.equal(regionAllowed([`${p}-*`], r), r.startsWith(`${p}-`));
    }),
  );
  assert.equal(regionAllowed(['eu-*'], 'neu-1'), false);
  assert.equal(regionAllowed(['eu-*'], 'eu'), false);
  assert.equal(regionAllowed(['*'], null), false);
});

const tag = (resource: TagAssignment['resource'], value: string): TagAssignment => ({ resource, key: 'residency', value });
const rule = (name: string, value: string, regions: string[], extra: Partial<Guardrail> = {}): Guardrail => ({
  name,
  actions: [],
  resources: { residency: [value] },
  residency: { regions, mode: 'enforce' },
  ...extra,
});

function world(tags: TagAssignment[], guardrails: Guardrail[]): PolicyWorld {
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }, { name: 'other' }],
    databases: [
      { catalog: 'lake', name: 'claims' },
      { catalog: 'other', name: 'claims' },
    ],
    tables: [
      { catalog: 'lake', database: 'claims', name: 'members', columns: [{ name: 'ssn', type: 'VARCHAR', ordinal: 0 }], source: { kind: 'virtual' } },
      { catalog: 'lake', database: 'claims', name: 'rates', columns: [{ name: 'rate', type: 'DOUBLE', ordinal: 0 }], source: { kind: 'virtual' } },
      { catalog: 'other', database: 'claims', name: 'members', columns: [], source: { kind: 'virtual' } },
    ],
    tagKeys: [{ key: 'residency', values: ['eu', 'us'] }],
    tagAssignments: tags,
    guardrails,
  };
}

const refs = [
  { catalog: 'lake', database: 'claims', table: 'members' },
  { catalog: 'lake', database: 'claims', table: 'rates' },
];
const names = (w: PolicyWorld, region: string | null): string[] => residencyViolations(w, refs, region).map((v) => `${v.table}/${v.guardrail}`);

test('a database tag covers its tables; a table tag overrides it; a column tag covers its table', () => {
  // Threat: a table escaping its database's residency tag, or a tagged column travelling in an untagged table.
  const db = { level: 'database', catalog: 'lake', database: 'claims' } as const;
  const eu = rule('eu-stays', 'eu', ['eu-*']);
  assert.deepEqual(names(world([tag(db, 'eu')], [eu]), 'us-east-1'), ['lake.claims.members/eu-stays', 'lake.claims.rates/eu-stays']);
  assert.deepEqual(names(world([tag(db, 'eu')], [eu]), 'eu-west-1'), []);
  const override = tag({ level: 'table', catalog: 'lake', database: 'claims', table: 'rates' }, 'us');
  assert.deepEqual(names(world([tag(db, 'eu'), override], [eu]), 'us-east-1'), ['lake.claims.members/eu-stays']);
  const column = tag({ level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'ssn' }, 'eu');
  assert.deepEqual(names(world([column], [eu]), 'us-east-1'), ['lake.claims.members/eu-stays']);
});

test('a target without a region is outside every guardrail; a guardrail limited to a catalog covers only it', () => {
  const db = { level: 'database', catalog: 'other', database: 'claims' } as const;
  const w = world([tag(db, 'eu'), tag({ level: 'database', catalog: 'lake', database: 'claims' }, 'eu')], [rule('lake-only', 'eu', ['eu-*'], { catalog: 'lake' })]);
  const v = residencyViolations(w, [...refs, { catalog: 'other', database: 'claims', table: 'members' }], null);
  assert.deepEqual(v.map((x) => [x.table, x.regions]), [['lake.claims.members', [null]], ['lake.claims.rates', [null]]]);
});
