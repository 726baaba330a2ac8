/**
 * Cross-site scripting through everything the console shows that someone
 * else wrote: table and column names, tag values, query results and
 * justifications. Each payload must show as text; no element it describes
 * may exist, no script may run, and the CSP must not even have had to refuse
 * one (a refusal would mean markup got into the page).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { cspViolations, signIn, startConsole, type ConsoleHarness } from './support/browser.js';

const PAYLOAD = '<img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=1</script>';

let h: ConsoleHarness;
let dir: string;
before(async () => {
  h = await startConsole();
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-xss-'));
  // Parquet files whose values, and (second file) a column name, are markup; the first is registered in lake.claims (carol reads that database).
  const file = path.join(dir, 'evil.parquet');
  const db = await openDuckDb();
  const quoted = PAYLOAD.replaceAll("'", "''");
  await db.run(`COPY (SELECT 1 AS id, '${quoted}' AS note, '${quoted}' AS remark) TO '${file}' (FORMAT parquet)`);
  await db.run(`COPY (SELECT 1 AS "${PAYLOAD.replaceAll('"', '""')}") TO '${path.join(dir, 'evil-column.parquet')}' (FORMAT parquet)`);
  db.close();
  const reg = await h.server.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'evil_notes', location: file });
  assert.equal(reg.status, 201, JSON.stringify(reg.json));
});
after(async () => {
  await h.close();
  await fs.rm(dir, { recursive: true, force: true });
});

/** The page ran no payload, holds no element a payload describes, and the CSP never had to step in. */
async function assertInert(page: Page, where: string): Promise<void> {
  assert.equal(await page.evaluate<unknown>('window.__xss'), undefined, `a payload ran on ${where}`);
  assert.equal(await page.locator('img[src="x"], script:not([src])').count(), 0, `payload markup became elements on ${where}`);
  assert.deepEqual(await cspViolations(page), [], `CSP refusals on ${where}`);
}

async function pageAs(name: string, role: 'user' | 'admin', at: string): Promise<Page> {
  const { page } = await h.newPage();
  await signIn(page, await h.token(name, role), at);
  return page;
}

describe('XSS through data', () => {
  // Threat: a table or column name carrying markup, rendered as HTML in the catalog or the schema tree.
  // Names never reach the console with markup: the API refuses them, so the pages show only identifiers.
  it('refuses markup as a table name or a column name before any page can show it', async () => {
    const table = await h.server.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: PAYLOAD, location: path.join(dir, 'evil.parquet') });
    assert.equal(table.status, 400);
    const column = await h.server.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'evil_column', location: path.join(dir, 'evil-column.parquet') });
    assert.equal(column.status, 422);
    assert.match(column.json.error.message, /is not a plain identifier/);
    const owner = await pageAs('owner', 'admin', '/catalog?table=lake.claims.evil_notes');
    await owner.getByRole('rowheader', { name: 'remark' }).waitFor();
    await assertInert(owner, 'catalog table');
  });

  // Threat: a tag value with markup, or the error that echoes it, rendered as HTML.
  it('refuses markup as a tag value and shows the refusal as text', async () => {
    const owner = await pageAs('owner2', 'admin', '/catalog?table=lake.claims.patient_claims');
    await owner.getByLabel('Value').fill(PAYLOAD);
    await owner.getByRole('button', { name: 'Assign tag' }).click();
    await owner.getByRole('alert').filter({ hasText: 'onerror' }).waitFor();
    await assertInert(owner, 'tag refusal');
  });

  // Threat: query results (cells and column names) are attacker-controlled data.
  it('shows query results and column names as text', async () => {
    // carol, a privacy officer, reads all of lake.claims.
    const page = await pageAs('carol', 'user', '/query');
    await page.getByTestId('sql').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    await page.keyboard.insertText(`SELECT id, note, remark AS "${PAYLOAD.replaceAll('"', '""')}" FROM lake.claims.evil_notes`);
    await page.getByRole('button', { name: 'Run', exact: true }).click();
    await page.getByRole('columnheader', { name: PAYLOAD }).waitFor();
    assert.ok((await page.getByRole('cell', { name: PAYLOAD }).count()) >= 2);
    await assertInert(page, 'query results');
  });

  // Threat: a requester's justification is read by every approver: stored XSS against privacy officers.
  it("shows a requester's justification as text in the approver's inbox", async () => {
    const alice = await h.token('alice');
    const r = await h.server.call(
      'POST',
      '/v1/access/requests',
      { scope: 'lake.claims.patient_claims', permissionSet: 'read-with-pii', duration: '1h', justification: PAYLOAD },
      alice,
    );
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const carol = await pageAs('carol', 'user', '/access');
    const shown = carol.getByTestId('justification');
    await shown.first().waitFor();
    assert.equal(await shown.first().innerText(), PAYLOAD);
    await assertInert(carol, 'approver inbox');
  });
});
