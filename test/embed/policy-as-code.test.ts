/**
 * Dashboards in `steward plan / apply / export`: the exported policy carries
 * them and applies back with an empty plan; a `dashboards` section is the
 * complete set; a dashboard that does not fit the world being applied
 * refuses the whole apply, naming the file position; a policy folder without
 * the section leaves dashboards alone.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parse, stringify } from 'yaml';
import type { TestServer } from '../support/server.js';
import { startEmbedServer } from './support.js';

let s: TestServer;
before(async () => {
  s = await startEmbedServer();
});
after(async () => {
  await s?.close();
});

const files = (text: string): { files: { file: string; text: string }[] } => ({ files: [{ file: 'policy.yaml', text }] });

async function exported(): Promise<Record<string, unknown>> {
  const r = await s.call('GET', '/v1/policy/export');
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return parse(r.json.yaml as string) as Record<string, unknown>;
}

async function dashboardIds(): Promise<string[]> {
  const r = await s.call('GET', '/v1/embed/dashboards');
  return (r.json.dashboards as { id: string }[]).map((d) => d.id).sort();
}

describe('dashboards as part of the policy', () => {
  it('exports the stored dashboards, and the export applies back with an empty plan', async () => {
    const doc = await exported();
    assert.ok(doc['dashboards'] !== undefined && 'revenue' in (doc['dashboards'] as object), 'the demo dashboard is in the export');
    const plan = await s.call('POST', '/v1/policy/plan', files(stringify(doc)));
    assert.equal(plan.status, 200, JSON.stringify(plan.json));
    assert.equal(plan.json.changes, 0, plan.json.text);
    assert.deepEqual(plan.json.dashboards, []);
  });

  it('plans and applies a new dashboard, a changed one, and deletes one the section no longer lists', async () => {
    const doc = await exported();
    const dashboards = doc['dashboards'] as Record<string, Record<string, unknown>>;
    const revenue = dashboards['revenue'] as Record<string, unknown>;
    dashboards['revenue-copy'] = { ...revenue, title: 'Revenue (copy)' };
    let plan = await s.call('POST', '/v1/policy/plan', files(stringify(doc)));
    assert.deepEqual(plan.json.dashboards, [{ id: 'revenue-copy', action: 'create' }]);
    assert.match(plan.json.text as string, /^\+ dashboard revenue-copy$/m);
    assert.deepEqual(await dashboardIds(), ['revenue'], 'a plan writes nothing');
    const applied = await s.call('POST', '/v1/policy/apply', files(stringify(doc)));
    assert.equal(applied.status, 200, JSON.stringify(applied.json));
    assert.deepEqual(await dashboardIds(), ['revenue', 'revenue-copy']);

    dashboards['revenue-copy'] = { ...revenue, title: 'Revenue (renamed)' };
    delete dashboards['revenue'];
    plan = await s.call('POST', '/v1/policy/apply', files(stringify(doc)));
    assert.deepEqual(plan.json.dashboards, [
      { id: 'revenue-copy', action: 'change' },
      { id: 'revenue', action: 'delete' },
    ]);
    assert.deepEqual(await dashboardIds(), ['revenue-copy']);
    const got = await s.call('GET', '/v1/embed/dashboards/revenue-copy');
    assert.equal(got.json.dashboard.title, 'Revenue (renamed)');

    // Put the demo back for the other tests.
    dashboards['revenue'] = revenue;
    delete dashboards['revenue-copy'];
    assert.equal((await s.call('POST', '/v1/policy/apply', files(stringify(doc)))).status, 200);
    assert.deepEqual(await dashboardIds(), ['revenue']);
  });

  it('refuses the whole apply when a dashboard runs as a user the same apply removes, naming the file position', async () => {
    // Threat: a policy apply that half-lands, leaving a dashboard that runs as a principal which no longer exists.
    const doc = await exported();
    const users = doc['users'] as Record<string, unknown>;
    const runAs = ((doc['dashboards'] as Record<string, Record<string, unknown>>)['revenue'] as { runAs: string }).runAs.slice('user:'.length);
    const groups = doc['groups'] as Record<string, { members?: string[] }> | undefined;
    for (const g of Object.values(groups ?? {})) if (g.members !== undefined) g.members = g.members.filter((m) => m !== runAs);
    doc['grants'] = (doc['grants'] as { principal: string }[]).filter((g) => g.principal !== `user:${runAs}` && g.principal !== runAs);
    delete users[runAs];
    const before = await s.call('GET', '/v1/users');
    const r = await s.call('POST', '/v1/policy/apply', files(stringify(doc)));
    assert.equal(r.status, 404, JSON.stringify(r.json));
    assert.match(r.json.error.message as string, /^policy\.yaml:\d+:\d+: .*user:/);
    assert.deepEqual((await s.call('GET', '/v1/users')).json, before.json, 'nothing of the apply was written');
    assert.deepEqual(await dashboardIds(), ['revenue']);
  });

  it('leaves dashboards alone when no file has a dashboards section', async () => {
    const doc = await exported();
    delete doc['dashboards'];
    const r = await s.call('POST', '/v1/policy/apply', files(stringify(doc)));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.dashboards, []);
    assert.deepEqual(await dashboardIds(), ['revenue']);
  });

  it('refuses a dashboard declared in two files, naming both places', async () => {
    const doc = await exported();
    const one = stringify({ apiVersion: 'steward/v1', dashboards: doc['dashboards'] });
    const rest = stringify({ ...doc });
    const r = await s.call('POST', '/v1/policy/plan', { files: [{ file: 'a.yaml', text: rest }, { file: 'b.yaml', text: one }] });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json.error), /dashboard `revenue` is already defined at a\.yaml:\d+:\d+/);
  });
});
