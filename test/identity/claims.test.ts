/**
 * The claims → Steward mapping on its own: which users may sign in, and which
 * memberships a sign-in may touch, over random worlds and claims.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { identityFromClaims, planSignIn, type IdentityClaims } from '../../src/identity/claims.js';
import { EMPTY_WORLD, type PolicyWorld, type PrincipalRef } from '../../src/policy/model.js';

const GROUPS = ['eng', 'ops', 'audit', 'hand'];
const EXTERNAL = ['x-eng', 'x-ops', 'x-audit', 'x-none'];

const world = fc.record({
  known: fc.boolean(),
  memberOf: fc.subarray(GROUPS),
  mappings: fc.array(fc.record({ provider: fc.constantFrom('acme', 'other'), externalGroup: fc.constantFrom(...EXTERNAL), group: fc.constantFrom(...GROUPS) }), { maxLength: 6 }),
});

function build(w: { known: boolean; memberOf: string[]; mappings: { provider: string; externalGroup: string; group: string }[] }): PolicyWorld {
  const unique = [...new Map(w.mappings.map((m) => [`${m.provider}/${m.externalGroup}`, m])).values()];
  return {
    ...EMPTY_WORLD,
    users: w.known ? [{ name: 'alice' }] : [],
    groups: GROUPS.map((name) => ({ name })),
    memberships: w.known ? w.memberOf.map((group) => ({ group, member: 'user:alice' as PrincipalRef })) : [],
    idpMappings: unique,
  };
}

const identity = (groups: string[]): IdentityClaims => ({ ok: true, subject: 's', user: 'alice', externalGroups: groups });

describe('claims mapping', () => {
  it('never admits an unknown user without a mapping of this provider, and never touches a group no mapping of this provider manages', () => {
    // Threat: a sign-in that creates users nobody allowed, or strips memberships an admin made by hand.
    fc.assert(
      fc.property(world, fc.subarray(EXTERNAL), (w, claimed) => {
        const pw = build(w);
        const plan = planSignIn(pw, 'acme', identity(claimed));
        const acme = pw.idpMappings.filter((m) => m.provider === 'acme');
        const admitted = acme.some((m) => claimed.includes(m.externalGroup));
        if (!w.known) assert.equal(plan.ok, admitted);
        if (!plan.ok) return;
        const managed = new Set(acme.map((m) => m.group));
        for (const g of [...plan.added, ...plan.removed]) assert.ok(managed.has(g), `touched unmanaged group ${g}`);
        // After the plan, membership in each managed group equals "some claimed external group maps to it".
        const after = new Set([...(w.known ? w.memberOf : []), ...plan.added].filter((g) => !plan.removed.includes(g)));
        for (const g of managed) assert.equal(after.has(g), acme.some((m) => m.group === g && claimed.includes(m.externalGroup)), g);
      }),
    );
  });

  it('refuses a user name that is not a Steward name instead of rewriting it', () => {
    // Threat: `alice@evil.example` cut to `alice`, an insider's account.
    for (const name of ['alice@evil.example', 'Alice Smith', '../admin', '', '__proto__']) {
      const r = identityFromClaims({ sub: 'x', preferred_username: name }, 'groups');
      assert.equal(r.ok, false, name);
    }
    assert.deepEqual(identityFromClaims({ sub: 'x', email: 'Bob', groups: 'eng' }, 'groups'), { ok: true, subject: 'x', user: 'bob', externalGroups: ['eng'] });
  });

  it('refuses a groups claim that is not a list of names, or is huge', () => {
    // Threat: a malformed or oversized claim read as "no groups" and silently stripping every mapped membership.
    for (const groups of [{ eng: true }, 42, Array.from({ length: 1001 }, (_, i) => `g${i}`)]) {
      assert.equal(identityFromClaims({ sub: 'x', preferred_username: 'alice', groups }, 'groups').ok, false);
    }
  });
});
