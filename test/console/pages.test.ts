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
import { checkA11y, cspViolations, replaceText, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';
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

/** The editor's text as the document holds it (CodeMirror renders only the lines in view; the tests keep documents short or read the start). */
async function editorText(page: Page, testId: string): Promise<string> {
  return page.getByTestId(testId).innerText();
}

/** Waits until the policy editor holds the exported policy (typing before would be replaced by it). */
async function policyLoaded(page: Page): Promise<void> {
  // Polled from here: the page's CSP forbids the string evaluation waitForFunction would use.
  for (let i = 0; i < 100 && !(await editorText(page, 'policy-yaml')).includes('apiVersion'); i++) await page.waitForTimeout(100);
}

describe('editors', () => {
  it('marks a policy YAML problem at its line and column in the editor, and the problem list moves the cursor there', async () => {
    // Failure stopped: an admin told "line 3, column 9" has to count lines in a textarea, and applies the wrong fix.
    const { page } = await pageAs('yaml-diag-admin', 'admin', '/policy');
    await page.getByTestId('policy-yaml').waitFor();
    await policyLoaded(page);
    await replaceText(page, 'policy-yaml', 'catalogs:\n  - name: lake\n    tags: [unclosed\n');
    await page.getByRole('button', { name: 'Plan' }).click();
    const alert = page.getByRole('alert').filter({ hasText: /policy\.yaml:\d+:\d+/ });
    await alert.waitFor();
    const [, line, column] = /policy\.yaml:(\d+):(\d+)/.exec(await alert.innerText()) ?? [];
    const problems = page.getByRole('list', { name: 'Problems in Policy (policy.yaml)' });
    const jump = problems.getByRole('button', { name: `Line ${line}, column ${column}` });
    await jump.waitFor();
    // The very line the error names is marked in the editor, with the message at its end.
    const marked = page.locator('.cm-problem-line');
    assert.equal(await marked.count(), 1);
    const lines = await page.locator('.cm-line').allInnerTexts();
    assert.equal(lines.findIndex((l) => l.includes('← ')) + 1, Number(line), lines.join(' | '));
    await clean(page, 'policy yaml problems');
    await page.getByTestId('policy-yaml').scrollIntoViewIfNeeded();
    await screenshot(page, 'policy-yaml-problem');
    await jump.click();
    await page.keyboard.type('#');
    assert.ok((await page.locator('.cm-line').nth(Number(line) - 1).innerText()).includes('#'), 'the cursor did not move to the problem');
    // An edit clears the marks: they may no longer point at the right place.
    assert.equal(await marked.count(), 0);
  });

  it('undoes and redoes typing in the YAML and the SQL editors', async () => {
    // Failure stopped: a slip of the keyboard in the policy or a long query cannot be taken back.
    const { page } = await pageAs('undo-admin', 'admin', '/policy');
    await page.getByTestId('policy-yaml').waitFor();
    await policyLoaded(page);
    await replaceText(page, 'policy-yaml', 'users: []\n');
    // Edits further apart than CodeMirror's grouping delay (500 ms) are undone one at a time, as a person types.
    await page.waitForTimeout(700);
    await page.keyboard.press('Control+End');
    await page.keyboard.type('groups: []');
    assert.equal(await editorText(page, 'policy-yaml'), 'users: []\ngroups: []');
    await page.keyboard.press('Control+z');
    assert.equal((await editorText(page, 'policy-yaml')).trim(), 'users: []');
    await page.keyboard.press('Control+y');
    assert.equal(await editorText(page, 'policy-yaml'), 'users: []\ngroups: []');

    await page.getByRole('link', { name: 'Query' }).click();
    await page.getByTestId('sql').waitFor();
    await replaceText(page, 'sql', 'SELECT 1');
    await page.waitForTimeout(700);
    await page.keyboard.type(' AS one');
    assert.equal(await editorText(page, 'sql'), 'SELECT 1 AS one');
    await page.keyboard.press('Control+z');
    assert.equal(await editorText(page, 'sql'), 'SELECT 1');
    await page.keyboard.press('Control+y');
    assert.equal(await editorText(page, 'sql'), 'SELECT 1 AS one');
  });
});

describe('streamed query results', () => {
  it('shows the first rows while the query still runs, and ends at 100k rows with the grid virtualised', async () => {
    // Failure stopped: a grid that stays empty until every row of a long query is in.
    const { page } = await pageAs('carol', 'user', '/query');
    await replaceText(page, 'sql', 'SELECT * FROM lake.claims.patient_claims');
    // Every text the status takes, recorded in the page (page.evaluate goes through DevTools, not the page's CSP).
    await page.getByTestId('sql').waitFor();
    await page.evaluate(`window.__statuses = []; new MutationObserver(() => { const s = document.querySelector('[data-testid=result-status]'); if (s) window.__statuses.push(s.textContent); }).observe(document.body, { subtree: true, childList: true, characterData: true })`);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByText(/^Allowed: 100000 row\(s\) in/).waitFor({ timeout: 30_000 });
    const statuses = await page.evaluate<string[]>('window.__statuses');
    const partial = statuses.map((x) => /: (\d+) row\(s\) so far/.exec(x)?.[1]).filter((x): x is string => x !== undefined).map(Number);
    assert.ok(partial.some((n) => n > 0 && n < 100_000), `no partial result was shown: ${JSON.stringify(statuses.slice(0, 5))}`);
    const rendered = await page.locator('.results-row').count();
    assert.ok(rendered > 0 && rendered < 100, `${rendered} rows in the DOM`);
    await clean(page, 'query streamed');
  });

  it('Cancel stops the query on the server: the slot is freed and the history says cancelled', async () => {
    // Threat: a cancelled query that keeps running on the server until its timeout, holding a connection and a slot.
    const { page } = await pageAs('carol', 'user', '/query');
    // Wide rows (a few kilobytes each): 100k of them take the server many seconds to send, so Cancel lands mid-stream.
    const sql = "SELECT a.*, repeat(b.hospital, 200) AS wide FROM lake.claims.patient_claims a, lake.claims.patient_claims b";
    await replaceText(page, 'sql', sql);
    // Typing opened the completion list (its listbox is reached with the arrow keys from the editor); close it.
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByTestId('result-status').getByText(/so far/).waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByText(/^cancelled: the query was stopped on the server/).waitFor();
    await page.getByTestId('result-status').getByText(/^Cancelled after \d+ row\(s\)/).waitFor();
    const gateway = h.server.ws.services.gateway;
    let entry: { outcome: string; message?: string } | undefined;
    for (let i = 0; i < 50 && entry === undefined; i++) {
      const history = await h.server.call('GET', '/v1/query/history?principal=user:carol&limit=20');
      entry = (history.json.entries as { sql: string; outcome: string; message?: string }[]).find((e) => e.sql === sql);
      if (entry === undefined) await page.waitForTimeout(100);
    }
    assert.deepEqual({ outcome: entry?.outcome, message: entry?.message }, { outcome: 'failed', message: 'query cancelled' });
    assert.equal(gateway?.gateway.limiter.running, 0);
    await clean(page, 'query cancelled');
    await screenshot(page, 'query-cancelled');
  });
});
