import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PolicyWorld, TagAssignment } from './model.js';
import { EMPTY_WORLD } from './model.js';
import { ancestorsOf, effectiveTags, tagValues } from './tags.js';

const db = { level: 'database', catalog: 'lake', database: 'claims' } as const;
const table = { level: 'table', catalog: 'lake', database: 'claims', table: 'members' } as const;
const ssn = { level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'ssn' } as const;
const id = { ...ssn, column: 'id' } as const;

function world(tagAssignments: TagAssignment[]): PolicyWorld {
  return { ...EMPTY_WORLD, tagAssignments };
}

const w = world([
  { resource: db, key: 'domain', value: 'claims' },
  { resource: db, key: 'confidentiality', value: 'internal' },
  { resource: table, key: 'confidentiality', value: 'secret' },
  { resource: ssn, key: 'pii', value: 'true' },
  { resource: ssn, key: 'domain', value: 'hr' },
]);

test('a database has its own tags', () => {
  assert.deepStrictEqual(tagValues(effectiveTags(w, db)), new Map([['domain', 'claims'], ['confidentiality', 'internal']]));
});

test('a table inherits from its database and overrides key by key', () => {
  assert.deepStrictEqual(tagValues(effectiveTags(w, table)), new Map([['domain', 'claims'], ['confidentiality', 'secret']]));
});

test('a column inherits from its table and overrides key by key', () => {
  assert.deepStrictEqual(tagValues(effectiveTags(w, ssn)), new Map([['domain', 'hr'], ['confidentiality', 'secret'], ['pii', 'true']]));
  assert.deepStrictEqual(tagValues(effectiveTags(w, id)), new Map([['domain', 'claims'], ['confidentiality', 'secret']]));
});

test('every effective value says which resource it came from', () => {
  const t = effectiveTags(w, ssn);
  assert.deepStrictEqual(t.get('confidentiality')?.source, table);
  assert.deepStrictEqual(t.get('domain')?.source, ssn);
  assert.deepStrictEqual(effectiveTags(w, id).get('domain')?.source, db);
});

test('a catalog carries no tags', () => {
  assert.equal(effectiveTags(w, { level: 'catalog', catalog: 'lake' }).size, 0);
});

test('tags of another database with the same table name do not leak', () => {
  assert.equal(effectiveTags(w, { ...table, database: 'sales' }).size, 0);
});

test('when a key is assigned twice to one resource the first assignment wins (validation refuses this)', () => {
  const twice = world([
    { resource: table, key: 'pii', value: 'false' },
    { resource: table, key: 'pii', value: 'true' },
  ]);
  assert.equal(effectiveTags(twice, table).get('pii')?.value, 'false');
});

test('ancestors go nearest first up to the catalog', () => {
  assert.deepStrictEqual(ancestorsOf(ssn), [table, db, { level: 'catalog', catalog: 'lake' }]);
  assert.deepStrictEqual(ancestorsOf({ level: 'catalog', catalog: 'lake' }), []);
});
