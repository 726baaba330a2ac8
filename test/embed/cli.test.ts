/**
 * The `steward embed` commands through the built binary, against a real
 * server: the URL printed by `embed token` opens the dashboard for that
 * session, and dashboards as code round-trip through export, plan and apply.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestServer } from '../support/server.js';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { steward } from '../support/cli.js';
import { pageData, startEmbedServer } from './support.js';

let s: TestServer;
let env: NodeJS.ProcessEnv;
before(async () => {
  s = await startEmbedServer();
  env = { STEWARD_URL: s.url, STEWARD_TOKEN: s.adminToken, STEWARD_HOME: path.join(s.home, 'cli') };
});
after(async () => {
  await s?.close();
});

describe('steward embed', () => {
  it('embed token prints a URL that opens the dashboard with only that session rows', async () => {
    // Threat: a preview link that shows more than the tags on the command line allow.
    const r = await steward(['embed', 'token', '--dashboard', 'revenue', '--user', 'NorthAdmin', '--tag', 'hospital=North Hospital', '--tag', 'region=*'], env);
    assert.equal(r.code, 0, r.stderr);
    const url = r.stdout.trim();
    assert.ok(url.startsWith(`${s.url}/embed/dashboards/revenue?token=`), url);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    const claims = pageData(await page.text()).data['claims']!;
    const hospitals = new Set(claims.rows.map((row) => row[claims.columns.indexOf('hospital')]));
    assert.deepEqual([...hospitals], ['North Hospital']);
  });

  it('embed token exits non-zero naming an unknown tag key', async () => {
    // Threat: a mistyped tag silently minted.
    const r = await steward(['embed', 'token', '--dashboard', 'revenue', '--tag', 'hopsital=North Hospital'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /`hopsital`/);
  });

  it('embed rls prints the postgres policy for the application role and says redshift cannot express it', async () => {
    // Threat: an operator believing a redshift warehouse enforces the rule when nothing was created there.
    const pgOut = await steward(['embed', 'rls', '--dashboard', 'revenue', '--role', 'anyhealth_app'], env);
    assert.equal(pgOut.code, 0, pgOut.stderr);
    assert.match(pgOut.stdout, /CREATE POLICY "steward_tags_claims" ON "claims"\."patient_claims" AS RESTRICTIVE FOR SELECT TO "anyhealth_app" USING/);
    assert.match(pgOut.stdout, /current_setting\('steward\.tag\.hospital', true\)/);
    const rs = await steward(['embed', 'rls', '--dashboard', 'revenue', '--role', 'anyhealth_app', '--dialect', 'redshift'], env);
    assert.equal(rs.code, 0, rs.stderr);
    assert.match(rs.stdout, /^-- .*not synced to redshift/);
  });

  it('export, plan and apply round-trip dashboards as code; a swapped delimiter is refused with its path', async () => {
    // Threat: the reference article's swapped payor rule applied from a file.
    const exported = await steward(['embed', 'export'], env);
    assert.equal(exported.code, 0, exported.stderr);
    const file = path.join(s.home, 'dashboards.yaml');
    await fs.writeFile(file, exported.stdout);
    const plan = await steward(['embed', 'plan', file], env);
    assert.equal(plan.code, 0, plan.stderr);
    assert.match(plan.stdout, /= dashboard revenue/);
    const changed = exported.stdout.replace('title: Revenue by hospital', 'title: Revenue by hospital (v2)');
    await fs.writeFile(file, changed);
    assert.match((await steward(['embed', 'plan', file], env)).stdout, /~ dashboard revenue/);
    const applied = await steward(['embed', 'apply', file], env);
    assert.equal(applied.code, 0, applied.stderr);
    assert.equal((await s.call('GET', '/v1/embed/dashboards/revenue')).json.dashboard.title, 'Revenue by hospital (v2)');
    const doc = parseYaml(changed);
    const payor = doc.dashboards.revenue.datasets.claims.rowRule.tagRules[2];
    assert.equal(payor.tagKey, 'payor');
    Object.assign(payor, { multiValueDelimiter: '*', matchAllValue: ',' });
    await fs.writeFile(file, stringifyYaml(doc));
    const refused = await steward(['embed', 'apply', file], env);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /dashboards\.revenue\.datasets\.claims\.rowRule\.tagRules\[2\]\.multiValueDelimiter/);
    assert.equal((await s.call('GET', '/v1/embed/dashboards/revenue')).json.dashboard.title, 'Revenue by hospital (v2)', 'nothing half-written');
  });
});
