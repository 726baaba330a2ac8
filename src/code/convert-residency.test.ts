/**
 * Policy-as-code carries residency guardrails both ways (docs/residency.md):
 * `residency: { regions, mode }` instead of `actions`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StewardError } from '../errors.js';
import { EMPTY_WORLD } from '../policy/model.js';
import { fromWorld, toManagedWorld } from './convert.js';
import { exportPolicy } from './export.js';
import { loadPolicySources } from './load.js';
import { planPolicy, renderPlan } from './plan.js';
import { DEMO_CATALOG, stubParsePredicate } from './test-catalog.js';

const doc = (guardrail: string): string => `
apiVersion: steward/v1
tagKeys:
  residency: { values: [eu, us] }
tags:
  lake.claims: { residency: eu }
guardrails:
  eu-stays:
    resources: "residency=eu"
${guardrail}
`;

function convert(text: string): ReturnType<typeof toManagedWorld> {
  const { document } = loadPolicySources([{ file: 'p.yaml', text }]);
  return toManagedWorld(document, { parsePredicate: stubParsePredicate, catalog: DEMO_CATALOG });
}

test('a residency guardrail round-trips through plan, apply and export, with enforce as the default mode', () => {
  const world = convert(doc('    residency:\n      regions: [EU-*, eu-central-1]'));
  const g = world.guardrails[0];
  assert.deepEqual(g?.actions, []);
  assert.deepEqual(g?.residency, { regions: ['eu-*', 'eu-central-1'], mode: 'enforce' });
  const back = fromWorld(world);
  assert.deepEqual(back.guardrails?.['eu-stays'], { resources: { residency: ['eu'] }, residency: { regions: ['eu-*', 'eu-central-1'], mode: 'enforce' } });
  const yaml = exportPolicy(world);
  assert.match(yaml, /residency: \{ regions: \[ eu-\*, eu-central-1 \], mode: enforce \}/);
  assert.doesNotMatch(yaml.slice(yaml.indexOf('guardrails:')), /actions/);
  // the exported file loads to the same world
  assert.deepEqual(convert(yaml).guardrails, world.guardrails);
  const plan = renderPlan(planPolicy({ ...EMPTY_WORLD, ...DEMO_CATALOG }, world));
  assert.match(plan, /keep residency=eu in regions eu-\*, eu-central-1 \(enforce\)/);
});

test('refuses a residency guardrail that also lists actions, at its location in the file', () => {
  // Threat: a file that reads as a residency rule but also denies SELECT to everyone (or the reverse).
  assert.throws(
    () => convert(doc('    actions: [SELECT]\n    residency:\n      regions: [eu-*]')),
    (e: unknown) => e instanceof StewardError && /omit `actions`/.test(JSON.stringify(e.details) + e.message) && /p\.yaml:\d+/.test(JSON.stringify(e.details)),
  );
});

test('refuses an unknown mode and a regular expression as a region pattern', () => {
  // Threat: `.*` or `eu-.*` taken as a regex would admit every region.
  assert.throws(() => convert(doc('    residency:\n      regions: [eu-*]\n      mode: audit')), StewardError);
  assert.throws(() => convert(doc('    residency:\n      regions: ["eu-.*"]')), StewardError);
  assert.throws(() => convert(doc('    residency:\n      regions: []')), StewardError);
});
