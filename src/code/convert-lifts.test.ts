/**
 * Policy-as-code carries guardrail lifts both ways: `liftable` on guardrails,
 * `liftsGuardrails` on (time-bound) grants.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StewardError } from '../errors.js';
import { fromWorld, toManagedWorld } from './convert.js';
import { loadPolicySources } from './load.js';
import { DEMO_CATALOG, stubParsePredicate } from './test-catalog.js';

const doc = (grantExtra: string, guardrailExtra: string): string => `
apiVersion: steward/v1
tagKeys:
  pii: { values: [true, false] }
tags:
  lake.claims.patient_claims.ssn: { pii: true }
users:
  alice:
grants:
  - id: review-ssn
    principal: alice
    resource: lake.claims.patient_claims
    permissions: [SELECT]
${grantExtra}
guardrails:
  pii-officers-only:
    actions: [SELECT]
    resources: "pii=true"
${guardrailExtra}
`;

function convert(text: string): ReturnType<typeof toManagedWorld> {
  const { document } = loadPolicySources([{ file: 'p.yaml', text }]);
  return toManagedWorld(document, { parsePredicate: stubParsePredicate, catalog: DEMO_CATALOG });
}

test('liftable and liftsGuardrails round-trip through the policy document', () => {
  const world = convert(doc('    notAfter: 2027-01-01T00:00:00Z\n    liftsGuardrails: [pii-officers-only]', '    liftable: true'));
  assert.deepEqual(world.guardrails[0]?.liftable, true);
  assert.deepEqual(world.grants[0]?.liftsGuardrails, ['pii-officers-only']);
  const back = fromWorld(world);
  assert.deepEqual(back.guardrails?.['pii-officers-only']?.liftable, true);
  assert.deepEqual(back.grants?.[0]?.liftsGuardrails, ['pii-officers-only']);
  assert.deepEqual(fromWorld(convert(doc('', '    liftable: false'))).guardrails?.['pii-officers-only']?.liftable, undefined);
});

test('a lifting grant without notAfter is refused with its location', () => {
  assert.throws(
    () => convert(doc('    liftsGuardrails: [pii-officers-only]', '    liftable: true')),
    (e: unknown) => e instanceof StewardError && /must be time-bound/.test(JSON.stringify(e.details) + e.message),
  );
});
