import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges } from '../policy/changes.js';
import { EMPTY_WORLD } from '../policy/model.js';
import { seedChanges } from '../../test/access/harness.js';
import { toAccessConfig } from './access-config.js';
import { canApprove, grantFor, matchApproval, matchEligibility, parseScope } from './policies.js';
import { formatDuration, parseDuration } from '../time.js';

const world = applyChanges(EMPTY_WORLD, seedChanges());

const config = toAccessConfig({
  permissionSets: { read: { permissions: ['SELECT'] }, masked: { permissions: ['SELECT'], filter: 'north' } },
  eligibility: {
    broad: { principal: 'group:analysts', scope: { catalogs: ['lake'] }, permissionSets: ['read'], maxDuration: '8h', approvalRequired: false },
    narrow: { principal: 'user:alice', scope: { tables: ['lake.claims.payments'] }, permissionSets: ['read'], maxDuration: '30m', approvalRequired: true, ticketRequired: true },
    tags: { principal: 'group:analysts', scope: { tags: { catalog: 'lake', expression: 'pii=true' } }, permissionSets: ['read'], maxDuration: '1h', approvalRequired: true },
  },
  approval: {
    db: { scope: { databases: ['lake.claims'] }, approverGroups: ['privacy-officers'] },
    strict: { scope: { tables: ['lake.claims.payments'] }, permissionSets: ['read'], approverGroups: ['auditors'], minApprovals: 2 },
  },
});

describe('durations', () => {
  it('parses and prints', () => {
    assert.equal(parseDuration('1h30m'), 5400);
    assert.equal(parseDuration('90s'), 90);
    assert.equal(parseDuration('2d'), 172800);
    for (const bad of ['', '1', 'h', '-1h', '1.5h', '0s', '1y']) assert.equal(parseDuration(bad), null, bad);
    assert.equal(formatDuration(5400), '1h30m');
  });
});

describe('eligibility: most restrictive wins', () => {
  it('combines every matching policy: shortest max duration, approval and ticket if any requires them', () => {
    const v = matchEligibility(world, config, 'user:alice', parseScope('lake.claims.payments'), 'read');
    assert.deepEqual(v?.policies.map((p) => p.name), ['broad', 'narrow']);
    assert.equal(v?.maxDurationSeconds, 1800);
    assert.equal(v?.approvalRequired, true);
    assert.equal(v?.ticketRequired, true);
  });

  it('a policy for another user or another scope does not apply', () => {
    const amy = matchEligibility(world, config, 'user:amy', parseScope('lake.claims.payments'), 'read');
    assert.deepEqual(amy?.policies.map((p) => p.name), ['broad']);
    assert.equal(amy?.approvalRequired, false);
    assert.equal(matchEligibility(world, config, 'user:bob', parseScope('lake.claims'), 'read'), null);
    assert.equal(matchEligibility(world, config, 'user:amy', parseScope('lake.claims'), 'masked'), null);
  });

  it('tag-expression scopes match on effective tags', () => {
    const tagged = applyChanges(world, [
      { op: 'put', kind: 'tagAssignment', entity: { resource: { level: 'table', catalog: 'lake', database: 'finance', table: 'revenue' }, key: 'pii', value: 'true' } },
    ]);
    const v = matchEligibility(tagged, config, 'user:amy', parseScope('lake.finance.revenue'), 'read');
    assert.deepEqual(v?.policies.map((p) => p.name), ['broad', 'tags']);
    assert.equal(v?.maxDurationSeconds, 3600);
  });
});

describe('approval', () => {
  it('every covering policy applies: approvers from all of them, the largest quorum', () => {
    const v = matchApproval(world, config, 'user:alice', parseScope('lake.claims.payments'), 'read');
    assert.deepEqual(v.policies.map((p) => p.name), ['db', 'strict']);
    assert.deepEqual(v.approvers, ['carol', 'craig', 'dana']);
    assert.equal(v.minApprovals, 2);
  });

  it('nobody approves their own request, even inside an approver group', () => {
    const rule = { approverGroups: ['analysts'] };
    assert.equal(canApprove(world, rule, 'user:alice', 'user:alice'), false);
    assert.equal(canApprove(world, rule, 'user:alice', 'user:amy'), true);
    assert.equal(canApprove(world, rule, 'user:alice', 'user:bob'), false);
    const self = matchApproval(world, { approval: [{ name: 'peer', scope: { catalogs: ['lake'] }, permissionSets: '*', approverGroups: ['analysts'], minApprovals: 1 }] }, 'user:alice', parseScope('lake'), 'read');
    assert.deepEqual(self.approvers, ['amy']);
  });
});

describe('grants', () => {
  it('one grant per request, time-bound, on the requested scope', () => {
    const set = config.permissionSets.find((p) => p.name === 'read');
    assert.ok(set !== undefined);
    const rule = { permissionSet: set };
    const g = grantFor({ id: 'ar-1', requester: 'user:amy', scope: 'lake.claims', endAt: '2030-01-01T10:00:00.000Z', rule });
    assert.deepEqual(g, {
      id: 'jit-ar-1',
      principal: 'user:amy',
      resource: { kind: 'database', catalog: 'lake', database: 'claims' },
      permissions: ['SELECT'],
      grantable: [],
      notAfter: '2030-01-01T10:00:00.000Z',
      description: 'just-in-time access request ar-1 (read)',
    });
    const masked = config.permissionSets.find((p) => p.name === 'masked');
    assert.ok(masked !== undefined);
    assert.deepEqual(grantFor({ id: 'ar-2', requester: 'user:amy', scope: 'lake.claims.patient_claims', endAt: '2030-01-01T10:00:00.000Z', rule: { permissionSet: masked } }).resource, {
      kind: 'filter',
      catalog: 'lake',
      database: 'claims',
      table: 'patient_claims',
      filter: 'north',
    });
  });
});

describe('configuration', () => {
  it('refuses unknown permission sets and bad scopes, naming the path', () => {
    assert.throws(() => toAccessConfig({ eligibility: { x: { principal: 'group:a', scope: { databases: ['lake.claims'] }, permissionSets: ['nope'], maxDuration: '1h' } } }), /eligibility\.x\.permissionSets: unknown permission set `nope`/);
    assert.throws(() => toAccessConfig({ permissionSets: { r: { permissions: ['SELECT'] } }, eligibility: { x: { principal: 'group:a', scope: {}, permissionSets: ['r'], maxDuration: '1h' } } }), /a scope needs/);
    assert.throws(() => toAccessConfig({ permissionSets: { r: { permissions: ['SELECT'] } }, eligibility: { x: { principal: 'group:a', scope: { catalogs: ['lake'] }, permissionSets: ['r'], maxDuration: 'forever' } } }), /duration/);
  });
});
