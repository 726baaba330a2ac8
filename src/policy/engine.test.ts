import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createEngine } from './engine.js';
import { EMPTY_WORLD } from './model.js';
import { generateLargeWorld, NOW } from '../../test/support/random-world.js';

test('an engine over the empty world denies everything', () => {
  const engine = createEngine(EMPTY_WORLD);
  const d = engine.authorize({ principal: 'user:alice', action: 'SELECT', resource: { level: 'catalog', catalog: 'lake' }, now: NOW });
  assert.equal(d.decision, 'deny');
  assert.deepStrictEqual(engine.effectivePermissions('user:alice', NOW), []);
  assert.deepStrictEqual(engine.whoCanAccess({ level: 'catalog', catalog: 'lake' }, 'DESCRIBE', NOW), []);
});

test('stats count what was indexed and principal sets are cached lazily', () => {
  const world = generateLargeWorld({ tables: 200, columnsPerTable: 5, principals: 50, tagGrants: 40, guardrails: 5, seed: 1 });
  const engine = createEngine(world);
  const s = engine.stats;
  assert.equal(s.tables, 200);
  assert.equal(s.columns, 1000);
  assert.equal(s.tagGrants, 40);
  assert.equal(s.guardrails, 5);
  assert.ok(s.tagSignatures >= 1);
  assert.ok(s.buildMs >= 0);
  assert.equal(s.principalSetsCached, 0);
  const t = world.tables[0]!;
  engine.authorize({ principal: `user:${world.users[0]!.name}`, action: 'SELECT', resource: { level: 'table', catalog: t.catalog, database: t.database, table: t.name }, now: NOW });
  assert.equal(engine.stats.principalSetsCached, 1);
});

test('principalSetOf answers for known principals only', () => {
  const engine = createEngine({ ...EMPTY_WORLD, users: [{ name: 'alice' }], groups: [{ name: 'a' }, { name: 'b' }], memberships: [{ group: 'a', member: 'user:alice' }, { group: 'b', member: 'group:a' }] });
  assert.deepStrictEqual([...(engine.principalSetOf('user:alice') ?? [])].sort(), ['group:a', 'group:b', 'user:alice']);
  assert.equal(engine.principalSetOf('user:bob'), null);
});

test('a caller mutating a remembered decision cannot change the next caller’s answer (memo poisoning)', () => {
  const world = generateLargeWorld({ tables: 50, columnsPerTable: 4, principals: 20, tagGrants: 20, guardrails: 3, seed: 7 });
  const engine = createEngine(world);
  const t = world.tables[0]!;
  const resource = { level: 'table' as const, catalog: t.catalog, database: t.database, table: t.name };
  const principal = `user:${world.users[0]!.name}` as const;
  const first = engine.authorize({ principal, action: 'SELECT', resource, now: NOW });
  assert.throws(() => {
    (first as { decision: string }).decision = 'allow';
  }, TypeError);
  assert.throws(() => {
    (first.reasons as unknown[]).push({ code: 'GRANT' });
  }, TypeError);
  const second = engine.authorize({ principal, action: 'SELECT', resource, now: NOW });
  assert.deepStrictEqual(second, first);
});
