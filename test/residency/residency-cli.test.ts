/**
 * `steward residency check`, `guardrail put --regions` and `warehouse add|update
 * --region` through the built binary against a real server (docs/residency.md).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.js';
import { steward, type CliResult } from '../support/cli.js';

const ENV = `STEWARD_TEST_RESIDENCY_${randomBytes(3).toString('hex').toUpperCase()}`;

describe('residency commands through the binary', () => {
  let s: TestServer;
  let dir: string;
  const cli = (args: string[]): Promise<CliResult> => steward(args, { STEWARD_URL: s.url, STEWARD_TOKEN: s.adminToken });

  before(async () => {
    dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'steward-residency-cli-')));
    for (const d of ['eu', 'us']) {
      await fs.mkdir(path.join(dir, d));
      await fs.writeFile(path.join(dir, d, 'claims.csv'), 'id,amount\n1,10\n');
    }
    s = await startTestServer({ config: () => ({ lakeRegions: { [path.join(dir, 'eu')]: 'eu-west-1', [path.join(dir, 'us')]: 'us-east-1' } }) });
    const ok = async (method: string, p: string, body: unknown): Promise<void> => {
      const r = await s.call(method, p, body);
      assert.ok(r.status < 300, `${p}: ${JSON.stringify(r.json)}`);
    };
    await ok('PUT', '/v1/tag-keys/residency', { values: ['eu', 'us'] });
    await ok('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'members', location: path.join(dir, 'eu', 'claims.csv') });
    await ok('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'stray', location: path.join(dir, 'us', 'claims.csv') });
    await ok('PUT', '/v1/resources/lake.claims/tags/residency', { value: 'eu' });
    process.env[ENV] = 'postgres://nobody@127.0.0.1:1/none';
  });

  after(async () => {
    delete process.env[ENV];
    await s?.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('refuses an enforced guardrail over an existing violation, naming it, and exits non-zero', async () => {
    // Threat: a preventive rule switched on while a table already breaks it.
    const r = await cli(['guardrail', 'put', 'eu-stays', '--resources', 'residency=eu', '--regions', 'eu-*', '--mode', 'enforce']);
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /table `lake\.claims\.stray` at location `.*us\/claims\.csv` \(`us-east-1`\) is outside residency guardrail `eu-stays`.*\[STEWARD_E_RESIDENCY\]/);
  });

  it('refuses `--mode` without `--regions` before sending anything', async () => {
    const r = await cli(['guardrail', 'put', 'half', '--resources', 'residency=eu', '--mode', 'enforce']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /--mode applies to a residency guardrail, give --regions too/);
  });

  it('creates it report-only, and `residency check` prints the violation as a table and exits 0', async () => {
    const put = await cli(['guardrail', 'put', 'eu-stays', '--resources', 'residency=eu', '--regions', 'eu-*', '--mode', 'report-only']);
    assert.equal(put.code, 0, put.stderr);
    const list = await cli(['guardrail', 'list']);
    assert.match(list.stdout, /eu-stays\s+residency: eu-\* \(report-only\)/);
    const r = await cli(['residency', 'check']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^TABLE\s+GUARDRAIL\s+MODE\s+PLACE\s+REGIONS\s+ALLOWED$/);
    assert.equal(lines.length, 2, r.stdout); // the header and one violation
    assert.match(lines[1] ?? '', /^lake\.claims\.stray\s+eu-stays\s+report-only\s+location `.*`\s+us-east-1\s+eu-\*$/);
  });

  it('prints the same with --json', async () => {
    const r = await cli(['residency', 'check', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.guardrails, 1);
    assert.deepEqual(j.violations.map((v: any) => [v.table, v.guardrail, v.mode, v.regions, v.allowed]), [['lake.claims.stray', 'eu-stays', 'report-only', ['us-east-1'], ['eu-*']]]);
  });

  it('stores a warehouse region from `warehouse add|update --region`, and `sync plan` to a us target is refused', async () => {
    // Threat: EU tables synced to a warehouse in another region.
    await s.call('DELETE', '/v1/tables/lake/claims/stray');
    assert.equal((await cli(['guardrail', 'put', 'eu-stays', '--resources', 'residency=eu', '--regions', 'eu-*'])).code, 0, 'enforced once nothing breaks it');
    const add = await cli(['warehouse', 'add', 'dw', '--env', ENV, '--region', 'eu-west-1']);
    assert.equal(add.code, 0, add.stderr);
    const upd = await cli(['warehouse', 'update', 'dw', '--region', 'us-east-1']);
    assert.equal(upd.code, 0, upd.stderr);
    assert.match(upd.stdout, /region: "eu-west-1" -> "us-east-1"/);
    const plan = await cli(['sync', 'plan', 'dw']);
    assert.equal(plan.code, 1, plan.stdout);
    assert.match(plan.stderr, /warehouse target `dw`.*residency guardrail `eu-stays`.*\[STEWARD_E_RESIDENCY\]/);
  });

  it('`residency check` exits 1 when an enforced guardrail is broken (the warehouse target)', async () => {
    const r = await cli(['residency', 'check']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /lake\.claims\.members\s+eu-stays\s+enforce\s+warehouse target `dw`\s+us-east-1\s+eu-\*/);
  });
});
