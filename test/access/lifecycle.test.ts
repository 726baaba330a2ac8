/**
 * Requests, approvals, activation and expiry under a controllable clock, on
 * one embedded store: durable timers, reference counting, extension, bad
 * input, personas, the dry run.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { openPglite, type Db } from '../../src/store/db.js';
import { ACCESS_DOC, ADMIN, as, createClock, createHarness, seedChanges, T0, transitionsOf, type Harness } from './harness.js';
import { createAccessService } from '../../src/access/access-service.js';
import { StewardError } from '../../src/errors.js';
import type { PrincipalRef, ResourceRef } from '../../src/policy/model.js';

const H = 3600_000;
const claims: ResourceRef = { level: 'table', catalog: 'lake', database: 'claims', table: 'patient_claims' };
const payments: ResourceRef = { level: 'table', catalog: 'lake', database: 'claims', table: 'payments' };
const ssn: ResourceRef = { level: 'column', catalog: 'lake', database: 'claims', table: 'patient_claims', column: 'ssn' };

let raw: Db;
let h: Harness;

async function decide(principal: PrincipalRef, action: 'SELECT' | 'INSERT', resource: ResourceRef, now: number): Promise<string> {
  const snap = await h.state.snapshot();
  return snap.engine.authorize({ principal, action, resource, now }).decision;
}

async function grantIds(): Promise<string[]> {
  return (await h.state.snapshot()).world.grants.map((g) => g.id).filter((id) => id.startsWith('jit-'));
}

async function refusal(p: Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof StewardError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, pattern);
    return true;
  });
}

before(async () => {
  raw = await openPglite('memory');
});
after(async () => {
  await raw.close();
});
beforeEach(async () => {
  await raw.exec('DROP SCHEMA IF EXISTS steward CASCADE');
  h = await createHarness({ db: raw, clock: createClock(T0) });
});

describe('request → approve → active → ended', () => {
  it('activates on approval with a time-bound jit grant and ends it at the end time', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 3600, justification: 'case 42' });
    assert.equal(r.status, 'pending');
    assert.equal(r.approvalsRequired, 1);
    assert.equal(await decide('user:amy', 'SELECT', payments, T0), 'deny');

    const approved = await h.access.approve(as('carol'), r.id, 'ok');
    assert.equal(approved.status, 'active');
    assert.deepEqual(await grantIds(), [`jit-${r.id}`]);
    const grant = (await h.state.snapshot()).world.grants.find((g) => g.id === `jit-${r.id}`);
    assert.equal(grant?.notAfter, new Date(T0 + H).toISOString());
    assert.equal(await decide('user:amy', 'SELECT', payments, T0 + 1000), 'allow');

    h.clock.set(T0 + H - 1);
    assert.equal(await h.access.runDue(), 0, 'nothing is due before the end time');
    h.clock.set(T0 + H + 10);
    assert.equal(await h.access.runDue(), 1);
    assert.deepEqual(await grantIds(), []);
    assert.equal((await h.access.get(as('amy'), r.id)).status, 'ended');
    assert.deepEqual(
      (await transitionsOf(h.db, r.id)).map((t) => t.action),
      ['access.request', 'access.approve', 'access.schedule', 'access.activate', 'access.end'],
    );
  });

  it('expired access is refused by decisions even when no scheduler ever runs', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims.payments', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    await h.access.approve(as('carol'), r.id);
    // No runDue: the grant is still in the world, but its notAfter has passed.
    assert.deepEqual(await grantIds(), [`jit-${r.id}`]);
    assert.equal(await decide('user:amy', 'SELECT', payments, T0 + 599_000), 'allow');
    const snap = await h.state.snapshot();
    const d = snap.engine.authorize({ principal: 'user:amy', action: 'SELECT', resource: payments, now: T0 + 600_000 });
    assert.equal(d.decision, 'deny');
    assert.ok(d.reasons.some((x) => x.code === 'GRANT_EXPIRED'), JSON.stringify(d.reasons));
  });

  it('a future start is scheduled and activates when its timer fires, also when overdue after a restart', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', startAt: T0 + 2 * H, durationSeconds: 3600, justification: 'later' });
    const s = await h.access.approve(as('carol'), r.id);
    assert.equal(s.status, 'scheduled');
    assert.deepEqual(s.timers.map((t) => t.kind), ['activate']);
    assert.deepEqual(await grantIds(), []);
    // A "restarted process" (a new service over the same store) finds the overdue timer and runs it at once.
    h.clock.set(T0 + 2 * H + 30_000);
    const restarted = h.another();
    assert.equal(await restarted.runDue(), 1);
    assert.equal((await h.access.get(as('amy'), r.id)).status, 'active');
    assert.deepEqual(await grantIds(), [`jit-${r.id}`]);
  });

  it('a scheduled request whose whole window passed while every process was down ends without activating', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', startAt: T0 + H, durationSeconds: 600, justification: 'x' });
    await h.access.approve(as('carol'), r.id);
    h.clock.set(T0 + 5 * H);
    await h.access.runDue();
    const done = await h.access.get(as('amy'), r.id);
    assert.equal(done.status, 'ended');
    assert.ok(!(await transitionsOf(h.db, r.id)).some((t) => t.action === 'access.activate'));
    assert.deepEqual(await grantIds(), []);
  });

  it('a pending request expires when nobody decides in time', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 8 * 3600, justification: 'x' });
    h.clock.set(T0 + 4 * H + 1);
    assert.equal(await h.access.runDue(), 1);
    assert.equal((await h.access.get(as('amy'), r.id)).status, 'expired');
    await refusal(h.access.approve(as('carol'), r.id), 'STEWARD_E_CONFLICT', /expired; no further action/);
  });

  it('self-service (no approval required) activates at once', async () => {
    const r = await h.access.request(as('bob'), { scope: 'lake.finance.revenue', permissionSet: 'read', durationSeconds: 1800, justification: 'close books' });
    assert.equal(r.status, 'active');
    assert.equal(r.approvalsRequired, 0);
  });
});

describe('reference counting, extension, revocation', () => {
  it('overlapping requests: ending one keeps the access the other still grants', async () => {
    const a = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 3600, justification: 'a' });
    const b = await h.access.request(as('amy'), { scope: 'lake.claims.payments', permissionSet: 'read', durationSeconds: 7200, justification: 'b' });
    await h.access.approve(as('carol'), a.id);
    await h.access.approve(as('craig'), b.id);
    assert.deepEqual((await grantIds()).sort(), [`jit-${a.id}`, `jit-${b.id}`].sort());
    h.clock.set(T0 + H + 1);
    await h.access.runDue();
    assert.deepEqual(await grantIds(), [`jit-${b.id}`]);
    assert.equal(await decide('user:amy', 'SELECT', payments, h.clock.now()), 'allow', 'b still grants payments');
    await h.access.revoke(as('carol'), b.id, 'done early');
    assert.deepEqual(await grantIds(), []);
    assert.equal(await decide('user:amy', 'SELECT', payments, h.clock.now()), 'deny');
  });

  it('guardrail lifts ride on each request\'s own grant: overlapping requests, and the guardrail itself is never edited', async () => {
    const a = await h.access.request(as('alice'), { scope: 'lake.claims', permissionSet: 'read-with-pii', durationSeconds: 3600, justification: 'a' });
    const b = await h.access.request(as('alice'), { scope: 'lake.claims', permissionSet: 'read-with-pii', durationSeconds: 7200, justification: 'b' });
    assert.equal(await decide('user:alice', 'SELECT', ssn, T0), 'deny');
    await h.access.approve(as('carol'), a.id);
    await h.access.approve(as('carol'), b.id);
    const world = (await h.state.snapshot()).world;
    assert.deepEqual(world.grants.find((g) => g.id === `jit-${a.id}`)?.liftsGuardrails, ['pii-requires-privacy-officer']);
    assert.deepEqual(world.guardrails[0]?.except, ['group:privacy-officers'], 'no except-list editing');
    assert.equal(await decide('user:alice', 'SELECT', ssn, T0 + 1), 'allow');
    h.clock.set(T0 + H + 1);
    await h.access.runDue();
    assert.equal(await decide('user:alice', 'SELECT', ssn, h.clock.now()), 'allow', 'b still lifts the guardrail');
    h.clock.set(T0 + 2 * H + 1);
    await h.access.runDue();
    assert.equal(await decide('user:alice', 'SELECT', ssn, h.clock.now()), 'deny');
    const gr = (await h.state.snapshot()).world.guardrails[0];
    assert.deepEqual(gr?.except, ['group:privacy-officers']);
    const n = await h.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.access_lifts');
    assert.equal(n.rows[0]?.n, 0, 'no lift bookkeeping is written any more');
  });

  it('crash-safe: with the scheduler stopped and the clock past the end, alice\'s SELECT on ssn is denied', async () => {
    const r = await h.access.request(as('alice'), { scope: 'lake.claims.patient_claims', permissionSet: 'read-with-pii', durationSeconds: 3600, justification: 'case 7' });
    await h.access.approve(as('carol'), r.id);
    assert.equal(await decide('user:alice', 'SELECT', ssn, T0 + H - 1), 'allow', 'lifted until the end');
    // no runDue, no sweep: the grant (and its lift) is still in the world, yet the decision ends it
    h.clock.set(T0 + H);
    assert.deepEqual(await grantIds(), [`jit-${r.id}`], 'nothing removed the grant');
    assert.equal(await decide('user:alice', 'SELECT', ssn, h.clock.now()), 'deny');
    const d = (await h.state.snapshot()).engine.authorize({ principal: 'user:alice', action: 'SELECT', resource: claims, now: h.clock.now() });
    assert.equal(d.decision, 'allow', 'the analysts grant still reads the table');
    assert.deepEqual(d.deniedBy, ['pii-requires-privacy-officer']);
    assert.ok(!(d.columns ?? []).some((c) => c.name === 'ssn' || c.name === 'patient_name'), 'PII stripped again');
  });

  it('a lift is scoped to the request: read-with-pii on payments does not expose ssn on patient_claims', async () => {
    const r = await h.access.request(as('alice'), { scope: 'lake.claims.payments', permissionSet: 'read-with-pii', durationSeconds: 3600, justification: 'payments' });
    await h.access.approve(as('carol'), r.id);
    assert.equal(await decide('user:alice', 'SELECT', payments, T0 + 1), 'allow');
    assert.equal(await decide('user:alice', 'SELECT', ssn, T0 + 1), 'deny');
    const d = (await h.state.snapshot()).engine.authorize({ principal: 'user:alice', action: 'SELECT', resource: payments, now: T0 + 1 });
    assert.ok(!d.reasons.some((x) => x.code === 'GUARDRAIL_LIFTED'), 'nothing to lift on payments');
  });

  it('a guardrail that is not liftable stays in force, and the activation log says so', async () => {
    const gr = (await h.state.snapshot()).world.guardrails[0]!;
    const { liftable: _l, ...fixed } = gr;
    await h.state.change({ actor: 'user:admin', action: 'guardrail.put', resource: gr.name, build: () => [{ op: 'put', kind: 'guardrail', entity: fixed }] });
    const r = await h.access.request(as('alice'), { scope: 'lake.claims', permissionSet: 'read-with-pii', durationSeconds: 3600, justification: 'a' });
    const active = await h.access.approve(as('carol'), r.id);
    assert.equal(active.status, 'active');
    assert.equal((await h.state.snapshot()).world.grants.find((g) => g.id === `jit-${r.id}`)?.liftsGuardrails, undefined);
    assert.equal(await decide('user:alice', 'SELECT', ssn, T0 + 1), 'deny');
    const { rows } = await h.db.query<{ details: { notLifted?: string[] } }>(`SELECT details FROM steward.decision_log WHERE resource = $1 AND action = 'access.activate'`, [`access-request:${r.id}`]);
    assert.deepEqual(rows[0]?.details.notLifted, ['pii-requires-privacy-officer']);
  });

  it('extension by a new approval moves notAfter without a revoke and re-grant', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 3600, justification: 'a' });
    await h.access.approve(as('carol'), r.id);
    const proposed = await h.access.extend(as('amy'), r.id, 1800, 'need more time');
    assert.equal(proposed.status, 'active');
    assert.equal(proposed.extension?.seconds, 1800);
    assert.equal(proposed.endAt, new Date(T0 + H).toISOString(), 'not extended before approval');
    const extended = await h.access.approve(as('craig'), r.id, 'fine');
    assert.equal(extended.endAt, new Date(T0 + 1.5 * H).toISOString());
    assert.equal(extended.extension, undefined);
    const g = (await h.state.snapshot()).world.grants.find((x) => x.id === `jit-${r.id}`);
    assert.equal(g?.notAfter, new Date(T0 + 1.5 * H).toISOString());
    const actions = (await transitionsOf(h.db, r.id)).map((t) => t.action);
    assert.ok(!actions.includes('access.revoke') && actions.filter((a) => a === 'access.activate').length === 1, actions.join(','));
    h.clock.set(T0 + H + 1);
    await h.access.runDue();
    assert.equal((await h.access.get(as('amy'), r.id)).status, 'active', 'the old end timer does not end an extended request');
    h.clock.set(T0 + 1.5 * H + 1);
    await h.access.runDue();
    assert.equal((await h.access.get(as('amy'), r.id)).status, 'ended');
  });

  it('extension beyond the maximum duration names the eligibility policy', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 7 * 3600, justification: 'a' });
    await h.access.approve(as('carol'), r.id);
    await refusal(h.access.extend(as('amy'), r.id, 2 * 3600), 'STEWARD_E_VALIDATION', /over the maximum of 8h set by eligibility policy `analysts-claims`/);
  });

  it('quorum: two distinct approvals, and the same person twice is refused', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'write', durationSeconds: 600, justification: 'fix' });
    assert.equal(r.approvalsRequired, 2);
    const one = await h.access.approve(as('carol'), r.id);
    assert.equal(one.status, 'pending');
    assert.equal(one.approvalsReceived, 1);
    await refusal(h.access.approve(as('carol'), r.id), 'STEWARD_E_CONFLICT', /already decided/);
    const two = await h.access.approve(as('craig'), r.id);
    assert.equal(two.status, 'active');
  });
});

describe('bad input is refused naming the blocking policy', () => {
  it('duration over the maximum (most restrictive policy wins)', async () => {
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 9 * 3600, justification: 'x' }),
      'STEWARD_E_VALIDATION',
      /exceeds the maximum of 8h set by eligibility policy `analysts-claims`/,
    );
    // Two policies cover write on payments: 8h/no ticket and 1h/ticket. The stricter limits win.
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.claims.payments', permissionSet: 'write', durationSeconds: 2 * 3600, ticket: 'T-1', justification: 'x' }),
      'STEWARD_E_VALIDATION',
      /maximum of 1h set by eligibility policy `analysts-claims-strict-write`/,
    );
  });

  it('a missing required ticket', async () => {
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.claims.payments', permissionSet: 'write', durationSeconds: 600, justification: 'x' }),
      'STEWARD_E_VALIDATION',
      /ticket id is required by eligibility policy `analysts-claims-strict-write`/,
    );
  });

  it('a start time in the past beyond the tolerance', async () => {
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', startAt: T0 - H, durationSeconds: 600, justification: 'x' }),
      'STEWARD_E_VALIDATION',
      /in the past/,
    );
    const ok = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', startAt: T0 - 60_000, durationSeconds: 600, justification: 'skew' });
    assert.equal(ok.startAt, new Date(T0).toISOString(), 'a start within the tolerance counts as now');
  });

  it('a scope the requester is not eligible for', async () => {
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.finance', permissionSet: 'read', durationSeconds: 600, justification: 'x' }),
      'STEWARD_E_FORBIDDEN',
      /no eligibility policy lets `user:amy` request `read` on `lake.finance`/,
    );
    await refusal(
      h.access.request(as('erin'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' }),
      'STEWARD_E_FORBIDDEN',
      /no eligibility policy/,
    );
  });

  it('a request nobody could approve is refused when it is made', async () => {
    await h.access.putConfig(ADMIN, {
      ...ACCESS_DOC,
      approval: { 'claims-nobody': { scope: { databases: ['lake.claims'] }, approverGroups: ['empty-approvers'] } },
    });
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' }),
      'STEWARD_E_FORBIDDEN',
      /approval policy `claims-nobody` needs 1 distinct approver\(s\) but its groups \(empty-approvers\) have 0 member/,
    );
    await h.access.putConfig(ADMIN, { ...ACCESS_DOC, approval: {} });
    await refusal(
      h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' }),
      'STEWARD_E_FORBIDDEN',
      /requires approval, but no approval policy covers `read` on `lake.claims`/,
    );
  });

  it('approval by a non-approver, and of your own request (peer approval never includes yourself)', async () => {
    await h.access.putConfig(ADMIN, {
      ...ACCESS_DOC,
      approval: { 'peer-review': { scope: { databases: ['lake.claims'] }, approverGroups: ['analysts'] } },
    });
    const r = await h.access.request(as('alice'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    await refusal(h.access.approve(as('alice'), r.id), 'STEWARD_E_FORBIDDEN', /cannot approve their own request/);
    await refusal(h.access.approve(as('bob'), r.id), 'STEWARD_E_FORBIDDEN', /not an approver for request .* approval policy `peer-review` names group\(s\) analysts/);
    assert.equal((await h.access.approve(as('amy'), r.id)).status, 'active');
  });

  it('every event on every terminal state is refused', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    await h.access.reject(as('carol'), r.id, 'no');
    await refusal(h.access.approve(as('craig'), r.id), 'STEWARD_E_CONFLICT', /rejected; no further action/);
    await refusal(h.access.cancel(as('amy'), r.id), 'STEWARD_E_CONFLICT', /rejected/);
    await refusal(h.access.revoke(as('carol'), r.id), 'STEWARD_E_CONFLICT', /rejected/);
    await refusal(h.access.extend(as('amy'), r.id, 60), 'STEWARD_E_CONFLICT', /rejected/);
    await refusal(h.access.reject(as('craig'), r.id), 'STEWARD_E_CONFLICT', /rejected/);
  });

  it('refusals are written to the decision log with who and why', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    await assert.rejects(h.access.approve(as('bob'), r.id));
    const { rows } = await h.db.query<{ actor: string; reason: string }>(`SELECT actor, reason FROM steward.decision_log WHERE action = 'access.approve' AND result = 'deny'`);
    assert.equal(rows[0]?.actor, 'user:bob');
    assert.match(rows[0]?.reason ?? '', /not an approver/);
  });
});

describe('personas', () => {
  it('each persona sees only what it may', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    const f = await h.access.request(as('bob'), { scope: 'lake.finance', permissionSet: 'read', durationSeconds: 600, justification: 'y' });
    const ids = async (who: string): Promise<string[]> => (await h.access.list(as(who))).map((x) => x.id).sort();
    assert.deepEqual(await ids('amy'), [r.id]);
    assert.deepEqual(await ids('bob'), [f.id]);
    assert.deepEqual(await ids('carol'), [r.id], 'approvers see what they may approve');
    assert.deepEqual(await ids('dana'), [r.id, f.id].sort(), 'auditors see everything');
    assert.deepEqual(await ids('erin'), []);
    await refusal(h.access.get(as('erin'), r.id), 'STEWARD_E_NOT_FOUND', /not found/);
    await refusal(h.access.revoke(as('dana'), f.id), 'STEWARD_E_FORBIDDEN', /may revoke/);
    await refusal(h.access.cancel(as('carol'), r.id), 'STEWARD_E_FORBIDDEN', /only the requester or an admin/);
    await refusal(h.access.putConfig(as('dana'), ACCESS_DOC), 'STEWARD_E_FORBIDDEN', /only admins/);
    assert.deepEqual(await h.access.personas(as('carol')), { principal: 'user:carol', requester: false, approver: true, auditor: false, admin: false });
    assert.deepEqual(await h.access.personas(as('dana')), { principal: 'user:dana', requester: false, approver: false, auditor: true, admin: false });
  });
});

describe('session activity', () => {
  it('links what the requester did while active (gateway queries log details.principal), visible to approvers and auditors', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    await h.state.log([{ actor: 'user:amy', action: 'query', resource: 'lake.claims.payments', result: 'allow', reason: 'before activation' }]);
    await new Promise((res) => setTimeout(res, 5));
    await h.access.approve(as('carol'), r.id);
    await h.state.log([
      { actor: 'user:admin', action: 'query', resource: 'lake.claims.payments', result: 'allow', reason: 'as amy', details: { principal: 'user:amy' } },
      { actor: 'user:bob', action: 'query', resource: 'lake.finance.revenue', result: 'allow', reason: 'someone else' },
    ]);
    const seen = await h.access.activity(as('dana'), r.id);
    assert.deepEqual(seen.map((e) => e.reason), ['as amy']);
    assert.deepEqual((await h.access.activity(as('carol'), r.id)).length, 1);
    await refusal(h.access.activity(as('bob'), r.id), 'STEWARD_E_NOT_FOUND', /not found/);
  });
});

describe('session activity is linked by scope and window', () => {
  // Threat: an auditor reviewing a break-glass session is shown the user's unrelated work (or misses
  // nothing, but drowns in it) because activity was linked by user name alone, not by what was elevated.
  it('keeps the same user\'s activity before the window, after it, and on unrelated tables out of the session', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    const q = (reason: string, tables: string[], grants: string[] = []) => ({
      actor: 'user:amy',
      action: 'query.run',
      resource: tables.join(','),
      result: 'allow' as const,
      reason,
      details: { principal: 'user:amy', tables, ...(grants.length > 0 ? { grants } : {}) },
    });
    await h.state.log([q('before the window', ['lake.claims.payments'])]);
    await h.access.approve(as('carol'), r.id);
    await h.state.log([
      q('elevated read', ['lake.claims.payments'], [`jit-${r.id}`]),
      q('in scope, standing access', ['lake.finance.revenue', 'lake.claims.patient_claims']),
      q('unrelated table', ['lake.finance.revenue']),
      q('a look-alike database', ['lake.claimsx.payments']),
      { actor: 'user:amy', action: 'authorize.SELECT', resource: 'lake.finance.revenue', result: 'deny', reason: 'unrelated authorize' },
      { actor: 'user:bob', action: 'query.run', resource: 'lake.claims.payments', result: 'allow', reason: 'another user in scope', details: { principal: 'user:bob', tables: ['lake.claims.payments'] } },
    ]);
    await h.access.revoke(as('carol'), r.id, 'done');
    await h.state.log([q('after the window', ['lake.claims.payments'])]);
    const seen = await h.access.activity(as('dana'), r.id);
    assert.deepEqual(
      seen.map((e) => [e.reason, e.elevated]),
      [
        ['elevated read', true],
        ['in scope, standing access', false],
      ],
    );
  });
});

describe('dry run and reconciliation', () => {
  it('shows what the request adds: tables, columns, rows', async () => {
    const r = await h.access.request(as('alice'), { scope: 'lake.claims', permissionSet: 'read-with-pii', durationSeconds: 600, justification: 'x' });
    const d = await h.access.dryRun(as('carol'), r.id);
    assert.equal(d.addsNothing, false);
    const claimsEntry = d.entries.find((e) => e.resource === 'lake.claims.patient_claims');
    assert.deepEqual(claimsEntry?.addedColumns, ['patient_name', 'ssn']);
    assert.ok(d.entries.some((e) => e.resource === 'lake.claims.payments' && e.addedPermissions.includes('SELECT')));
    const plain = await h.access.request(as('alice'), { scope: 'lake.claims.patient_claims', permissionSet: 'read', durationSeconds: 600, justification: 'x' });
    const p = await h.access.dryRun(as('carol'), plain.id);
    assert.equal(p.addsNothing, true);
    assert.deepEqual(p.stillDeniedBy, ['pii-requires-privacy-officer']);
  });

  it('the sweep removes jit grants no active request backs and restores missing ones', async () => {
    const r = await h.access.request(as('amy'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 3600, justification: 'x' });
    await h.access.approve(as('carol'), r.id);
    await h.state.change({
      actor: 'test',
      action: 'tamper',
      resource: 'x',
      build: () => [
        { op: 'delete', kind: 'grant', key: `jit-${r.id}` },
        { op: 'put', kind: 'grant', entity: { id: 'jit-ar-orphan', principal: 'user:erin', resource: { kind: 'catalog', catalog: 'lake' }, permissions: ['SELECT'], grantable: [], notAfter: new Date(T0 + H).toISOString() } },
      ],
    });
    const s = await h.access.sweep();
    assert.deepEqual(s, { removed: ['jit-ar-orphan'], restored: [`jit-${r.id}`] });
    assert.deepEqual(await grantIds(), [`jit-${r.id}`]);
    assert.deepEqual(await h.access.sweep(), { removed: [], restored: [] });
  });
});

describe('a second service on the same store', () => {
  it('runs each due timer exactly once when two services race', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await h.access.request(as(i % 2 === 0 ? 'amy' : 'alice'), { scope: 'lake.claims', permissionSet: 'read', durationSeconds: 600 + i, justification: `r${i}` });
      await h.access.approve(as('carol'), r.id);
      ids.push(r.id);
    }
    h.clock.set(T0 + 3600_000);
    const other = createAccessService({ db: h.db, state: h.state, now: h.clock.now });
    const [a, b] = await Promise.all([h.access.runDue(), other.runDue()]);
    assert.equal(a + b, 6);
    for (const id of ids) assert.equal((await transitionsOf(h.db, id)).filter((t) => t.action === 'access.end').length, 1);
    other.close();
  });
});

void seedChanges;
