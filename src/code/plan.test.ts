import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges } from '../policy/changes.js';
import type { PolicyWorld } from '../policy/model.js';
import { toManagedWorld } from './convert.js';
import { loadPolicySources } from './load.js';
import { planPolicy, planToJson, renderPlan } from './plan.js';
import { DEMO_CATALOG, stubParsePredicate } from './test-catalog.js';

const managed = (text: string) => toManagedWorld(loadPolicySources([{ file: 'p.yaml', text }]).document, { parsePredicate: stubParsePredicate });

const CURRENT = `
apiVersion: steward/v1
tagKeys:
  pii: { values: ["true", "false"] }
users:
  alice: { displayName: Alice }
grants:
  - { id: keep, principal: alice, resource: lake.claims, permissions: [SELECT, DESCRIBE] }
guardrails:
  old-rule: { actions: [SELECT], resources: pii=true }
`;

const DESIRED = `
apiVersion: steward/v1
tagKeys:
  pii: { values: ["true", "false", internal] }
users:
  alice: { displayName: Alice Analyst }
grants:
  - { id: keep, principal: alice, resource: lake.claims, permissions: [DESCRIBE, SELECT] }
  - { id: analysts-read-claims, principal: alice, resource: lake.claims.patient_claims, permissions: [SELECT] }
`;

const world = (text: string): PolicyWorld => ({ ...DEMO_CATALOG, ...managed(text) });

test('renders adds, changes and removes like Terraform, and nothing for reordered lists', () => {
  const plan = planPolicy(world(CURRENT), managed(DESIRED));
  assert.equal(
    renderPlan(plan),
    [
      'Steward will make these changes:',
      '',
      '  ~ user alice: displayName "Alice" -> "Alice Analyst"',
      '  ~ tagKey pii: values +internal',
      '  + grant analysts-read-claims: user:alice SELECT on lake.claims.patient_claims',
      '  - guardrail old-rule',
      '',
      'Plan: 1 to add, 2 to change, 1 to remove.',
      '',
    ].join('\n'),
  );
  assert.deepEqual(plan.summary.grant, { added: 1, changed: 0, removed: 0 });
  assert.deepEqual(plan.summary.guardrail, { added: 0, changed: 0, removed: 1 });
});

test('an empty plan says so', () => {
  const plan = planPolicy(world(DESIRED), managed(DESIRED));
  assert.deepEqual(plan.changes, []);
  assert.match(renderPlan(plan), /^No changes\./);
});

test('never deletes catalog entities, even when the policy is empty', () => {
  const plan = planPolicy(world(CURRENT), managed('apiVersion: steward/v1\n'));
  const kinds = new Set(plan.changes.map((c) => c.kind));
  assert.deepEqual([...kinds].sort(), ['grant', 'guardrail', 'tagKey', 'user']);
  const after = applyChanges(world(CURRENT), plan.changes);
  assert.deepEqual(after.catalogs, DEMO_CATALOG.catalogs);
  assert.deepEqual(after.databases, DEMO_CATALOG.databases);
  assert.deepEqual(after.tables, DEMO_CATALOG.tables);
});

test('applying a plan reaches the desired world: planning again gives no changes', () => {
  const before = world(CURRENT);
  const desired = managed(DESIRED);
  const after = applyChanges(before, planPolicy(before, desired).changes);
  assert.deepEqual(planPolicy(after, desired).changes, []);
});

test('the JSON form carries totals, per-kind summary, entries and the changes to apply', () => {
  const plan = planPolicy(world(CURRENT), managed(DESIRED));
  const json = JSON.parse(renderPlan(plan, 'json')) as ReturnType<typeof planToJson>;
  assert.deepEqual(json.totals, { added: 1, changed: 2, removed: 1 });
  assert.equal(json.changes.length, 4);
  assert.deepEqual(json.entries.find((e) => e.kind === 'tagKey'), { action: 'change', kind: 'tagKey', key: 'pii', detail: '', fields: ['values +internal'] });
});

test('policy files neither remove nor declare just-in-time grants (an apply must not end approved access)', () => {
  const jit = { id: 'jit-ar-1', principal: 'user:alice' as const, resource: { kind: 'table' as const, catalog: 'lake', database: 'claims', table: 'patient_claims' }, permissions: ['SELECT' as const], grantable: [], notAfter: '2030-01-01T00:00:00Z' };
  const world = { ...DEMO_CATALOG, users: [{ name: 'alice' }], grants: [jit] };
  const desired = toManagedWorld({ apiVersion: 'steward/v1', users: { alice: {} } }, { parsePredicate: stubParsePredicate, catalog: DEMO_CATALOG });
  assert.equal(planPolicy(world, desired).changes.length, 0);
  assert.throws(
    () =>
      toManagedWorld(
        { apiVersion: 'steward/v1', users: { alice: {} }, grants: [{ id: 'jit-mine', principal: 'user:alice', resource: 'lake.claims.patient_claims', permissions: ['SELECT'] }] },
        { parsePredicate: stubParsePredicate, catalog: DEMO_CATALOG },
      ),
    /reserved for just-in-time/,
  );
});
