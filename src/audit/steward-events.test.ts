import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decisionToEvent } from './steward-events.js';
import { conform, canonicalJson } from './lake-schema.js';
import { missingRequired } from './ocsf-required.js';
import type { StoredDecision } from '../store/decision-log.js';
import { validateOcsf } from '../../test/audit/ocsf-validator.js';
import { KINDS } from '../../test/audit/fixtures/decision-kinds.js';

export { KINDS };

describe('steward events: OCSF 1.1 mapping of decision-log rows', () => {
  for (const [kind, r] of Object.entries(KINDS)) {
    it(`${kind} (${r.action}) satisfies the vendored OCSF 1.1 required attributes`, () => {
      const e = decisionToEvent(r);
      assert.deepEqual(validateOcsf(e), []);
      assert.deepEqual(missingRequired(e), []);
      // The stored form keeps everything the event says (nothing moved to unmapped but what was unmapped already).
      const c = conform(e);
      assert.deepEqual(c.moved, [], `moved: ${c.moved.join(', ')}`);
      assert.equal(typeof canonicalJson(c.event), 'string');
    });
  }

  it('classes: decisions are API Activity, token failures Authentication, principal and grant changes Account Change, granted access User Access', () => {
    const cls = (k: string): unknown => decisionToEvent(KINDS[k] as StoredDecision)['class_uid'];
    assert.equal(cls('authorizeAllow'), 6003);
    assert.equal(cls('authFailure'), 3002);
    assert.equal(cls('userPut'), 3001);
    assert.equal(cls('grantCreate'), 3001);
    assert.equal(cls('accessActivate'), 3005);
    assert.equal(cls('accessEnd'), 3005);
    assert.equal(cls('accessApprove'), 6003);
    assert.equal(cls('accessRequest'), 6003);
    assert.equal(cls('accessExtendReject'), 6003);
    const activate = decisionToEvent(KINDS['accessActivate'] as StoredDecision) as { activity_id: number; user: { uid: string }; privileges: string[]; resources: { uid: string }[] };
    assert.equal(activate.activity_id, 1);
    assert.equal(activate.user.uid, 'user:alice');
    assert.deepEqual(activate.privileges, ['read']);
    assert.equal(activate.resources[0]?.uid, 'lake.finance');
    assert.equal(cls('catalogCreate'), 6003);
  });

  it('actor.authorizations names the deciding grant or guardrail', () => {
    const allow = decisionToEvent(KINDS['authorizeAllow'] as StoredDecision) as { actor: { authorizations: unknown[]; user: { uid: string } } };
    assert.deepEqual(allow.actor.authorizations, [{ decision: 'allow', policy: { name: 'analysts-read-patient-claims', uid: 'grant:analysts-read-patient-claims' } }]);
    const deny = decisionToEvent(KINDS['authorizeDenyGuardrail'] as StoredDecision) as { actor: { authorizations: unknown[]; user: { uid: string }; invoked_by: string }; status_id: number };
    assert.deepEqual(deny.actor.authorizations, [{ decision: 'deny', policy: { name: 'pii-requires-privacy-officer', uid: 'guardrail:pii-requires-privacy-officer' } }]);
    assert.equal(deny.actor.user.uid, 'user:alice');
    assert.equal(deny.actor.invoked_by, 'user:admin');
    assert.equal(deny.status_id, 2);
  });

  it('type_uid is class_uid * 100 + activity_id for every kind', () => {
    for (const r of Object.values(KINDS)) {
      const e = decisionToEvent(r);
      assert.equal(e['type_uid'], (e['class_uid'] as number) * 100 + (e['activity_id'] as number));
    }
  });
});

describe('conformed events: fast canonical form', () => {
  it('JSON.stringify of a conformed event equals its canonical JSON, for every kind', async () => {
    const { conformedJson } = await import('./lake-schema.js');
    for (const r of Object.values(KINDS)) {
      const c = conform(decisionToEvent(r)).event;
      assert.equal(conformedJson(c), canonicalJson(c));
    }
    // Keys out of order and unknown attributes are still put right.
    const messy = conform({ time: 1, zzz: { b: 1, a: 2 }, actor: { user: { uid: 'u', name: 'n' } }, class_uid: 6003 }).event;
    assert.equal(conformedJson(messy), canonicalJson(messy));
    assert.deepEqual(JSON.parse(messy['unmapped'] as string), { zzz: { a: 2, b: 1 } });
  });
});
