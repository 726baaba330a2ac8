/**
 * `steward warehouse add|update`, `sync plan` and `export trino-rules` through
 * the built binary against a real server (issue #10, items 10 and 18): the
 * server, not the CLI's shell, reads `--env` credentials, and says so; a
 * variable the server cannot see is an error the CLI shows; `add` never
 * silently replaces a target; `--catalog` defaults to the only catalog.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from '../support/server.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { steward, type CliResult } from '../support/cli.js';

const tag = randomBytes(3).toString('hex');
const ENV = `STEWARD_TEST_WCLI_${tag.toUpperCase()}`;

describe('warehouse commands through the binary', () => {
  let s: TestServer;
  let wh: TestDatabase;
  /** The CLI runs with `extra` in its own environment only: the server (this process) does not see it. */
  const cli = (args: string[], extra: Record<string, string> = {}): Promise<CliResult> => steward(args, { STEWARD_URL: s.url, STEWARD_TOKEN: s.adminToken, ...extra });

  before(async () => {
    s = await startTestServer();
    wh = await createTestDatabase();
    assert.equal((await s.call('POST', '/v1/catalogs', { name: 'lake' })).status, 201);
  });

  after(async () => {
    delete process.env[ENV];
    await s?.close();
    await wh?.drop();
  });

  test('`warehouse add --env` with the variable set only in the CLI shell fails with an error naming the server process', async () => {
    // threat: the admin believes the warehouse is configured, and every sync then fails silently in the server log
    const r = await cli(['warehouse', 'add', 'wh', '--env', ENV], { [ENV]: wh.url });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /credentials\.name: the warehouse environment variable `STEWARD_TEST_WCLI_\w+` is not set in the Steward process that runs the sync \(pid \d+\)/);
    assert.match(r.stderr, /STEWARD_E_VALIDATION/);
    assert.equal((await s.call('GET', '/v1/warehouse/targets')).json.targets.length, 0, 'nothing was saved');
  });

  test('`warehouse add` defaults --catalog to the only catalog and says the server reads the credentials', async () => {
    process.env[ENV] = wh.url;
    const r = await cli(['warehouse', 'add', 'wh', '--env', ENV]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /warehouse target wh created/);
    assert.match(r.stdout, /credentials: environment variable `STEWARD_TEST_WCLI_\w+`, read by the Steward process that runs the sync \(pid \d+\); they are read by the server this CLI talks to \(server http:\/\/127\.0\.0\.1:\d+\), not this shell/);
    const t = (await s.call('GET', '/v1/warehouse/targets')).json.targets[0];
    assert.equal(t.catalog, 'lake');
  });

  test('`warehouse add` on an existing target refuses and points at `warehouse update`, which prints exactly what changes', async () => {
    // threat: a second `add` silently replaces a target's mapping and drift policy
    const again = await cli(['warehouse', 'add', 'wh', '--env', ENV, '--drift', 'report']);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /warehouse target `wh` already exists; change it with `steward warehouse update wh`/);
    assert.equal((await s.call('GET', '/v1/warehouse/targets')).json.targets[0].drift, 'revoke', 'the refused add changed nothing');
    const upd = await cli(['warehouse', 'update', 'wh', '--drift', 'report']);
    assert.equal(upd.code, 0, upd.stderr);
    assert.match(upd.stdout, /warehouse target wh updated:\n {2}drift: "revoke" -> "report"\n/);
    assert.doesNotMatch(upd.stdout, /rolePrefix|credentials: \{/);
    const t = (await s.call('GET', '/v1/warehouse/targets')).json.targets[0];
    assert.deepEqual([t.drift, t.rolePrefix, t.credentials], ['report', 'stw_', { kind: 'env', name: ENV }]);
  });

  test('`warehouse update --embed-role` sets the embed role, and one inside the role prefix exits non-zero naming embedRole', async () => {
    // threat: an application role the sync would read as one of its own group roles (and drop, or widen)
    const bad = await cli(['warehouse', 'update', 'wh', '--embed-role', 'stw_app']);
    assert.equal(bad.code, 1, bad.stdout);
    assert.match(bad.stderr, /embedRole: `stw_app` starts with the role prefix `stw_`/);
    assert.equal((await s.call('GET', '/v1/warehouse/targets')).json.targets[0].embedRole, undefined, 'nothing was saved');
    const ok = await cli(['warehouse', 'update', 'wh', '--embed-role', 'anyhealth_app']);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /embedRole: undefined -> "anyhealth_app"/);
    assert.equal((await s.call('GET', '/v1/warehouse/targets')).json.targets[0].embedRole, 'anyhealth_app');
  });

  test('a sync whose variable the server lost is a 4xx the CLI shows, not a silent failure', async () => {
    delete process.env[ENV];
    const r = await cli(['sync', 'plan', 'wh'], { [ENV]: wh.url });
    assert.equal(r.code, 1, r.stdout);
    assert.match(r.stderr, /the warehouse environment variable `STEWARD_TEST_WCLI_\w+` is not set in the Steward process that runs the sync \(pid \d+\) \[STEWARD_E_SOURCE\]/);
    process.env[ENV] = wh.url;
  });

  test('`export trino-rules` defaults --catalog to the only catalog, and with two catalogs names the choices', async () => {
    const one = await cli(['export', 'trino-rules']);
    assert.equal(one.code, 0, one.stderr);
    assert.ok(Array.isArray(JSON.parse(one.stdout).tables));
    assert.equal((await s.call('POST', '/v1/catalogs', { name: 'other' })).status, 201);
    const two = await cli(['export', 'trino-rules']);
    assert.equal(two.code, 1);
    assert.match(two.stderr, /--catalog: there are 2 catalogs, name one of `lake`, `other`/);
    const add = await cli(['warehouse', 'add', 'wh2', '--env', ENV]);
    assert.equal(add.code, 1);
    assert.match(add.stderr, /--catalog: there are 2 catalogs, name one of `lake`, `other`/);
  });
});
