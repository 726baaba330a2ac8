/**
 * Rules of docs/policy.md and the attacks they stop, run against both
 * evaluators: one suite, every implementation (the corpus under
 * test/policy/corpus covers the rest, case by case).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { applyChanges } from './changes.js';
import type { Decision, Evaluator } from './decision.js';
import { createEngine } from './engine.js';
import type { Grant, Guardrail, Permission, PolicyWorld, PrincipalRef, ResourceRef } from './model.js';
import { parseResource } from './model.js';
import { toSql } from './predicate.js';
import { createReferenceEvaluator } from './reference-evaluator.js';

const NOW = Date.UTC(2025, 0, 15, 12);

const base: PolicyWorld = {
  catalogs: [{ name: 'lake' }, { name: 'wh' }],
  databases: [
    { catalog: 'lake', name: 'claims' },
    { catalog: 'wh', name: 'claims' },
  ],
  tables: [
    {
      catalog: 'lake',
      database: 'claims',
      name: 'members',
      columns: ['id', 'region', 'ssn', 'email'].map((name, ordinal) => ({ name, type: 'VARCHAR', ordinal })),
      source: { kind: 'virtual' },
    },
    { catalog: 'wh', database: 'claims', name: 'members', columns: [{ name: 'id', type: 'BIGINT', ordinal: 0 }], source: { kind: 'virtual' } },
  ],
  users: [{ name: 'alice' }, { name: 'bob' }],
  groups: [{ name: 'analysts' }, { name: 'staff' }, { name: 'privacy' }],
  memberships: [
    { group: 'analysts', member: 'user:alice' },
    { group: 'staff', member: 'group:analysts' },
    { group: 'privacy', member: 'user:bob' },
  ],
  idpMappings: [],
  tagKeys: [
    { key: 'pii', values: ['true', 'false'] },
    { key: 'domain', values: ['claims', 'hr'] },
  ],
  tagAssignments: [
    { resource: { level: 'database', catalog: 'lake', database: 'claims' }, key: 'domain', value: 'claims' },
    { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'id' }, key: 'pii', value: 'false' },
    { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'region' }, key: 'pii', value: 'false' },
    { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'ssn' }, key: 'pii', value: 'true' },
    { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'email' }, key: 'pii', value: 'true' },
  ],
  filters: [],
  grants: [],
  guardrails: [],
};

const tableGrant = (id: string, principal: PrincipalRef, permissions: Permission[], extra: Partial<Grant> = {}): Grant => ({
  id,
  principal,
  resource: { kind: 'table', catalog: 'lake', database: 'claims', table: 'members' },
  permissions,
  grantable: [],
  ...extra,
});
const noPii: Guardrail = { name: 'no-pii', actions: ['SELECT'], resources: { pii: ['true'] } };

function world(over: Partial<PolicyWorld>): PolicyWorld {
  return { ...base, ...over };
}

const EVALUATORS: [string, (w: PolicyWorld) => Evaluator][] = [
  ['reference', createReferenceEvaluator],
  ['engine', createEngine],
];

function ask(ev: Evaluator, principal: string, action: string, resource: string, now = NOW): Decision {
  return ev.authorize({ principal: principal as PrincipalRef, action: action as Permission, resource: parseResource(resource) as ResourceRef, now });
}

const codes = (d: Decision): string[] => d.reasons.map((r) => r.code);
const visible = (d: Decision): string[] => (d.columns ?? []).map((c) => c.name);

for (const [name, make] of EVALUATORS) {
  describe(`${name} evaluator`, () => {
    test('deny is the default', () => {
      const d = ask(make(base), 'user:alice', 'SELECT', 'lake.claims.members');
      assert.equal(d.decision, 'deny');
      assert.deepStrictEqual(codes(d), ['NO_GRANT']);
      assert.deepStrictEqual(d.columns, []);
      assert.equal(d.rowFilter && toSql(d.rowFilter), 'FALSE', 'a denied SELECT admits no row, never "all rows"');
    });

    test('reasons are never empty', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])], guardrails: [noPii] }));
      for (const p of ['user:alice', 'user:bob', 'user:nobody', 'group:staff']) {
        for (const a of ['DESCRIBE', 'SELECT', 'INSERT', 'CREATE_TABLE', 'NOPE']) {
          for (const r of ['lake', 'lake.claims', 'lake.claims.members', 'lake.claims.members.ssn', 'lake.x']) {
            assert.ok(ask(ev, p, a, r).reasons.length > 0, `${p} ${a} ${r}`);
          }
        }
      }
    });

    test('a grant to a group the user left stops counting', () => {
      const before = world({ grants: [tableGrant('g1', 'group:staff', ['SELECT'])] });
      assert.equal(ask(make(before), 'user:alice', 'SELECT', 'lake.claims.members').decision, 'allow');
      const after = applyChanges(before, [{ op: 'delete', kind: 'membership', key: 'analysts<user:alice' }]);
      assert.equal(ask(make(after), 'user:alice', 'SELECT', 'lake.claims.members').decision, 'deny');
    });

    test('an expired time-bound grant does not count', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'], { notAfter: '2025-01-15T12:00:00.000Z' })] }));
      assert.equal(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members', NOW - 1).decision, 'allow');
      const d = ask(ev, 'user:alice', 'SELECT', 'lake.claims.members', NOW);
      assert.equal(d.decision, 'deny');
      assert.deepStrictEqual(codes(d), ['NO_GRANT', 'GRANT_EXPIRED']);
    });

    test('a grant whose expiry cannot be read counts as expired', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'], { notAfter: 'someday' })] }));
      assert.equal(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members').decision, 'deny');
    });

    test('a guardrail cannot be bypassed by a second broad grant', () => {
      const ev = make(
        world({
          grants: [
            tableGrant('g1', 'user:alice', ['SELECT']),
            { id: 'g2', principal: 'user:alice', resource: { kind: 'catalog', catalog: 'lake' }, permissions: ['SELECT'], grantable: [] },
            { id: 'g3', principal: 'group:staff', resource: { kind: 'tag', catalog: 'lake', expression: { pii: ['true'] } }, permissions: ['SELECT'], grantable: [] },
          ],
          guardrails: [noPii],
        }),
      );
      const d = ask(ev, 'user:alice', 'SELECT', 'lake.claims.members');
      assert.deepStrictEqual(visible(d), ['id', 'region']);
      assert.deepStrictEqual(d.matchedGrants, ['g1', 'g2']);
      assert.deepStrictEqual(d.deniedBy, ['no-pii']);
      assert.equal(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members.ssn').decision, 'deny');
    });

    test('a tag override on a column does not escape an ancestor-matching guardrail', () => {
      const ev = make(
        world({
          tagAssignments: [...base.tagAssignments, { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'id' }, key: 'domain', value: 'hr' }],
          grants: [tableGrant('g1', 'user:alice', ['SELECT'])],
          guardrails: [{ name: 'claims-only-staff', principals: ['user:alice'], actions: ['SELECT'], resources: { domain: ['claims'] } }],
        }),
      );
      const d = ask(ev, 'user:alice', 'SELECT', 'lake.claims.members.id');
      assert.equal(d.decision, 'deny');
      assert.deepStrictEqual(d.deniedBy, ['claims-only-staff']);
    });

    test('a guardrail strips columns yet allows, and is reported', () => {
      const d = ask(make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])], guardrails: [noPii] })), 'user:alice', 'SELECT', 'lake.claims.members');
      assert.equal(d.decision, 'allow');
      assert.deepStrictEqual(codes(d), ['GRANT', 'GUARDRAIL']);
      assert.deepStrictEqual(visible(d), ['id', 'region']);
    });

    test('`except` exempts, `principals` scopes, and a catalog-scoped guardrail stays home', () => {
      const grants = [tableGrant('g1', 'user:alice', ['SELECT']), tableGrant('g2', 'user:bob', ['SELECT'])];
      const ev1 = make(world({ grants, guardrails: [{ ...noPii, except: ['group:privacy'] }] }));
      assert.deepStrictEqual(visible(ask(ev1, 'user:bob', 'SELECT', 'lake.claims.members')), ['id', 'region', 'ssn', 'email']);
      assert.deepStrictEqual(visible(ask(ev1, 'user:alice', 'SELECT', 'lake.claims.members')), ['id', 'region']);
      const ev2 = make(world({ grants, guardrails: [{ ...noPii, principals: ['group:staff'] }] }));
      assert.deepStrictEqual(visible(ask(ev2, 'user:bob', 'SELECT', 'lake.claims.members')), ['id', 'region', 'ssn', 'email']);
      assert.deepStrictEqual(visible(ask(ev2, 'user:alice', 'SELECT', 'lake.claims.members')), ['id', 'region']);
      const ev3 = make(world({ grants, guardrails: [{ ...noPii, catalog: 'wh' }] }));
      assert.deepStrictEqual(visible(ask(ev3, 'user:alice', 'SELECT', 'lake.claims.members')), ['id', 'region', 'ssn', 'email']);
    });

    test('a guardrail naming a catalog that does not exist matches nothing', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])], guardrails: [{ ...noPii, catalog: 'ghost' }] }));
      assert.deepStrictEqual(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members').deniedBy, []);
    });

    test('a tag grant with pii=false yields exactly the non-PII columns', () => {
      const ev = make(world({ grants: [{ id: 't', principal: 'group:analysts', resource: { kind: 'tag', catalog: 'lake', expression: { pii: ['false'] } }, permissions: ['SELECT'], grantable: [] }] }));
      assert.deepStrictEqual(visible(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members')), ['id', 'region']);
      assert.equal(ask(ev, 'user:alice', 'SELECT', 'wh.claims.members').decision, 'deny', 'a tag grant stays in its catalog');
    });

    test('DESCRIBE is implied by reading a table, up to its catalog', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])] }));
      for (const r of ['lake.claims.members', 'lake.claims', 'lake']) assert.equal(ask(ev, 'user:alice', 'DESCRIBE', r).decision, 'allow', r);
      assert.equal(ask(ev, 'user:alice', 'DESCRIBE', 'wh').decision, 'deny');
    });

    test('NOT_APPLICABLE, UNKNOWN_PRINCIPAL and UNKNOWN_RESOURCE', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])] }));
      assert.deepStrictEqual(codes(ask(ev, 'user:alice', 'SELECT', 'lake.claims')), ['NOT_APPLICABLE']);
      assert.deepStrictEqual(codes(ask(ev, 'user:alice', 'toString', 'lake.claims.members')), ['NOT_APPLICABLE'], 'a hostile action name');
      assert.deepStrictEqual(codes(ask(ev, 'alice', 'SELECT', 'lake.claims.members')), ['UNKNOWN_PRINCIPAL'], 'a ref without its kind');
      assert.deepStrictEqual(codes(ask(ev, 'user:carol', 'SELECT', 'lake.claims.members')), ['UNKNOWN_PRINCIPAL']);
      assert.deepStrictEqual(codes(ask(ev, 'user:alice', 'SELECT', 'lake.claims.nope')), ['UNKNOWN_RESOURCE']);
    });

    test('a grant to a principal that does not exist gives nobody access', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:mallory', ['SELECT'])] }));
      assert.equal(ask(ev, 'user:mallory', 'SELECT', 'lake.claims.members').decision, 'deny');
      assert.deepStrictEqual(ev.whoCanAccess(parseResource('lake.claims.members') as ResourceRef, 'SELECT', NOW), []);
    });

    test('a membership cycle does not hang a decision', () => {
      const ev = make(world({ memberships: [...base.memberships, { group: 'analysts', member: 'group:staff' }], grants: [tableGrant('g1', 'group:staff', ['SELECT'])] }));
      assert.equal(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members').decision, 'allow');
    });

    test('a filter grant whose filter belongs to another table shows nothing', () => {
      const ev = make(
        world({
          filters: [{ name: 'f', catalog: 'wh', database: 'claims', table: 'members', rowFilter: null, predicate: null }],
          grants: [{ id: 'g', principal: 'user:alice', resource: { kind: 'filter', catalog: 'lake', database: 'claims', table: 'members', filter: 'f' }, permissions: ['SELECT'], grantable: [] }],
        }),
      );
      assert.equal(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members').decision, 'deny');
    });

    test('a permission a grant kind cannot carry is ignored, not honoured', () => {
      const ev = make(
        world({
          grants: [{ id: 'g', principal: 'user:alice', resource: { kind: 'columns', catalog: 'lake', database: 'claims', table: 'members', columns: ['id'] }, permissions: ['SELECT', 'DROP'], grantable: [] }],
        }),
      );
      assert.equal(ask(ev, 'user:alice', 'DROP', 'lake.claims.members').decision, 'deny');
    });

    test('mutating one answer does not change the next', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])] }));
      const first = ask(ev, 'user:alice', 'SELECT', 'lake.claims.members');
      try {
        (first.columns as unknown as { name: string; rowFilter: null }[]).push({ name: 'injected', rowFilter: null });
        (first.matchedGrants as string[]).push('forged');
      } catch {
        // frozen shared arrays refuse the write, which is just as good
      }
      const second = ask(ev, 'user:alice', 'SELECT', 'lake.claims.members');
      assert.deepStrictEqual(visible(second), ['id', 'region', 'ssn', 'email']);
      assert.deepStrictEqual(second.matchedGrants, ['g1']);
    });

    test('answers for one principal do not leak to another through caches', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT'])] }));
      for (let i = 0; i < 3; i++) {
        assert.equal(ask(ev, 'user:alice', 'SELECT', 'lake.claims.members').decision, 'allow');
        assert.equal(ask(ev, 'user:bob', 'SELECT', 'lake.claims.members').decision, 'deny');
      }
    });

    test('effective permissions report grantable actions and SELECT columns', () => {
      const ev = make(world({ grants: [tableGrant('g1', 'user:alice', ['SELECT', 'INSERT'], { grantable: ['SELECT'] })], guardrails: [noPii] }));
      const table = ev.effectivePermissions('user:alice', NOW).find((e) => e.resource === 'lake.claims.members');
      assert.deepStrictEqual(table?.permissions, ['DESCRIBE', 'SELECT', 'INSERT']);
      assert.deepStrictEqual(table?.grantable, ['SELECT']);
      assert.deepStrictEqual(table?.columns?.map((c) => c.name), ['id', 'region']);
      assert.deepStrictEqual(ev.effectivePermissions('user:nobody', NOW), []);
    });
  });
}
