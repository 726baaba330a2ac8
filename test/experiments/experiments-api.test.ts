/**
 * Access experiments over real HTTP on the demo workspace: refusals at
 * creation, enforcement in decisions and the gateway with the experiment's
 * explanation, approval, stop, overlapping runs, stop conditions, the dry run
 * and the report from the security lake.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let alice = '';
let carol = '';

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
  const token = async (name: string) => (await s.ws.services.tokens.createToken({ name: `t-${name}`, principal: `user:${name}`, role: 'user' })).token;
  alice = await token('alice');
  carol = await token('carol');
  const p = await s.call('PUT', '/v1/experiments/policy', { maxDuration: '1h', excluded: ['group:privacy-officers'], production: false });
  assert.equal(p.status, 200, JSON.stringify(p.json));
});

after(async () => {
  await s.close();
});

const template = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  targets: ['user:alice'],
  actions: ['SELECT'],
  scope: 'lake.claims.patient_claims',
  duration: '10m',
  selfService: true,
  ...extra,
});
const decide = (principal = 'user:alice', resource = 'lake.claims.patient_claims') => s.call('POST', '/v1/authorize', { principal, action: 'SELECT', resource });
const query = () => s.call('POST', '/v1/query', { sql: 'SELECT claim_id FROM claims.patient_claims LIMIT 1', format: 'json' }, alice);
const start = async (name: string, body: Record<string, unknown> = {}) => {
  const r = await s.call('POST', '/v1/experiments', { template: name, ...body });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return r.json as { id: string; status: string; endsAt?: string };
};

describe('refused at creation', () => {
  it('refuses a template that targets an excluded principal, directly or through a group, and stores nothing', async () => {
    // threat: a careless operator takes access away from the privacy officers or a break-glass user
    const direct = await s.call('POST', '/v1/experiments/templates', template('hit-privacy', { targets: ['group:privacy-officers'] }));
    assert.equal(direct.status, 403, JSON.stringify(direct.json));
    assert.match(direct.json.error.message, /^targets\[0\]: `group:privacy-officers` is excluded from experiments/);
    const member = await s.call('POST', '/v1/experiments/templates', template('hit-carol', { targets: ['user:alice', 'user:carol'] }));
    assert.equal(member.status, 403, JSON.stringify(member.json));
    assert.match(member.json.error.message, /^targets\[1\]: `user:carol` is a member of `group:privacy-officers`, which is excluded/);
    const own = await s.call('POST', '/v1/experiments/templates', template('hit-bob', { targets: ['user:bob'], excluded: ['group:finance'] }));
    assert.equal(own.status, 403, JSON.stringify(own.json));
    const list = await s.call('GET', '/v1/experiments/templates');
    assert.deepEqual(list.json.templates, []);
  });

  it('refuses a duration over the workspace maximum, at creation and at start', async () => {
    // threat: an experiment that outlasts what the workspace allows (a forgotten, day-long outage)
    const long = await s.call('POST', '/v1/experiments/templates', template('too-long', { duration: '2h' }));
    assert.equal(long.status, 400, JSON.stringify(long.json));
    assert.equal(long.json.error.message, 'duration: 2h exceeds the maximum of 1h set by the workspace experiment policy');
    assert.equal((await s.call('POST', '/v1/experiments/templates', template('fits'))).status, 201);
    const started = await s.call('POST', '/v1/experiments', { template: 'fits', duration: '3h' });
    assert.equal(started.status, 400, JSON.stringify(started.json));
    assert.match(started.json.error.message, /^duration: 3h exceeds the maximum/);
    assert.deepEqual((await s.call('GET', '/v1/experiments')).json.experiments, []);
  });

  it('refuses unknown scopes, columns, monitors and malformed input with the field named, never a 500', async () => {
    for (const [extra, field] of [
      [{ scope: 'lake.nope' }, /^scope: `lake.nope` not found/],
      [{ columns: ['nope'] }, /^columns\[0\]: column `nope` not found/],
      [{ stopConditions: ['no-such-monitor'] }, /^stopConditions\[0\]: monitor `no-such-monitor` not found/],
      [{ share: 0 }, /share/],
      [{ targets: ['user:nobody'] }, /^targets\[0\]: principal `user:nobody` not found/],
      [{ selfService: false }, /^approverGroups: /],
      [{ share: 30 }, /^share: a share picks tables, so it needs a catalog or database scope/],
    ] as const) {
      const r = await s.call('POST', '/v1/experiments/templates', template('bad', extra));
      assert.equal(r.status, 400, `${JSON.stringify(extra)}: ${JSON.stringify(r.json)}`);
      assert.match(r.json.error.message, field);
    }
  });
});

describe('who may run experiments', () => {
  it('refuses a user token that tries to create, start, stop or start as an admin, and lets it see nothing', async () => {
    // threat: any analyst takes a colleague's (or a pipeline's) access away, or dresses up as an admin to do it
    assert.equal((await s.call('POST', '/v1/experiments/templates', template('by-alice'), alice)).status, 403);
    assert.equal((await s.call('POST', '/v1/experiments', { template: 'fits' }, alice)).status, 403);
    const inbox = await s.call('GET', '/v1/experiments', undefined, alice);
    assert.equal(inbox.status, 200, JSON.stringify(inbox.json));
    assert.deepEqual(inbox.json.experiments, [], 'a user who approves nothing sees no run');
    assert.equal((await s.call('PUT', '/v1/experiments/policy', { maxDuration: '30d', production: false }, alice)).status, 403);
    const res = await fetch(`${s.url}/v1/experiments/ex-000000000000/approve`, { method: 'POST', headers: { authorization: `Bearer ${alice}`, 'x-steward-as': 'user:carol' } });
    assert.equal(res.status, 403);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /only admins may act as another principal/);
    assert.equal((await s.call('GET', '/v1/experiments/policy')).json.maxDuration, '1h', 'the policy is unchanged');
  });
});

describe('enforcement', () => {
  it('denies alice in decisions and the gateway, explained as the experiment with its end, and a stop gives back exactly what she had', async () => {
    // threat: the deny is not enforced where data is read, or is not undone
    assert.equal((await s.call('POST', '/v1/experiments/templates', template('claims-outage'))).status, 201);
    const before = await decide();
    assert.equal(before.json.decision, 'allow');
    assert.equal((await query()).status, 200);
    const carolBefore = await decide('user:carol');
    const x = await start('claims-outage');
    assert.equal(x.status, 'running', 'self-service on a non-production workspace starts at once');
    const during = await decide();
    assert.equal(during.json.decision, 'deny');
    assert.equal(during.json.reasons[0].message, `denied by experiment \`claims-outage\` (${x.id}, ends at ${x.endsAt})`);
    const q = await query();
    assert.equal(q.status, 403, JSON.stringify(q.json));
    assert.match(JSON.stringify(q.json), /denied by experiment `claims-outage`/);
    assert.deepEqual((await decide('user:carol')).json, carolBefore.json, 'who is not a target is untouched');
    const stopped = await s.call('POST', `/v1/experiments/${x.id}/stop`, { reason: 'seen enough' });
    assert.equal(stopped.json.status, 'stopped');
    const afterStop = await decide();
    assert.deepEqual(afterStop.json, before.json);
    assert.equal((await query()).status, 200);
    const grs = await s.call('GET', '/v1/guardrails');
    assert.ok(!JSON.stringify(grs.json).includes(x.id), 'no guardrail of the experiment is left');
  });

  it('a policy apply of files written before the run neither lifts its deny nor exports it', async () => {
    // threat: a routine `steward apply` silently ends a running experiment's deny until the sweep puts it back
    assert.equal((await s.call('POST', '/v1/experiments/templates', template('apply-during'))).status, 201);
    const exported = (await s.call('GET', '/v1/policy/export')).json.yaml as string;
    const x = await start('apply-during');
    assert.equal((await decide()).json.decision, 'deny');
    const plan = await s.call('POST', '/v1/policy/plan', { files: [{ file: 'policy.yaml', text: exported }] });
    assert.equal(plan.status, 200, JSON.stringify(plan.json));
    assert.equal(plan.json.changes, 0, plan.json.text);
    const applied = await s.call('POST', '/v1/policy/apply', { files: [{ file: 'policy.yaml', text: exported }] });
    assert.equal(applied.status, 200, JSON.stringify(applied.json));
    assert.equal((await decide()).json.decision, 'deny', 'the deny holds right after the apply');
    assert.ok(!((await s.call('GET', '/v1/policy/export')).json.yaml as string).includes(x.id), 'the export leaves the run out');
    assert.equal((await s.call('POST', `/v1/experiments/${x.id}/stop`, { reason: 'done' })).json.status, 'stopped');
    assert.equal((await decide()).json.decision, 'allow');
  });

  it('overlapping experiments on the same target: each end removes only its own deny', async () => {
    // threat: ending one experiment lifts another one's deny (or a shared deny outlives both)
    await s.call('POST', '/v1/experiments/templates', template('overlap-a', { actions: ['SELECT', 'DESCRIBE'] }));
    await s.call('POST', '/v1/experiments/templates', template('overlap-b', { scope: 'lake.claims' }));
    const a = await start('overlap-a', { duration: '2s' });
    const b = await start('overlap-b');
    const both = await decide();
    assert.deepEqual(both.json.reasons.map((r: { message: string }) => r.message.split(' (')[0]).sort(), ['denied by experiment `overlap-a`', 'denied by experiment `overlap-b`']);
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(a.endsAt as string) - Date.now()) + 100));
    await s.call('POST', '/v1/experiments/sweep', {});
    assert.equal((await s.call('GET', `/v1/experiments/${a.id}`)).json.status, 'ended');
    const onlyB = await decide();
    assert.equal(onlyB.json.decision, 'deny');
    assert.deepEqual(onlyB.json.reasons.map((r: { message: string }) => r.message.split(' (')[0]), ['denied by experiment `overlap-b`']);
    await s.call('POST', `/v1/experiments/${b.id}/stop`, {});
    assert.equal((await decide()).json.decision, 'allow');
  });

  it('the sweep restores a running experiment guardrail an admin deleted, and removes one no running experiment backs', async () => {
    // threat: a careless admin (or a `steward apply` of files that do not mention it) silently ends an experiment early, or leaves a deny that nothing will ever end
    await s.call('POST', '/v1/experiments/templates', template('swept'));
    const x = await start('swept');
    assert.equal((await s.call('DELETE', `/v1/guardrails/experiment-${x.id}`)).status, 200);
    assert.equal((await decide()).json.decision, 'allow');
    const orphan = await s.call('PUT', '/v1/guardrails/experiment-ex-00000000abcd', {
      description: 'experiment `gone` (ex-00000000abcd) ends at 2099-01-01T00:00:00.000Z; denies 100% of its scope',
      principals: ['user:alice'],
      actions: ['DESCRIBE'],
      catalog: 'lake',
      resources: {},
    });
    assert.equal(orphan.status, 200, JSON.stringify(orphan.json));
    // (the server's own sweep, every 30 s, may get there first: what counts is the state after)
    assert.equal((await s.call('POST', '/v1/experiments/sweep', {})).status, 200);
    const names = ((await s.call('GET', '/v1/guardrails')).json.guardrails as { name: string }[]).map((g) => g.name);
    assert.ok(names.includes(`experiment-${x.id}`) && !names.includes('experiment-ex-00000000abcd'), names.join(', '));
    const d = await decide();
    assert.equal(d.json.decision, 'deny');
    assert.match(d.json.reasons[0].message, /^denied by experiment `swept`/);
    await s.call('POST', `/v1/experiments/${x.id}/stop`, {});
    assert.equal((await decide()).json.decision, 'allow');
  });

  it('a production workspace needs approval even for a self-service template, and the starter cannot approve their own run', async () => {
    // threat: an operator turns off a pipeline's access alone in production
    await s.call('PUT', '/v1/experiments/policy', { maxDuration: '1h', excluded: ['group:privacy-officers'], production: true });
    try {
      await s.call('POST', '/v1/experiments/templates', template('approved-outage', { approverGroups: ['privacy-officers'] }));
      const x = await start('approved-outage');
      assert.equal(x.status, 'pending');
      assert.equal((await decide()).json.decision, 'allow', 'nothing is denied before approval');
      // The approver's inbox lists the run; a user who may not approve it does not learn it exists.
      const inbox = await s.call('GET', '/v1/experiments', undefined, carol);
      assert.deepEqual((inbox.json.experiments as { id: string }[]).map((e) => e.id), [x.id]);
      assert.deepEqual((await s.call('GET', '/v1/experiments', undefined, alice)).json.experiments, []);
      const self = await s.call('POST', `/v1/experiments/${x.id}/approve`, {}, alice);
      assert.equal(self.status, 403, JSON.stringify(self.json));
      const ok = await s.call('POST', `/v1/experiments/${x.id}/approve`, {}, carol);
      assert.equal(ok.status, 200, JSON.stringify(ok.json));
      assert.equal(ok.json.status, 'running');
      assert.deepEqual((await s.call('GET', '/v1/experiments', undefined, carol)).json.experiments, [], 'a running run leaves the inbox');
      assert.equal((await decide()).json.decision, 'deny');
      await s.call('POST', `/v1/experiments/${x.id}/stop`, {});
      const none = await s.call('POST', '/v1/experiments/templates', template('nobody-approves', { approverGroups: ['auditors'], minApprovals: 2 }));
      assert.equal(none.status, 201);
      const refused = await s.call('POST', '/v1/experiments', { template: 'nobody-approves' });
      assert.equal(refused.status, 403, JSON.stringify(refused.json));
      assert.match(refused.json.error.message, /needs 2 distinct approver\(s\)/);
    } finally {
      await s.call('PUT', '/v1/experiments/policy', { maxDuration: '1h', excluded: ['group:privacy-officers'], production: false });
    }
  });

  it('a principal excluded while a run awaited approval is never denied by it, also after the sweep rebuilds its guardrail', async () => {
    // threat: the exclusion list checked only at creation, so a break-glass user added later still loses access
    const strict = { maxDuration: '1h', excluded: ['group:privacy-officers'], production: true };
    await s.call('PUT', '/v1/experiments/policy', strict);
    try {
      await s.call('POST', '/v1/experiments/templates', template('analysts-outage', { targets: ['group:analysts'], approverGroups: ['privacy-officers'] }));
      const x = await start('analysts-outage');
      assert.equal(x.status, 'pending');
      await s.call('PUT', '/v1/experiments/policy', { ...strict, excluded: [...strict.excluded, 'user:alice'] });
      const ok = await s.call('POST', `/v1/experiments/${x.id}/approve`, {}, carol);
      assert.equal(ok.json.status, 'running', JSON.stringify(ok.json));
      assert.deepEqual(ok.json.excluded, ['group:privacy-officers', 'user:alice']);
      assert.equal((await decide('group:analysts')).json.decision, 'deny', 'the target is denied');
      assert.equal((await decide()).json.decision, 'allow', 'the excluded member is not');
      await s.call('DELETE', `/v1/guardrails/experiment-${x.id}`);
      await s.call('POST', '/v1/experiments/sweep', {});
      assert.equal((await decide('group:analysts')).json.decision, 'deny', 'restored');
      assert.equal((await decide()).json.decision, 'allow', 'still excluded after the restore');
      await s.call('POST', `/v1/experiments/${x.id}/stop`, {});
    } finally {
      await s.call('PUT', '/v1/experiments/policy', { maxDuration: '1h', excluded: ['group:privacy-officers'], production: false });
    }
  });

  it('the dry run lists the decisions that would change, from the same engine, and stores nothing', async () => {
    // threat: an operator starts an experiment blind to what it takes away
    await s.call('POST', '/v1/experiments/templates', template('dry', { targets: ['group:analysts'], scope: 'lake.claims', actions: ['SELECT'] }));
    const versionBefore = (await s.call('GET', '/v1/guardrails')).json;
    const d = await s.call('POST', '/v1/experiments/dry-run', { template: 'dry' });
    assert.equal(d.status, 200, JSON.stringify(d.json));
    assert.deepEqual(d.json.principals, ['group:analysts', 'user:alice']);
    assert.ok(d.json.entries.some((e: { principal: string; resource: string; before: string; after: string }) => e.principal === 'user:alice' && e.resource === 'lake.claims.patient_claims' && e.before === 'allow' && e.after === 'deny'), JSON.stringify(d.json));
    assert.deepEqual((await s.call('GET', '/v1/guardrails')).json, versionBefore);
    assert.equal((await decide()).json.decision, 'allow');
  });
});

describe('stop conditions and the report', () => {
  it('a stop condition firing ends the experiment early, and the report names it with the refusals, the first refusal and the recovery', async () => {
    // threat: an experiment keeps breaking things after the alarm it was told to respect went off
    const m = await s.call('POST', '/v1/monitors', {
      name: 'claims-refusals',
      sql: "SELECT 1 AS x FROM steward.security.steward WHERE status_id = 2 AND api.operation = 'authorize.SELECT'",
      throttleSeconds: 0,
      action: { kind: 'webhook', url: 'http://127.0.0.1:9/hook' },
    });
    assert.equal(m.status, 201, JSON.stringify(m.json));
    await s.call('POST', '/v1/experiments/templates', template('guarded', { stopConditions: ['claims-refusals'] }));
    const x = await start('guarded');
    assert.equal((await decide()).json.decision, 'deny');
    assert.equal((await decide()).json.decision, 'deny');
    assert.equal((await query()).status, 403);
    await s.call('POST', '/v1/audit/flush', {});
    await s.ws.services.audit?.monitors.run('claims-refusals');
    // The server's own scheduler ends it on its next tick; the sweep route only makes that now.
    await s.call('POST', '/v1/experiments/sweep', {});
    const after = await s.call('GET', `/v1/experiments/${x.id}`);
    assert.equal(after.json.status, 'stopped', JSON.stringify(after.json));
    assert.match(after.json.endReason, /^stop condition: monitor `claims-refusals` fired at /);
    assert.equal((await decide()).json.decision, 'allow');
    const r = await s.call('GET', `/v1/experiments/${x.id}/report`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.refusals.map((e: { principal: string; resource: string; refused: number }) => [e.principal, e.resource, e.refused]), [['user:alice', 'lake.claims.patient_claims', 3]]);
    assert.equal(r.json.totalRefused, 3);
    assert.ok(r.json.timeToFirstRefusalMs >= 0, JSON.stringify(r.json));
    assert.ok(r.json.timeToRecoveryMs >= 0, JSON.stringify(r.json));
    assert.deepEqual(r.json.notRecovered, []);
    assert.ok(r.json.monitorsFired.some((f: { monitor: string; stopCondition: boolean }) => f.monitor === 'claims-refusals' && f.stopCondition));
  });
});

describe('a stop condition that was already alarming', () => {
  it('ends the run when its monitor triggers again, although the earlier alert is still being delivered and no new one is queued', async () => {
    // threat: the alarm the operator chose as a brake fired before the start and is stuck retrying, so the experiment never sees it fire again
    await s.call('POST', '/v1/audit/flush', {});
    const m = await s.call('POST', '/v1/monitors', { name: 'always', sql: 'SELECT 1 AS x FROM steward.security.steward LIMIT 1', throttleSeconds: 0, action: { kind: 'webhook', url: 'http://127.0.0.1:9/hook' } });
    assert.equal(m.status, 201, JSON.stringify(m.json));
    const first = await s.ws.services.audit?.monitors.run('always');
    assert.equal(first?.triggered, true, JSON.stringify(first));
    await s.call('POST', '/v1/experiments/templates', template('braked', { stopConditions: ['always'] }));
    const x = await start('braked');
    assert.equal((await decide()).json.decision, 'deny');
    const again = await s.ws.services.audit?.monitors.run('always');
    assert.equal(again?.pending, true, `the earlier alert is still open, so no new delivery: ${JSON.stringify(again)}`);
    await s.call('POST', '/v1/experiments/sweep', {});
    const after = await s.call('GET', `/v1/experiments/${x.id}`);
    assert.equal(after.json.status, 'stopped', JSON.stringify(after.json));
    assert.match(after.json.endReason, /^stop condition: monitor `always` fired at /);
    assert.equal((await decide()).json.decision, 'allow');
  });
});

describe('OpenAPI', () => {
  it('documents every experiment route with its tag', async () => {
    // threat: clients (and the console) build against an API description that lacks the routes
    const doc = await s.call('GET', '/openapi.json');
    const paths = Object.keys(doc.json.paths as Record<string, unknown>).filter((p) => p.startsWith('/v1/experiments'));
    for (const p of ['/v1/experiments', '/v1/experiments/templates', '/v1/experiments/policy', '/v1/experiments/dry-run', '/v1/experiments/{id}/report', '/v1/experiments/{id}/stop', '/v1/experiments/{id}/approve']) {
      assert.ok(paths.includes(p), `${p} in ${paths.join(', ')}`);
    }
    assert.deepEqual(doc.json.paths['/v1/experiments'].post.tags, ['experiments']);
  });
});
