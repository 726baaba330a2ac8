/**
 * Residency guardrails through the real app (docs/residency.md): lake folders
 * marked eu and us, a `residency` tag, and every place data may land.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let dir: string;
const EU = (...p: string[]): string => path.join(dir, 'eu', ...p);
const US = (...p: string[]): string => path.join(dir, 'us', ...p);

before(async () => {
  dir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'steward-residency-')));
  for (const d of ['eu', 'us', 'eu-copy', 'EU', 'mixed']) await fs.mkdir(path.join(dir, d), { recursive: true });
  for (const d of ['eu', 'us', 'eu-copy', 'EU']) await fs.writeFile(path.join(dir, d, 'claims.csv'), 'id,amount\n1,10\n2,20\n');
  await fs.writeFile(path.join(dir, 'mixed', 'own.csv'), 'id,amount\n3,30\n');
  s = await startTestServer({
    config: () => ({
      // a trailing slash in configuration names the same folder
      lakeRegions: { [`${dir}/eu/`.replace(/\/+$/, '')]: 'eu-west-1', [path.join(dir, 'us')]: 'us-east-1' },
      trinoRegions: { '*': 'us-east-1', eulake: 'eu-west-1' },
      trinoCatalogs: { eulake: 'lake' },
    }),
  });
  const ok = async (method: string, p: string, body?: unknown): Promise<void> => {
    const r = await s.call(method, p, body);
    assert.ok(r.status < 300, `${method} ${p}: ${r.status} ${JSON.stringify(r.json)}`);
  };
  await ok('PUT', '/v1/tag-keys/residency', { values: ['eu', 'us'] });
  await ok('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'members', location: EU('claims.csv') });
  await ok('POST', '/v1/tables/lake', { catalog: 'lake', database: 'public', table: 'rates', location: US('claims.csv') });
  await ok('PUT', '/v1/resources/lake.claims/tags/residency', { value: 'eu' });
  await ok('PUT', '/v1/guardrails/eu-data-stays', { resources: 'residency=eu', residency: { regions: ['eu-*'], mode: 'enforce' } });
});

after(async () => {
  await s?.close();
  await fs.rm(dir, { recursive: true, force: true });
});

const register = (table: string, location: string, extra: Record<string, unknown> = {}) =>
  s.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table, location, format: 'csv', ...extra });

async function assertRefused(r: { status: number; json: any }, guardrail = 'eu-data-stays'): Promise<void> {
  assert.equal(r.status, 403, JSON.stringify(r.json));
  assert.equal(r.json.error.code, 'STEWARD_E_RESIDENCY');
  assert.match(r.json.error.message, new RegExp(`guardrail \`${guardrail}\``));
}

async function tableNames(): Promise<string[]> {
  return (await s.ws.services.state.snapshot()).world.tables.map((t) => `${t.catalog}.${t.database}.${t.name}`);
}

describe('policy: a residency guardrail is a guardrail kind, stored as policy', () => {
  it('lists it with its regions and mode, and exports it as YAML without actions', async () => {
    const r = await s.call('GET', '/v1/guardrails');
    const g = r.json.guardrails.find((x: any) => x.name === 'eu-data-stays');
    assert.deepEqual(g.residency, { regions: ['eu-*'], mode: 'enforce' });
    assert.equal(g.actions, undefined);
  });

  it('refuses a residency guardrail that also denies actions, naming the field', async () => {
    // Threat: a careless admin mixing a deny rule into a residency rule, so neither means what it says.
    const r = await s.call('PUT', '/v1/guardrails/mixed', { resources: 'residency=eu', actions: ['SELECT'], residency: { regions: ['eu-*'] } });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json.error), /actions/);
  });

  it('refuses a region pattern that is not one (uppercase is folded, a path or a regex is refused)', async () => {
    // Threat: a pattern like `.*` read as a regular expression admitting every region.
    for (const bad of ['.*', 'eu/west', 'eu west']) {
      const r = await s.call('PUT', '/v1/guardrails/bad', { resources: 'residency=eu', residency: { regions: [bad] } });
      assert.equal(r.status, 400, `${bad}: ${JSON.stringify(r.json)}`);
    }
    assert.equal((await tableNames()).length, 2);
  });
});

describe('enforcement: registering and moving tables', () => {
  it('refuses registering a residency=eu table (inherited from its database) in a us folder, naming the guardrail', async () => {
    // Threat: EU personal data registered over files that live in the US.
    await assertRefused(await register('leak', US('claims.csv')));
    assert.ok(!(await tableNames()).includes('lake.claims.leak'), 'nothing half-written');
  });

  it('admits the same table in an eu folder', async () => {
    const r = await register('members_copy', EU('claims.csv'));
    assert.equal(r.status, 201, JSON.stringify(r.json));
  });

  it('refuses moving an eu table to a us folder, and keeps its location', async () => {
    // Threat: re-registering (replace) an accepted table over another region's files.
    await assertRefused(await register('members', US('claims.csv'), { replace: true }));
    const t = (await s.ws.services.state.snapshot()).world.tables.find((x) => x.name === 'members');
    assert.equal(t?.source.kind === 'lake' ? t.source.location : '', EU('claims.csv'));
  });

  it('refuses tagging a us-resident table residency=eu', async () => {
    // Threat: the tag arrives after the table, so a check at registration alone would miss it.
    await assertRefused(await s.call('PUT', '/v1/resources/lake.public.rates/tags/residency', { value: 'eu' }));
  });

  it('refuses tagging one column of a us-resident table residency=eu: the column lives in the table files', async () => {
    await assertRefused(await s.call('PUT', '/v1/resources/lake.public.rates.amount/tags/residency', { value: 'eu' }));
  });
});

describe('path tricks', () => {
  it('refuses `..` climbing out of the eu folder into the us folder', async () => {
    // Threat: `eu/../us/claims.csv` starts with the eu folder's text.
    await assertRefused(await register('dotdot', `${EU()}/../us/claims.csv`));
  });

  it('refuses a symlink in the eu folder that points at a us file', async () => {
    // Threat: the name is in eu, the bytes are in us.
    await fs.symlink(US('claims.csv'), EU('link.csv'));
    try {
      await assertRefused(await register('linked', EU('link.csv')));
    } finally {
      await fs.rm(EU('link.csv'));
    }
  });

  it('refuses a symlinked folder inside the eu folder that leads to the us folder', async () => {
    await fs.symlink(US(), EU('sub'));
    try {
      await assertRefused(await register('linked_dir', EU('sub', 'claims.csv')));
    } finally {
      await fs.rm(EU('sub'));
    }
  });

  it('refuses an eu glob when a file it matches is a symlink to the us folder', async () => {
    // Threat: the glob's folder is in eu, but a matching file's bytes are not.
    await fs.mkdir(EU('parts'));
    await fs.writeFile(EU('parts', 'a.csv'), 'id,amount\n1,1\n');
    await fs.symlink(US('claims.csv'), EU('parts', 'b.csv'));
    try {
      await assertRefused(await register('parts', EU('parts', '*.csv')));
    } finally {
      await fs.rm(EU('parts'), { recursive: true });
    }
  });

  it('refuses a glob spanning the eu and us folders', async () => {
    // Threat: `*/claims.csv` reads both regions at once.
    await assertRefused(await register('everywhere', path.join(dir, '*', 'claims.csv')));
  });

  it('refuses `eu-copy`, a folder whose name merely starts with `eu`', async () => {
    // Threat: a prefix match on text (`startsWith`) that treats eu-copy as inside eu.
    await assertRefused(await register('copy', path.join(dir, 'eu-copy', 'claims.csv')));
  });

  it('refuses `EU`, a folder differing only in case, on a case-sensitive file system', async () => {
    // Threat: a case-insensitive comparison that treats another folder as the marked one.
    await assertRefused(await register('upper', path.join(dir, 'EU', 'claims.csv')));
  });

  it('admits a trailing slash and `.` segments that stay inside the eu folder', async () => {
    const r = await register('dotted', `${EU()}/./claims.csv`);
    assert.equal(r.status, 201, JSON.stringify(r.json));
  });
});

describe('warehouse targets and Trino', () => {
  before(async () => {
    process.env['STEWARD_RESIDENCY_TEST_URL'] = 'postgres://nobody@127.0.0.1:1/none';
  });
  after(() => {
    delete process.env['STEWARD_RESIDENCY_TEST_URL'];
  });

  it('stores a region on a warehouse target and refuses one that is not a region name', async () => {
    const bad = await s.call('POST', '/v1/warehouse/targets/dw_bad', { catalog: 'lake', credentials: { kind: 'env', name: 'STEWARD_RESIDENCY_TEST_URL' }, region: 'us east' });
    assert.equal(bad.status, 400, JSON.stringify(bad.json));
    assert.match(JSON.stringify(bad.json.error), /region/);
    const ok = await s.call('POST', '/v1/warehouse/targets/dw_us', { catalog: 'lake', credentials: { kind: 'env', name: 'STEWARD_RESIDENCY_TEST_URL' }, region: 'US-East-1' });
    assert.equal(ok.status, 201, JSON.stringify(ok.json));
    const listed = (await s.call('GET', '/v1/warehouse/targets')).json.targets.find((t: any) => t.name === 'dw_us');
    assert.equal(listed.region, 'us-east-1');
  });

  it('refuses planning, applying and loading to a us warehouse before contacting it', async () => {
    // Threat: EU tables copied, and granted on, in a US warehouse. The target's URL leads nowhere: a refusal that came
    // after connecting would be a connection error instead.
    const calls: [string, unknown][] = [
      ['/v1/sync/dw_us/plan', {}],
      ['/v1/sync/dw_us/apply', {}],
      ['/v1/warehouse/targets/dw_us/load-plan', { tables: ['claims.members'] }],
      ['/v1/warehouse/targets/dw_us/load', { table: 'claims.members', offset: 0, limit: 10 }],
      // a later chunk is refused as well: the check is not only on the first
      ['/v1/warehouse/targets/dw_us/load', { table: 'claims.members', offset: 10, limit: 10 }],
    ];
    for (const [p, body] of calls) await assertRefused(await s.call('POST', p, body));
  });

  it('refuses a warehouse target without a region (fail closed)', async () => {
    const r = await s.call('POST', '/v1/warehouse/targets/dw_nowhere', { catalog: 'lake', credentials: { kind: 'env', name: 'STEWARD_RESIDENCY_TEST_URL' } });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const plan = await s.call('POST', '/v1/sync/dw_nowhere/plan', {});
    await assertRefused(plan);
    assert.match(plan.json.error.message, /no region/);
  });

  it('refuses exporting Trino rules for a catalog mapped to a us Trino, and admits the eu one', async () => {
    // Threat: rules.json handing a Trino in another region the right to read EU tables.
    await assertRefused(await s.call('GET', '/v1/export/trino-rules?catalog=lake'));
    const eu = await s.call('GET', '/v1/export/trino-rules?catalog=lake&trinoCatalog=eulake');
    assert.equal(eu.status, 200, JSON.stringify(eu.json));
  });

  it('denies live Trino decisions on an eu table reached through a us catalog, and allows it through the eu one', async () => {
    // Threat: a Trino cluster in another region reading EU tables through the live OPA endpoints.
    const ok = async (method: string, p: string, body: unknown): Promise<void> => {
      const r = await s.call(method, p, body);
      assert.ok(r.status < 300, `${p}: ${JSON.stringify(r.json)}`);
    };
    // `global` is reached in Trino under its own name, in the `*` region (us-east-1); `lake` only as `eulake` (eu-west-1).
    await ok('POST', '/v1/tables/lake', { catalog: 'global', database: 'claims', table: 'members', location: EU('claims.csv') });
    await ok('PUT', '/v1/resources/global.claims/tags/residency', { value: 'eu' });
    await ok('POST', '/v1/users', { name: 'tess' });
    for (const resource of ['lake.claims', 'global.claims']) await ok('POST', '/v1/grants', { principal: 'user:tess', resource, permissions: ['SELECT', 'DESCRIBE'] });
    const ask = (operation: string, catalogName: string) =>
      s.call('POST', '/v1/trino/opa/allow', {
        input: {
          context: { identity: { user: 'tess', groups: [] }, softwareStack: { trinoVersion: '480' } },
          action: { operation, resource: { table: { catalogName, schemaName: 'claims', tableName: 'members', columns: ['id'] } } },
        },
      });
    for (const op of ['SelectFromColumns', 'ShowColumns']) {
      assert.equal((await ask(op, 'eulake')).json.result, true, op);
      assert.equal((await ask(op, 'global')).json.result, false, op);
    }
    // the deny is the guardrail's: the same grant and table answer allow once the guardrail admits us regions
    await ok('PUT', '/v1/guardrails/eu-data-stays', { resources: 'residency=eu', residency: { regions: ['eu-*', 'us-*'], mode: 'enforce' } });
    assert.equal((await ask('SelectFromColumns', 'global')).json.result, true);
    await ok('PUT', '/v1/guardrails/eu-data-stays', { resources: 'residency=eu', residency: { regions: ['eu-*'], mode: 'enforce' } });
  });
});

describe('detective then preventive: report-only and `residency check`', () => {
  it('refuses creating an enforced guardrail that existing tables already break', async () => {
    // Threat: a preventive rule switched on over violations, which it would then silently tolerate.
    const tag = await s.call('PUT', '/v1/resources/lake.claims.members_copy/tags/residency', { value: 'us' });
    // members_copy inherits eu from its database; its own us tag overrides it, and it lives in eu
    assert.equal(tag.status, 200, JSON.stringify(tag.json));
    await assertRefused(await s.call('PUT', '/v1/guardrails/us-stays', { resources: 'residency=us', residency: { regions: ['us-*'], mode: 'enforce' } }), 'us-stays');
  });

  it('admits it in report-only mode, records the violations, and lists them in the check', async () => {
    const r = await s.call('PUT', '/v1/guardrails/us-stays', { resources: 'residency=us', residency: { regions: ['us-*'], mode: 'report-only' } });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const log = await s.ws.services.decisionLog.listDecisions({ limit: 50 });
    const entry = log.find((e) => e.action === 'residency.violation' && e.resource === 'lake.claims.members_copy');
    assert.ok(entry, 'the report-only violation is audited');
    assert.match(entry.reason, /report-only.*us-stays/);
    const check = await s.call('GET', '/v1/residency/check');
    assert.equal(check.status, 200, JSON.stringify(check.json));
    const v = check.json.violations.filter((x: any) => x.guardrail === 'us-stays' && x.place.startsWith('location'));
    assert.deepEqual(v.map((x: any) => [x.table, x.mode, x.regions]), [['lake.claims.members_copy', 'report-only', ['eu-west-1']]]);
  });

  it('admits registering another violating table under report-only, and audits it', async () => {
    await s.call('PUT', '/v1/guardrails/us-stays', { resources: 'residency=us', residency: { regions: ['us-*'], mode: 'report-only' } });
    await s.call('PUT', '/v1/resources/lake.public/tags/residency', { value: 'us' });
    const r = await s.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'public', table: 'euro_rates', location: EU('claims.csv'), format: 'csv' });
    assert.equal(r.status, 201, JSON.stringify(r.json));
    const log = await s.ws.services.decisionLog.listDecisions({ limit: 50 });
    const entry = log.find((e) => e.action === 'residency.violation' && e.resource === 'lake.public.euro_rates');
    assert.equal(entry?.result, 'allow');
    assert.deepEqual([entry?.actor, entry?.details?.['during'], entry?.details?.['guardrail']], ['user:admin', 'table.register', 'us-stays']);
  });

  it('refuses switching report-only to enforce while violations remain', async () => {
    // Threat: going preventive without fixing what the detective phase found.
    await assertRefused(await s.call('PUT', '/v1/guardrails/us-stays', { resources: 'residency=us', residency: { regions: ['us-*'], mode: 'enforce' } }), 'us-stays');
  });

  it('lists warehouse targets outside a guardrail in the check', async () => {
    const check = await s.call('GET', '/v1/residency/check');
    const places = check.json.violations.filter((x: any) => x.table === 'lake.claims.members').map((x: any) => x.place);
    assert.ok(places.includes('warehouse target `dw_us`'), JSON.stringify(places));
  });
});

describe('the workspace region', () => {
  let w: TestServer;
  let wdir: string;
  before(async () => {
    wdir = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'steward-residency-ws-')));
    await fs.mkdir(path.join(wdir, 'eu'));
    await fs.writeFile(path.join(wdir, 'eu', 'claims.csv'), 'id\n1\n');
    await fs.writeFile(path.join(wdir, 'here.csv'), 'id\n1\n');
    w = await startTestServer({ config: () => ({ region: 'us-east-1', lakeRegions: { [path.join(wdir, 'eu')]: 'eu-west-1' } }) });
    for (const [method, p, body] of [
      ['PUT', '/v1/tag-keys/residency', { values: ['eu'] }],
      ['POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'seed', location: path.join(wdir, 'here.csv') }],
      ['PUT', '/v1/resources/lake.claims/tags/residency', { value: 'eu' }],
    ] as const) {
      const r = await w.call(method, p, body);
      assert.ok(r.status < 300, `${p}: ${JSON.stringify(r.json)}`);
    }
  });
  after(async () => {
    await w?.close();
    await fs.rm(wdir, { recursive: true, force: true });
  });

  it('counts unmarked folders in the workspace region, and refuses an eu table in eu files served by a us workspace', async () => {
    // Threat: the files stay in the EU but every query reads them into a workspace (gateway, loads) running in the US.
    const refused = await w.call('PUT', '/v1/guardrails/eu-stays', { resources: 'residency=eu', residency: { regions: ['eu-*'] } });
    await assertRefused(refused, 'eu-stays');
    const places = refused.json.error.details.map((d: any) => d.message).join('\n');
    assert.match(places, /lake\.claims\.seed` at location `.*here\.csv` \(`us-east-1`\)/, 'an unmarked folder is in the workspace region');
    assert.match(places, /lake\.claims\.seed` at this workspace \(`us-east-1`\)/);
    const us = await w.call('PUT', '/v1/guardrails/eu-stays', { resources: 'residency=eu', residency: { regions: ['eu-*', 'us-east-1'] } });
    assert.equal(us.status, 200, JSON.stringify(us.json));
    assert.equal((await w.call('POST', '/v1/tables/lake', { catalog: 'lake', database: 'claims', table: 'eu_files', location: path.join(wdir, 'eu', 'claims.csv') })).status, 201);
    await assertRefused(await w.call('PUT', '/v1/guardrails/eu-stays', { resources: 'residency=eu', residency: { regions: ['eu-*'] } }), 'eu-stays');
  });
});

describe('sharing with another workspace', () => {
  const peerKey = async (): Promise<string> => {
    const { generateKeyPair, exportJWK } = await import('jose');
    const pair = await generateKeyPair('EdDSA', { extractable: true });
    return `ed25519:${(await exportJWK(pair.publicKey)).x as string}`;
  };
  const trust = async (name: string, region?: string): Promise<void> => {
    const r = await s.call('POST', '/v1/shares/peers', { name, publicKey: await peerKey(), ...(region === undefined ? {} : { region }) });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  };

  it('refuses sharing an eu table with a us workspace, or one whose region is not declared, naming the guardrail', async () => {
    // Threat: residency-tagged data leaving its jurisdiction through a share instead of a copy.
    await trust('us-office', 'us-east-1');
    await trust('eu-office', 'eu-west-1');
    await trust('somewhere');
    for (const to of ['us-office', 'somewhere']) {
      const r = await s.call('POST', '/v1/shares', { name: `members-${to}`, to, objects: ['lake.claims.members'] });
      assert.equal(r.status, 403, JSON.stringify(r.json));
      assert.equal(r.json.error.code, 'STEWARD_E_RESIDENCY');
      assert.match(r.json.error.message, /eu-data-stays/);
    }
    const listed = await s.call('GET', '/v1/shares');
    assert.ok(!JSON.stringify(listed.json).includes('members-us-office'), 'nothing of the refused share was written');
    assert.equal((await s.call('POST', '/v1/shares', { name: 'members-eu', to: 'eu-office', objects: ['lake.claims.members'] })).status, 201);
    assert.equal((await s.call('POST', '/v1/shares', { name: 'rates-us', to: 'us-office', objects: ['lake.public.rates'] })).status, 201, 'an untagged table goes anywhere');
  });

  it('refuses a region that is not a region name when trusting a workspace', async () => {
    const r = await s.call('POST', '/v1/shares/peers', { name: 'odd', publicKey: await peerKey(), region: 'EU West!' });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(r.json.error.message, /^region:/);
  });
});
