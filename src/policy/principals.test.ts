import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Membership } from './model.js';
import { findGroupCycle, membershipGraph, principalSet, splitPrincipal, usersInGroup } from './principals.js';

const memberships: Membership[] = [
  { group: 'analysts', member: 'user:alice' },
  { group: 'staff', member: 'group:analysts' },
  { group: 'everyone', member: 'group:staff' },
  { group: 'staff', member: 'user:bob' },
];

test('the principal set of a user holds every group containing it, transitively', () => {
  const set = principalSet(membershipGraph({ memberships }), 'user:alice');
  assert.deepStrictEqual([...set].sort(), ['group:analysts', 'group:everyone', 'group:staff', 'user:alice']);
});

test('the principal set of a group holds the groups above it, not its members', () => {
  assert.deepStrictEqual([...principalSet(membershipGraph({ memberships }), 'group:staff')].sort(), ['group:everyone', 'group:staff']);
});

test('a user with no membership is alone in its set', () => {
  assert.deepStrictEqual([...principalSet(membershipGraph({ memberships }), 'user:carol')], ['user:carol']);
});

test('the reverse closure lists users of nested groups', () => {
  const g = membershipGraph({ memberships });
  assert.deepStrictEqual(usersInGroup(g, 'everyone'), ['alice', 'bob']);
  assert.deepStrictEqual(usersInGroup(g, 'analysts'), ['alice']);
});

test('a membership cycle does not hang the closure', () => {
  const cyclic: Membership[] = [...memberships, { group: 'analysts', member: 'group:everyone' }];
  const g = membershipGraph({ memberships: cyclic });
  assert.equal(principalSet(g, 'user:alice').size, 4);
  assert.deepStrictEqual(usersInGroup(g, 'staff'), ['alice', 'bob']);
});

test('cycle detection returns the path, starting at its smallest group', () => {
  assert.equal(findGroupCycle({ memberships }), null);
  assert.deepStrictEqual(findGroupCycle({ memberships: [...memberships, { group: 'analysts', member: 'group:everyone' }] }), [
    'analysts',
    'everyone',
    'staff',
    'analysts',
  ]);
  assert.deepStrictEqual(findGroupCycle({ memberships: [{ group: 'solo', member: 'group:solo' }] }), ['solo', 'solo']);
});

test('refs need their kind prefix', () => {
  assert.deepStrictEqual(splitPrincipal('user:alice'), { kind: 'user', name: 'alice' });
  assert.deepStrictEqual(splitPrincipal('group:a'), { kind: 'group', name: 'a' });
  assert.equal(splitPrincipal('alice'), null);
  assert.equal(splitPrincipal('user:'), null);
});
