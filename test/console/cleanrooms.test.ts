/**
 * The console's Clean rooms page in Chromium, on the Scope 3 demo: a member
 * sees its collaborations, runs the reference query through the clean-room
 * API as itself (output constraint applied by the server), sees a refusal
 * with the rule it names, and reads the members' query log; a non-member sees
 * nothing of the collaboration. CSP and axe-core are checked, and the page is
 * screenshotted for docs/cleanrooms.md.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkA11y, cspViolations, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';
import { REFERENCE_QUERY, REFERENCE_RULES } from '../cleanroom/scope3-world.js';

let h: ConsoleHarness;
const room = '/v1/cleanrooms/scope3';
const REFUSED_QUERY = 'SELECT p.item, SUM(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY p.item';

before(async () => {
  h = await startConsole({ demo: false });
  const call = async (method: string, path: string, body: unknown, user?: string): Promise<void> => {
    const r = await h.server.call(method, path, body, user === undefined ? undefined : await h.token(user));
    assert.ok(r.status === 200 || r.status === 201, `${method} ${path}: ${JSON.stringify(r.json)}`);
  };
  await call('POST', '/v1/demo/scope3', {});
  await call('POST', '/v1/users', { name: 'nina' });
  await call('POST', '/v1/cleanrooms', {
    name: 'scope3',
    description: 'Scope 3 emissions per product',
    creator: { name: 'reporting', principal: 'group:reporting-team', abilities: ['query', 'receive'] },
    members: [
      { name: 'purchased-goods', principal: 'group:purchase-team' },
      { name: 'transportation', principal: 'group:transport-team' },
    ],
  }, 'rita');
  for (const u of ['paul', 'tara']) await call('POST', `${room}/accept`, {}, u);
  const tables = [
    ['rita', 'reporting', 'lake.reporting.reporting', ['product', 'ingredient']],
    ['paul', 'purchase', 'lake.purchase.purchase', ['item', 's3_upstream_purchased_good']],
    ['tara', 'transportation', 'lake.transport.transportation', ['item', 's3_upstream_transportation', 'unit']],
  ] as const;
  for (const [user, name, table, columns] of tables) {
    await call('POST', `${room}/tables`, { name, table, columns }, user);
    await call('PUT', `${room}/tables/${name}/rule`, REFERENCE_RULES[name], user);
  }
});
after(() => h.close());

async function runInPage(page: import('playwright-core').Page, sql: string): Promise<void> {
  await page.getByTestId('cleanroom-sql').fill(sql);
  await page.getByRole('button', { name: 'Run' }).click();
}

describe('clean rooms in the console', () => {
  it("shows a non-member none of the collaboration, not even its name", async () => {
    // Threat: an outsider learning that a collaboration exists, who is in it, or what its members ran.
    const { page } = await h.newPage();
    await signIn(page, await h.token('nina'), '/cleanrooms');
    await page.getByTestId('no-cleanrooms').waitFor({ timeout: 30_000 });
    assert.equal(await page.getByText('scope3').count(), 0);
    assert.equal(await page.getByTestId('cleanroom').count(), 0);
  });

  it('explains a refusal by the rule it breaks, then runs the reference query as the reporting member with the thresholded row removed', async () => {
    // Threat: a console that runs queries beside the clean-room API (another principal, no rules) or hides why a query was refused.
    const { page } = await h.newPage();
    await signIn(page, await h.token('rita'), '/cleanrooms');
    await page.getByTestId('cleanroom').waitFor({ timeout: 30_000 });
    await runInPage(page, REFUSED_QUERY);
    const refusal = page.getByTestId('cleanroom-refusal');
    await refusal.waitFor({ timeout: 30_000 });
    assert.match(await refusal.innerText(), /aggregation rule of `purchase`.*join column `item`/s);
    await runInPage(page, REFERENCE_QUERY);
    const status = page.getByTestId('cleanroom-status');
    await status.waitFor({ timeout: 30_000 });
    assert.match(await status.innerText(), /^3 row\(s\); 1 removed by output constraints; rules checked: aggregation rule of `reporting`/);
    const products = await page.locator('[data-testid="cleanroom-result"] tbody tr td:first-child').allInnerTexts();
    assert.deepEqual(products.sort(), ['bread', 'cake', 'soup'], 'tea fails "at least 2 ingredients" and is never shown');

    assert.equal(await page.getByTestId('cleanroom-refusal').count(), 0, 'the refusal is gone once an allowed query ran');
    // The log now shows both runs, newest first, and the refusal's reason.
    await page.locator('[data-testid="cleanroom-log"] li[data-outcome="allowed"]').waitFor({ timeout: 30_000 });
    const outcomes = await page.locator('[data-testid="cleanroom-log"] li').evaluateAll((els) => els.map((e) => e.getAttribute('data-outcome')));
    assert.deepEqual(outcomes, ['allowed', 'refused']);
    assert.match(await page.getByTestId('cleanroom-log').innerText(), /grouping by join column `item` is not allowed/);
    assert.deepEqual(await cspViolations(page), []);
    await checkA11y(page, 'cleanrooms');
    await screenshot(page, 'cleanrooms', { fullPage: true });
  });

  it("shows another member the reporting member's queries in the log, and refuses its own query for lack of the query ability", async () => {
    // Threat: a member without the query ability running queries from the console; members not seeing what was run on their data.
    const { page } = await h.newPage();
    await signIn(page, await h.token('paul'), '/cleanrooms');
    const log = page.locator('[data-testid="cleanroom-log"] li');
    await log.first().waitFor({ timeout: 30_000 });
    assert.ok((await log.count()) >= 2);
    assert.match(await page.getByTestId('cleanroom-log').innerText(), /member reporting \(user:rita\)/);
    await runInPage(page, REFERENCE_QUERY);
    const refusal = page.getByTestId('cleanroom-refusal');
    await refusal.waitFor({ timeout: 30_000 });
    assert.match(await refusal.innerText(), /member `purchased-goods` may not run queries in `scope3`/);
    assert.equal(await page.getByTestId('cleanroom-result').count(), 0, 'no rows for a refused query');
  });
});
