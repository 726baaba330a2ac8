/**
 * The console's access-experiments page in Chromium, on the demo workspace:
 * an admin starts a run only after seeing its dry run, sees it running,
 * stops it and reads the report from the security lake; free text that
 * someone else wrote (a template's description, a stop reason) shows as text.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { checkA11y, cspViolations, screenshot, signIn, startConsole, type ConsoleHarness } from './support/browser.js';

const PAYLOAD = `<img src=x onerror="window.__xss=(window.__xss||0)+1"><script>window.__xss=1</script>'"`;

let h: ConsoleHarness;
before(async () => {
  h = await startConsole();
  const policy = await h.server.call('PUT', '/v1/experiments/policy', { maxDuration: '1h', excluded: ['group:privacy-officers'], production: false });
  assert.equal(policy.status, 200, JSON.stringify(policy.json));
  const template = await h.server.call('POST', '/v1/experiments/templates', {
    name: 'claims-outage',
    description: `Alice's dashboards without claims ${PAYLOAD}`,
    targets: ['user:alice'],
    actions: ['SELECT'],
    scope: 'lake.claims.patient_claims',
    duration: '10m',
    selfService: true,
  });
  assert.equal(template.status, 201, JSON.stringify(template.json));
});
after(() => h.close());

async function adminPage(at: string): Promise<Page> {
  const { page } = await h.newPage();
  await signIn(page, await h.token('owner', 'admin'), at);
  return page;
}

/** No payload ran, none became an element, and the CSP never had to refuse one. */
async function assertInert(page: Page, where: string): Promise<void> {
  assert.equal(await page.evaluate<unknown>('window.__xss'), undefined, `a payload ran on ${where}`);
  assert.equal(await page.locator('img[src="x"], script:not([src])').count(), 0, `payload markup became elements on ${where}`);
  assert.deepEqual(await cspViolations(page), [], `CSP refusals on ${where}`);
}

const aliceReads = (): ReturnType<ConsoleHarness['server']['call']> =>
  h.server.call('POST', '/v1/authorize', { principal: 'user:alice', action: 'SELECT', resource: 'lake.claims.patient_claims' });

describe('access experiments in the console', () => {
  // Threat: an operator takes a pipeline's access away blind; the page must show the dry run before it offers Start.
  it('an admin starts a run only after its dry run, watches it run, stops it and reads the report', async () => {
    const page = await adminPage('/experiments');
    await page.getByRole('row', { name: /claims-outage/ }).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Start experiment' }).count(), 0, 'Start is offered before any dry run');

    await page.getByRole('button', { name: 'Dry run' }).click();
    const dry = page.getByTestId('dry-run');
    await dry.waitFor();
    const change = dry.getByRole('row', { name: /user:alice/ });
    assert.match(await change.innerText(), /SELECT\s+lake\.claims\.patient_claims\s+allow → deny/);
    // A changed duration is another run: its dry run must be seen first.
    await page.getByLabel('Duration (optional)').fill('5m');
    assert.equal(await page.getByRole('button', { name: 'Start experiment' }).count(), 0, 'Start survived a change to the form');
    await page.getByRole('button', { name: 'Dry run' }).click();
    await dry.waitFor();
    await checkA11y(page, 'experiment dry run');
    await screenshot(page, 'experiments-dry-run', { fullPage: true });

    await page.getByRole('button', { name: 'Start experiment' }).click();
    const detail = page.getByTestId('run-detail');
    await detail.getByTestId('status').filter({ hasText: 'running' }).waitFor();
    const runs = (await h.server.call('GET', '/v1/experiments')).json as { experiments: { id: string; status: string }[] };
    assert.equal(runs.experiments.length, 1);
    const id = runs.experiments[0]!.id;
    assert.equal(runs.experiments[0]!.status, 'running');
    const row = page.getByTestId(`run-${id}`);
    await row.getByText(/^\d+ min \d+ s left$/).waitFor();
    assert.doesNotMatch(await row.innerText(), /60 s left/);
    assert.equal((await aliceReads()).json.decision, 'deny');
    assert.equal((await aliceReads()).json.decision, 'deny');
    // While it runs, the report is there too: the refusals so far, no recovery yet.
    await detail.getByTestId('recovery').filter({ hasText: 'still running' }).waitFor();
    await checkA11y(page, 'experiment running');
    await screenshot(page, 'experiments-running', { fullPage: true });

    await page.getByLabel('Reason').fill(`seen enough ${PAYLOAD}`);
    await page.getByRole('button', { name: 'Stop now' }).click();
    await detail.getByTestId('status').filter({ hasText: 'stopped' }).waitFor();
    assert.equal((await aliceReads()).json.decision, 'allow', 'the deny outlived the stop');
    assert.equal(await detail.getByTestId('end-reason').innerText(), `stopped by user:owner: seen enough ${PAYLOAD}`);
    assert.equal(await page.getByTestId('description').innerText(), `Alice's dashboards without claims ${PAYLOAD}`);

    // The report reads the security lake; refresh until the allow after the stop is in it.
    const report = page.getByTestId('report');
    const refusals = report.getByRole('table', { name: 'Refused decisions by principal and resource' });
    await refusals.getByRole('row', { name: /user:alice/ }).waitFor();
    for (let i = 0; i < 20 && (await report.getByTestId('recovery').innerText()).startsWith('not'); i++) {
      await report.getByRole('button', { name: 'Refresh' }).click();
      await page.waitForTimeout(250);
    }
    const refusal = await refusals.getByRole('row', { name: /user:alice/ }).innerText();
    assert.match(refusal, /lake\.claims\.patient_claims\s+2\s/);
    assert.equal(await report.getByTestId('total-refused').innerText(), '2');
    assert.match(await report.getByTestId('first-refusal').innerText(), /^\d+(\.\d)? m?s$|^\d+ min \d+ s$/);
    assert.match(await report.getByTestId('recovery').innerText(), /^\d+(\.\d)? m?s$|^\d+ min \d+ s$/);
    await assertInert(page, 'experiments page');
    await checkA11y(page, 'experiment report');
    await screenshot(page, 'experiments-report', { fullPage: true });
  });

  // Threat: an operator approves their own outage; approval in the page must go to someone else, and only then does the deny start.
  it('never offers the starter Approve; an approver approves one pending run in the page and rejects another', async () => {
    const template = await h.server.call('POST', '/v1/experiments/templates', {
      name: 'approved-outage',
      targets: ['user:alice'],
      actions: ['SELECT'],
      scope: 'lake.claims.patient_claims',
      duration: '10m',
      approverGroups: ['privacy-officers'],
    });
    assert.equal(template.status, 201, JSON.stringify(template.json));
    const owner = await adminPage('/experiments');
    await owner.getByRole('row', { name: /approved-outage/ }).waitFor();
    await owner.getByLabel('Template', { exact: true }).selectOption('approved-outage');
    await owner.getByRole('button', { name: 'Dry run' }).click();
    await owner.getByRole('button', { name: 'Start experiment' }).click();
    const ownDetail = owner.getByTestId('run-detail');
    await ownDetail.getByTestId('status').filter({ hasText: 'pending' }).waitFor();
    assert.equal(await ownDetail.getByRole('button', { name: 'Approve' }).count(), 0, 'the starter was offered Approve');
    assert.equal((await aliceReads()).json.decision, 'allow', 'a pending run denies nothing');
    const pending = ((await h.server.call('GET', '/v1/experiments')).json as { experiments: { id: string; status: string }[] }).experiments.find((x) => x.status === 'pending');
    assert.ok(pending !== undefined);

    // carol is a privacy officer, the template's approver group, signed in as an ordinary user
    // (as an OpenID Connect sign-in would make her): her page lists the runs awaiting her.
    const { page: carol } = await h.newPage();
    await signIn(carol, await h.token('carol'), '/experiments');
    await carol.getByRole('button', { name: `Open ${pending.id}` }).click();
    const detail = carol.getByTestId('run-detail');
    assert.equal(await detail.getByRole('button', { name: 'Stop now' }).count(), 0, 'stopping is an admin\'s');
    await detail.getByRole('button', { name: 'Approve' }).click();
    // Approved, the run no longer waits for her, so it leaves her inbox.
    await carol.getByText('Nothing waits for you.').waitFor();
    assert.equal((await h.server.call('GET', `/v1/experiments/${pending.id}`)).json.status, 'running');
    assert.equal((await aliceReads()).json.decision, 'deny', 'the approved run does not deny');
    assert.equal((await h.server.call('POST', `/v1/experiments/${pending.id}/stop`, {})).status, 200);

    const second = await h.server.call('POST', '/v1/experiments', { template: 'approved-outage' });
    assert.equal(second.status, 201, JSON.stringify(second.json));
    await carol.getByRole('button', { name: `Open ${second.json.id}` }).click();
    await detail.getByRole('button', { name: 'Reject' }).click();
    await carol.getByText('Nothing waits for you.').waitFor();
    assert.equal((await h.server.call('GET', `/v1/experiments/${second.json.id}`)).json.status, 'rejected');
    assert.equal((await aliceReads()).json.decision, 'allow');
    await assertInert(carol, 'approver view');
    await checkA11y(carol, 'experiment rejected');
  });

  // Threat: the operator watches a stale page: a run its stop condition ended still shows as running, or its report hides the alarm.
  it('shows a run that its stop condition ended as stopped without a reload, with the monitor marked in the report', async () => {
    // Only refusals from now on: earlier tests' refusals are in the lake too, and the server's own
    // monitor tick would otherwise end the run before the page first shows it running.
    const monitor = await h.server.call('POST', '/v1/monitors', {
      name: 'claims-refusals',
      sql: `SELECT 1 AS x FROM steward.security.steward WHERE status_id = 2 AND api.operation = 'authorize.SELECT' AND time >= ${Date.now()}`,
      throttleSeconds: 0,
      action: { kind: 'webhook', url: 'http://127.0.0.1:9/hook' },
    });
    assert.equal(monitor.status, 201, JSON.stringify(monitor.json));
    const template = await h.server.call('POST', '/v1/experiments/templates', {
      name: 'guarded-outage',
      targets: ['user:alice'],
      actions: ['SELECT'],
      scope: 'lake.claims.patient_claims',
      duration: '10m',
      selfService: true,
      stopConditions: ['claims-refusals'],
    });
    assert.equal(template.status, 201, JSON.stringify(template.json));
    const run = await h.server.call('POST', '/v1/experiments', { template: 'guarded-outage' });
    assert.equal(run.status, 201, JSON.stringify(run.json));
    const page = await adminPage('/experiments');
    await page.getByRole('button', { name: `Open ${run.json.id}` }).click();
    const detail = page.getByTestId('run-detail');
    await detail.getByTestId('status').filter({ hasText: 'running' }).waitFor();

    assert.equal((await aliceReads()).json.decision, 'deny');
    await h.server.call('POST', '/v1/audit/flush', {});
    await h.server.ws.services.audit?.monitors.run('claims-refusals');
    await h.server.call('POST', '/v1/experiments/sweep', {});
    // No reload: the page's poll sees the end.
    await detail.getByTestId('status').filter({ hasText: 'stopped' }).waitFor({ timeout: 10_000 });
    assert.match(await detail.getByTestId('end-reason').innerText(), /^stop condition: monitor `claims-refusals` fired at /);
    await detail.getByTestId('monitors-fired').getByText('claims-refusals', { exact: false }).first().waitFor();
    assert.match(await detail.getByTestId('monitors-fired').innerText(), /claims-refusals at .* \(a stop condition of this run\)/);
    await checkA11y(page, 'experiment stopped by a monitor');
  });

  // Threat: a name with markup reaches the page; the API refuses it as a template or principal name, so only free text can carry it.
  it('refuses markup as a template name or a target principal before any page can show it', async () => {
    const r = await h.server.call('POST', '/v1/experiments/templates', { name: PAYLOAD, targets: ['user:alice'], actions: ['SELECT'], scope: 'lake.claims', duration: '10m', selfService: true });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, /^body\.name: must be lowercase/);
    const target = await h.server.call('POST', '/v1/experiments/templates', { name: 'evil-target', targets: [`user:${PAYLOAD}`], actions: ['SELECT'], scope: 'lake.claims', duration: '10m', selfService: true });
    assert.equal(target.status, 400, JSON.stringify(target.json));
    assert.match(target.json.error.message, /^body\.targets\.0: /);
    assert.deepEqual(((await h.server.call('GET', '/v1/experiments/templates')).json as { templates: { name: string }[] }).templates.map((t) => t.name).sort(), ['approved-outage', 'claims-outage', 'guarded-outage']);
  });

  // Threat: an analyst opens the page and learns which pipelines are about to lose access, or starts one.
  it('shows a user who is not an admin only the runs awaiting their approval, and the API lists them nothing else', async () => {
    const alice = await h.token('alice');
    const listed = await h.server.call('GET', '/v1/experiments', undefined, alice);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.json.experiments, [], 'alice approves nothing, so she sees no run');
    const { page } = await h.newPage();
    await signIn(page, alice, '/experiments');
    await page.getByText('Nothing waits for you.').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Dry run' }).count(), 0);
    assert.equal(await page.getByText('claims-outage').count(), 0);
  });
});
