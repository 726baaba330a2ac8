/**
 * Dashboards in the console for provisioned users: the demo's "Revenue by
 * hospital" run as the signed-in user, so north_admin sees only North
 * Hospital and alice every hospital; a user who may read none of its tables
 * neither sees it listed nor opens it by id. Checked over the API, against
 * the gateway, and in Chromium (axe, CSP, screenshot for docs/console.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkA11y, cspViolations, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';

let h: ConsoleHarness;
before(async () => {
  h = await startConsole();
});
after(() => h.close());

interface ViewJson {
  dashboard: { id: string };
  data: Record<string, { columns: string[]; rows: unknown[][] } | { error: { code: string } }>;
}

async function viewAs(name: string): Promise<{ status: number; json: ViewJson }> {
  return h.server.call('GET', '/v1/dashboards/revenue/view', undefined, await h.token(name, 'user'));
}

function hospitals(v: ViewJson): string[] {
  const ds = v.data['claims'];
  assert.ok(ds !== undefined && !('error' in ds), JSON.stringify(ds));
  const i = ds.columns.indexOf('hospital');
  return [...new Set(ds.rows.map((r) => String(r[i])))].sort();
}

function revenue(v: ViewJson): number {
  const ds = v.data['claims'] as { columns: string[]; rows: unknown[][] };
  const i = ds.columns.indexOf('revenue');
  return ds.rows.reduce((s, r) => s + Number(r[i]), 0);
}

describe('dashboards in the console', () => {
  it("runs the dashboard as the viewer: north_admin's row filter holds, not the dashboard's runAs", async () => {
    // Threat: a console view that runs as the dashboard's runAs and shows a provisioned user rows its own grants hide.
    const north = await viewAs('north_admin');
    assert.equal(north.status, 200, JSON.stringify(north.json));
    assert.deepEqual(hospitals(north.json), ['North Hospital']);
    const alice = await viewAs('alice');
    assert.ok(hospitals(alice.json).length > 1, 'alice reads every hospital');
    // The same rows the gateway gives the user for the dataset's SQL.
    const q = await h.server.call('POST', '/v1/query', { sql: 'SELECT sum(amount) AS revenue FROM lake.claims.patient_claims', format: 'json' }, await h.token('north_admin', 'user'));
    assert.equal(q.status, 200, JSON.stringify(q.json));
    assert.ok(Math.abs(Number(q.json.rows[0].revenue) - revenue(north.json)) < 0.01, `${q.json.rows[0].revenue} vs ${revenue(north.json)}`);
  });

  it('neither lists nor opens the dashboard for a user who may read none of its tables', async () => {
    // Threat: learning a dashboard's data, or that it exists, by guessing its id.
    const erin = await h.token('erin', 'user');
    const listed = await h.server.call('GET', '/v1/dashboards', undefined, erin);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.dashboards, []);
    const opened = await h.server.call('GET', '/v1/dashboards/revenue/view', undefined, erin);
    assert.equal(opened.status, 404, JSON.stringify(opened.json));
    assert.ok(!JSON.stringify(opened.json).includes('Hospital'));
  });

  it('draws the visuals in Chromium for north_admin, with the North Hospital total', async () => {
    const { page } = await h.newPage();
    await signIn(page, await h.token('north_admin', 'user'), '/dashboards');
    const dash = page.getByTestId('dashboard');
    await dash.waitFor({ timeout: 30_000 });
    await page.getByTestId('dashboard-chart').first().waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('[data-visual] canvas').count() >= 2, true, 'the bar and line charts are drawn');
    const kpi = await page.locator('[data-visual="total"] .kpi').innerText();
    const expected = Math.round(revenue((await viewAs('north_admin')).json)).toLocaleString('en-US');
    assert.equal(kpi, expected);
    assert.deepEqual(await cspViolations(page), []);
    await checkA11y(page, 'dashboards');
    await screenshot(page, 'dashboards', { fullPage: true });
  });
});
