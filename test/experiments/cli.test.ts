/**
 * `steward experiment …` with the built binary on an embedded workspace:
 * human tables, `--json`, a template from a YAML file, and bad input that
 * exits non-zero naming the field with nothing written.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { steward, stewardJson } from '../support/cli.js';
import { seedMigratedStore } from '../support/migrated-store.js';

let home: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-exp-cli-'));
  env = { STEWARD_HOME: home };
  await seedMigratedStore(home); // experiments, not creating a store, are the subject
  assert.equal((await steward(['demo'], env)).code, 0);
  assert.equal((await steward(['experiment', 'policy', 'set', '--max-duration', '1h', '--exclude', 'group:privacy-officers', '--non-production'], env)).code, 0);
});

after(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

describe('steward experiment', () => {
  it('refuses an excluded target and an over-long duration with a non-zero exit naming the field, and writes no template', async () => {
    // threat: a script that creates experiments goes on after a refusal it did not notice
    const excluded = await steward(['experiment', 'template', 'create', '--name', 'x', '--target', 'user:carol', '--action', 'SELECT', '--scope', 'lake.claims', '--duration', '5m', '--self-service'], env);
    assert.equal(excluded.code, 1, excluded.stderr);
    assert.match(excluded.stderr, /targets\[0\]: `user:carol` is a member of `group:privacy-officers`, which is excluded from experiments \[STEWARD_E_FORBIDDEN\]/);
    const long = await steward(['experiment', 'template', 'create', '--name', 'x', '--target', 'user:alice', '--action', 'SELECT', '--scope', 'lake.claims', '--duration', '2h', '--self-service'], env);
    assert.equal(long.code, 1, long.stderr);
    assert.match(long.stderr, /duration: 2h exceeds the maximum of 1h set by the workspace experiment policy \[STEWARD_E_VALIDATION\]/);
    const share = await steward(['experiment', 'template', 'create', '--name', 'x', '--target', 'user:alice', '--action', 'SELECT', '--scope', 'lake.claims', '--duration', '5m', '--share', 'lots'], env);
    assert.equal(share.code, 1, share.stderr);
    assert.match(share.stderr, /share/);
    assert.deepEqual((await stewardJson<{ templates: unknown[] }>(['experiment', 'template', 'list'], env)).templates, []);
  });

  it('creates a template from a file, starts, shows status, stops and reports, as tables and as JSON', async () => {
    // threat: the operator cannot see what is running or end it from the command line
    const file = path.join(home, 'template.yaml');
    await fs.writeFile(file, 'name: claims-outage\ntargets: [user:alice]\nactions: [SELECT]\nscope: lake.claims.patient_claims\nduration: 10m\nselfService: true\n');
    assert.equal((await steward(['experiment', 'template', 'create', file], env)).code, 0);
    const list = await steward(['experiment', 'template', 'list'], env);
    assert.match(list.stdout, /^NAME\s+TARGETS\s+ACTIONS\s+SCOPE\s+SHARE\s+DURATION\s+SELF_SERVICE\nclaims-outage\s+user:alice\s+SELECT\s+lake\.claims\.patient_claims\s+100%\s+10m\s+yes$/m);
    const dry = await steward(['experiment', 'dry-run', 'claims-outage'], env);
    assert.match(dry.stdout, /user:alice\s+SELECT\s+lake\.claims\.patient_claims\s+allow\s+deny/);
    const x = await stewardJson<{ id: string; status: string; endsAt: string }>(['experiment', 'start', 'claims-outage'], env);
    assert.equal(x.status, 'running');
    const denied = await stewardJson<{ decision: string; reasons: { message: string }[] }>(['authorize', '--principal', 'alice', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims'], env);
    assert.equal(denied.decision, 'deny');
    assert.equal(denied.reasons[0]?.message, `denied by experiment \`claims-outage\` (${x.id}, ends at ${x.endsAt})`);
    const status = await steward(['experiment', 'status'], env);
    assert.match(status.stdout, new RegExp(`^${x.id}\\s+claims-outage\\s+running\\s`, 'm'));
    const stop = await steward(['experiment', 'stop', x.id, '--reason', 'done'], env);
    assert.equal(stop.code, 0, stop.stderr);
    assert.match(stop.stdout, new RegExp(`experiment ${x.id}: stopped`));
    const allowed = await stewardJson<{ decision: string }>(['authorize', '--principal', 'alice', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims'], env);
    assert.equal(allowed.decision, 'allow');
    const report = await stewardJson<{ totalRefused: number; refusals: { principal: string; resource: string }[]; timeToRecoveryMs: number | null }>(['experiment', 'report', x.id], env);
    assert.equal(report.totalRefused, 1);
    assert.deepEqual(report.refusals.map((r) => [r.principal, r.resource]), [['user:alice', 'lake.claims.patient_claims']]);
    assert.ok(report.timeToRecoveryMs !== null && report.timeToRecoveryMs >= 0, JSON.stringify(report));
    const human = await steward(['experiment', 'report', x.id], env);
    assert.match(human.stdout, /refused decisions:\s+1/);
    assert.match(human.stdout, /PRINCIPAL\s+RESOURCE\s+REFUSED\s+FIRST\s+RECOVERED\nuser:alice\s+lake\.claims\.patient_claims\s+1\s/);
    const unknown = await steward(['experiment', 'stop', 'ex-000000000000'], env);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /experiment `ex-000000000000` not found \[STEWARD_E_NOT_FOUND\]/);
  });
});
