/**
 * The personas' journeys through the console in Chromium, on the demo
 * workspace: each page is checked with axe-core, raises no CSP violation,
 * and is photographed for docs/console.md.
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

async function pageAs(name: string, role: 'user' | 'admin' = 'user', at = '/'): Promise<Page> {
  const { page } = await h.newPage();
  await signIn(page, await h.token(name, role), at);
  return page;
}

/** Replaces the editor's SQL as typing would (Playwright's fill() edits a contenteditable through execCommand, which no person does). */
async function setSql(page: Page, sql: string): Promise<void> {
  await page.getByTestId('sql').click();
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(sql);
}

async function clean(page: Page, label: string): Promise<void> {
  assert.deepEqual(await cspViolations(page), [], `CSP violations on ${label}`);
  await checkA11y(page, label);
}

describe('persona journeys', () => {
  it('the owner searches by tag, tags a column and sees who loses access', async () => {
    const page = await pageAs('owner', 'admin');
    await page.getByLabel('Tag expression').fill('pii=true AND domain=claims');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: 'lake.claims.patient_claims.ssn' }).waitFor();
    assert.equal(await page.getByRole('link', { name: /^lake\.claims\.patient_claims\./ }).count(), 2);
    await clean(page, 'catalog search');
    await screenshot(page, 'catalog-search');

    await page.getByRole('link', { name: 'patient_claims', exact: true }).click();
    await page.getByRole('heading', { name: 'Who can SELECT' }).waitFor();
    await page.getByRole('row', { name: /user:alice/ }).waitFor();
    // The effective tag of a column says where it comes from.
    const ssnRow = page.getByRole('row', { name: /^ssn/ });
    await ssnRow.getByText('own').waitFor();
    await page.getByRole('row', { name: /^diagnosis|^amount/ }).first().getByText('from lake.claims', { exact: false }).first().waitFor();

    await page.getByLabel('Column', { exact: true }).selectOption('amount');
    await page.getByLabel('Key').fill('pii');
    await page.getByLabel('Value').fill('true');
    await page.getByRole('button', { name: 'Assign tag' }).click();
    const impact = page.getByTestId('tag-impact');
    await impact.waitFor();
    const text = await impact.innerText();
    assert.match(text, /Lost SELECT on the column: .*user:alice/);
    assert.match(text, /user:north_admin/);
    await clean(page, 'catalog table');
    await screenshot(page, 'catalog-table');
    // Put it back: the other journeys expect the demo's tags.
    assert.equal((await h.server.call('DELETE', '/v1/resources/lake.claims.patient_claims.amount/tags/pii')).status, 200);
  });

  it('the analyst sees hidden columns, runs a refused query with its explanation, then the allowed one', async () => {
    const page = await pageAs('alice', 'user', '/query');
    const hidden = page.getByTestId('hidden-column');
    await hidden.first().waitFor();
    assert.deepEqual((await hidden.allInnerTexts()).map((t) => t.split(' ')[0]).sort(), ['patient_name', 'ssn']);
    assert.match(await hidden.first().innerText(), /hidden by guardrail pii-requires-privacy-officer/);

    await setSql(page, 'SELECT patient_name, amount FROM lake.claims.patient_claims LIMIT 5');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    const refusal = page.getByTestId('refusal');
    await refusal.waitFor();
    const why = await refusal.innerText();
    assert.match(why, /may not read column `patient_name`/);
    assert.match(why, /guardrail `pii-requires-privacy-officer` denies it/);
    await clean(page, 'query refused');
    await screenshot(page, 'query-refused');

    await setSql(page, 'SELECT hospital, count(*) AS claims, sum(amount) AS total FROM lake.claims.patient_claims GROUP BY hospital ORDER BY hospital');
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByText(/^Allowed: \d+ row\(s\)/).waitFor();
    await page.getByRole('cell', { name: 'North Hospital' }).waitFor();
    assert.equal(await refusal.count(), 0);
    await page.getByRole('list', { name: 'Query history' }).getByText('refused', { exact: false }).first().waitFor();
    await clean(page, 'query allowed');
    await screenshot(page, 'query');
  });

  it('keeps the results grid usable at 100k rows: only the rows in view are in the DOM', async () => {
    const page = await pageAs('carol', 'user', '/query');
    await setSql(page, 'SELECT claim_id, hospital, amount, patient_name FROM lake.claims.patient_claims');
    const started = Date.now();
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByText(/^Allowed: 100000 row\(s\)/).waitFor({ timeout: 30_000 }).catch(async (e: unknown) => {
      await screenshot(page, 'debug-grid');
      throw e;
    });
    const rendered = await page.locator('.results-row').count();
    assert.ok(rendered > 0 && rendered < 100, `${rendered} rows in the DOM`);
    const viewport = page.getByRole('table', { name: 'Query results' });
    await viewport.evaluate((el) => {
      el.scrollTop = 26 * 99_990;
      el.dispatchEvent(new Event('scroll'));
    });
    await page.locator('[aria-rowindex="100001"]').waitFor();
    assert.ok(Date.now() - started < 30_000);
  });
});
