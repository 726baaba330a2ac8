/**
 * The cold decision path: the engine with its memo off (what the benchmark
 * times as "cold") and the shortcuts that make it fast must answer exactly
 * like the reference, and the benchmark must not be able to pass memo hits
 * off as cold decisions.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { distinctRequests } from '../../bench/policy.bench.js';
import { createEngine, createEngineWith } from '../../src/policy/engine.js';
import type { PolicyWorld, ResourceRef } from '../../src/policy/model.js';
import { EMPTY_WORLD } from '../../src/policy/model.js';
import { createReferenceEvaluator } from '../../src/policy/reference-evaluator.js';
import { arbWorldSeed, createRng, generateLargeWorld, NOW, normalizeDecision, randomRequests, randomWorld } from '../support/random-world.js';

const RUNS = Math.min(1_000, Number(process.env.STEWARD_PROPERTY_RUNS ?? 1_000));

const columns = [
  { name: 'id', type: 'BIGINT', ordinal: 0 },
  { name: 'ssn', type: 'VARCHAR', ordinal: 1 },
];

/** Two tables tagged pii=true, a guardrail on pii for SELECT and INSERT, and a user holding only INSERT and SELECT table grants. */
function guardedWorld(): PolicyWorld {
  const table = (name: string) => ({ catalog: 'lake', database: 'claims', name, columns, source: { kind: 'virtual' } }) as const;
  const tag = (name: string) => ({ resource: { level: 'table', catalog: 'lake', database: 'claims', table: name } as const, key: 'pii', value: 'true' });
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }],
    databases: [{ catalog: 'lake', name: 'claims' }],
    tables: [table('members'), table('claims')],
    users: [{ name: 'mallory' }],
    tagKeys: [{ key: 'pii', values: ['true'] }],
    tagAssignments: [tag('members'), tag('claims')],
    grants: ['members', 'claims'].map((t) => ({
      id: `g-${t}`,
      principal: 'user:mallory' as const,
      resource: { kind: 'table' as const, catalog: 'lake', database: 'claims', table: t },
      permissions: ['INSERT' as const, 'SELECT' as const],
      grantable: [],
    })),
    guardrails: [{ name: 'no-pii', actions: ['SELECT', 'INSERT'], resources: { pii: ['true'] } }],
  };
}

const ref = (table: string): ResourceRef => ({ level: 'table', catalog: 'lake', database: 'claims', table });

test('the memo-off engine the benchmark times answers exactly like the reference on random worlds', () => {
  // threat: a cold path made fast by a shortcut that turns a deny into an allow
  fc.assert(
    fc.property(arbWorldSeed(), (seed) => {
      const world = randomWorld(seed);
      const engine = createEngineWith(world, { memo: false });
      const reference = createReferenceEvaluator(world);
      for (const req of randomRequests(world, createRng(seed ^ 0xc01d), 6)) {
        const got = JSON.stringify(normalizeDecision(engine.authorize(req)));
        const want = JSON.stringify(normalizeDecision(reference.authorize(req)));
        if (got !== want) assert.deepStrictEqual(JSON.parse(got), JSON.parse(want), `seed ${seed}: ${JSON.stringify(req)}`);
      }
    }),
    { numRuns: RUNS },
  );
});

test('DESCRIBE is not implied by an INSERT grant that a guardrail denies (one-pass DESCRIBE shortcut)', () => {
  // threat: collecting DESCRIBE's implied grants in one pass would count a grant whose action a guardrail forbids
  const world = guardedWorld();
  const req = { principal: 'user:mallory' as const, action: 'DESCRIBE' as const, resource: ref('members'), now: NOW };
  const got = createEngineWith(world, { memo: false }).authorize(req);
  assert.equal(got.decision, 'deny');
  assert.deepStrictEqual(normalizeDecision(got), normalizeDecision(createReferenceEvaluator(world).authorize(req)));
});

test('a caller cannot edit a guardrail denial that other callers share', () => {
  // threat: denials by the same guardrails share one answer; a caller pushing into it would rewrite everyone's
  const engine = createEngineWith(guardedWorld(), { memo: false });
  const first = engine.authorize({ principal: 'user:mallory', action: 'SELECT', resource: ref('members'), now: NOW });
  const second = engine.authorize({ principal: 'user:mallory', action: 'SELECT', resource: ref('claims'), now: NOW });
  assert.deepStrictEqual(first.deniedBy, ['no-pii']);
  assert.throws(() => (first.deniedBy as string[]).push('nothing'), TypeError);
  assert.throws(() => (first.reasons as unknown[]).splice(0, 1), TypeError);
  assert.deepStrictEqual(second.deniedBy, ['no-pii']);
  assert.equal(second.reasons.length, 1);
});

test('with the memo off every repeat is decided afresh, so the benchmark cannot time memo hits as cold', () => {
  // threat: a "cold" figure that is really remembered decisions (the 680k/s of issue #10)
  const world = generateLargeWorld({ tables: 50, columnsPerTable: 4, principals: 20, tagGrants: 20, guardrails: 3, seed: 7 });
  const t = world.tables[0]!;
  const req = { principal: `user:${world.users[0]!.name}` as const, action: 'SELECT' as const, resource: { level: 'table' as const, catalog: t.catalog, database: t.database, table: t.name }, now: NOW };
  const cold = createEngineWith(world, { memo: false });
  const a = cold.authorize(req);
  const b = cold.authorize(req);
  assert.notEqual(a, b, 'the memo-off engine returned a remembered decision');
  assert.deepStrictEqual(a, b);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.reasons), 'a table decision is frozen with or without the memo');
  const warm = createEngine(world);
  assert.equal(warm.authorize(req), warm.authorize(req), 'the default engine serves repeats from its memo');
});

test('the cold benchmark stream never repeats a request', () => {
  // threat: repeats in the "distinct" stream would let lazily built answers pass as cold work
  const world = generateLargeWorld({ tables: 200, columnsPerTable: 5, principals: 30, tagGrants: 20, guardrails: 3, seed: 3 });
  const stream = distinctRequests(world, 5_000, 9);
  const keys = new Set(stream.map((r) => JSON.stringify([r.req.principal, r.req.action, r.req.resource])));
  assert.equal(stream.length, 5_000);
  assert.equal(keys.size, 5_000);
});

/**
 * Tables tagged on a column only, in two catalogs, and principals whose only
 * grants are a live tag grant, an expired one, one in the other catalog, and
 * none under a guardrail: each an edge of the "out of reach" shortcut.
 */
function reachWorld(): PolicyWorld {
  const table = (catalog: string, name: string) => ({ catalog, database: 'claims', name, columns, source: { kind: 'virtual' } }) as const;
  const ssnTag = (catalog: string) => ({ resource: { level: 'column', catalog, database: 'claims', table: 'members', column: 'ssn' } as const, key: 'pii', value: 'true' });
  const tagGrant = (id: string, principal: `user:${string}`, catalog: string, notAfter?: string) => ({
    id,
    principal,
    resource: { kind: 'tag' as const, catalog, expression: { pii: ['true'] } },
    permissions: ['SELECT' as const],
    grantable: [],
    ...(notAfter === undefined ? {} : { notAfter }),
  });
  return {
    ...EMPTY_WORLD,
    catalogs: [{ name: 'lake' }, { name: 'other' }],
    databases: [
      { catalog: 'lake', name: 'claims' },
      { catalog: 'other', name: 'claims' },
    ],
    tables: [table('lake', 'members'), table('lake', 'plain'), table('other', 'members')],
    users: [{ name: 'alice' }, { name: 'bob' }, { name: 'carol' }, { name: 'dave' }],
    tagKeys: [{ key: 'pii', values: ['true'] }],
    tagAssignments: [ssnTag('lake'), ssnTag('other')],
    grants: [tagGrant('g-live', 'user:alice', 'lake'), tagGrant('g-expired', 'user:bob', 'lake', '2024-01-01T00:00:00Z'), tagGrant('g-other', 'user:carol', 'other')],
    guardrails: [{ name: 'no-insert-for-dave', actions: ['INSERT'], resources: {}, principals: ['user:dave'] }],
  };
}

test('a request outside every grant the principal holds is still decided like the reference (column-only tags, expired grants, other catalogs, guardrails)', () => {
  // threat: the out-of-reach shortcut answers NO_GRANT where a column's own tags grant access, drops a
  // GRANT_EXPIRED explanation, or hides the guardrail that denies first
  const world = reachWorld();
  const engine = createEngineWith(world, { memo: false });
  const reference = createReferenceEvaluator(world);
  const members = ref('members');
  const ssn: ResourceRef = { ...members, level: 'column', column: 'ssn' } as ResourceRef;
  const cases = [
    { principal: 'user:alice', action: 'SELECT', resource: members, code: 'GRANT' },
    { principal: 'user:alice', action: 'SELECT', resource: ssn, code: 'GRANT' },
    { principal: 'user:alice', action: 'DESCRIBE', resource: members, code: 'GRANT' },
    { principal: 'user:alice', action: 'SELECT', resource: ref('plain'), code: 'NO_GRANT' },
    { principal: 'user:bob', action: 'SELECT', resource: members, code: 'NO_GRANT', expired: 'g-expired' },
    { principal: 'user:carol', action: 'SELECT', resource: members, code: 'NO_GRANT' },
    { principal: 'user:carol', action: 'SELECT', resource: { ...members, catalog: 'other' }, code: 'GRANT' },
    { principal: 'user:dave', action: 'INSERT', resource: ref('plain'), code: 'GUARDRAIL' },
  ] as const;
  for (const c of cases) {
    const req = { principal: c.principal, action: c.action, resource: c.resource, now: NOW };
    const got = engine.authorize(req);
    assert.deepStrictEqual(normalizeDecision(got), normalizeDecision(reference.authorize(req)), JSON.stringify(req));
    assert.equal(got.reasons[0]?.code, c.code, JSON.stringify(req));
    if ('expired' in c) assert.deepStrictEqual(got.reasons.slice(1).map((r) => (r as { grantId?: string }).grantId), [c.expired]);
  }
});

test('a remembered out-of-reach NO_GRANT cannot be edited by one caller for the next', () => {
  // threat: the shortcut's answer, once remembered, is handed to every later caller; unfrozen, one caller could turn it into an allow for all
  const engine = createEngine(reachWorld());
  const req = { principal: 'user:carol', action: 'SELECT', resource: ref('plain'), now: NOW } as const;
  const first = engine.authorize(req);
  assert.equal(first.reasons[0]?.code, 'NO_GRANT');
  assert.throws(() => {
    (first as { decision: string }).decision = 'allow';
  }, TypeError);
  assert.throws(() => (first.reasons as unknown[]).push({ code: 'GRANT' }), TypeError);
  assert.equal(engine.authorize(req).decision, 'deny');
});
