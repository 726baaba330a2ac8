/**
 * The built `steward` binary on a fresh embedded workspace: the demo
 * contract scripts rely on, policy as code round trips, and bad input
 * exiting non-zero with a message that names the problem.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { steward, stewardJson } from '../support/cli.js';

let home: string;
let env: NodeJS.ProcessEnv;

before(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-cli-'));
  env = { STEWARD_HOME: home };
  const first = await stewardJson<{ changes: number; tables: { table: string; rows: number }[] }>(['demo'], env);
  assert.ok(first.changes > 0);
  assert.deepEqual(
    first.tables.map((t) => t.table),
    ['lake.claims.patient_claims', 'lake.finance.revenue'],
  );
  assert.ok((first.tables[0]?.rows ?? 0) >= 100_000);
});

after(async () => {
  await fs.rm(home, { recursive: true, force: true });
});

interface DecisionOut {
  decision: string;
  reasons: { code: string; message: string }[];
  deniedBy: string[];
  columns?: { name: string; rowFilter: string | null }[];
  rowFilter?: string | null;
}

const authorize = (principal: string, action: string, resource: string): Promise<DecisionOut> =>
  stewardJson<DecisionOut>(['authorize', '--principal', principal, '--action', action, '--resource', resource], env);

describe('the demo workspace', () => {
  it('is idempotent: a second `steward demo` changes nothing', async () => {
    const again = await stewardJson<{ changes: number }>(['demo'], env);
    assert.equal(again.changes, 0);
  });

  it('alice cannot read ssn, and is told which guardrail denies it', async () => {
    const d = await authorize('alice', 'SELECT', 'lake.claims.patient_claims.ssn');
    assert.equal(d.decision, 'deny');
    assert.ok(d.reasons.length > 0);
    assert.ok(d.deniedBy.length > 0, JSON.stringify(d));
  });

  it('alice reads patient_claims without the PII columns', async () => {
    const d = await authorize('alice', 'SELECT', 'lake.claims.patient_claims');
    assert.equal(d.decision, 'allow');
    const cols = (d.columns ?? []).map((c) => c.name);
    assert.ok(cols.includes('claim_id') && cols.includes('amount'));
    assert.ok(!cols.includes('ssn') && !cols.includes('patient_name'), cols.join(','));
    assert.equal(d.rowFilter, null);
  });

  it('carol reads every column, ssn included', async () => {
    const d = await authorize('user:carol', 'SELECT', 'lake.claims.patient_claims');
    assert.equal(d.decision, 'allow');
    assert.equal(d.columns?.length, 10);
    assert.equal((await authorize('carol', 'SELECT', 'lake.claims.patient_claims.ssn')).decision, 'allow');
  });

  it('bob reads revenue and nothing in claims', async () => {
    assert.equal((await authorize('bob', 'SELECT', 'lake.finance.revenue')).decision, 'allow');
    assert.equal((await authorize('bob', 'SELECT', 'lake.claims.patient_claims')).decision, 'deny');
    assert.equal((await authorize('bob', 'SELECT', 'lake.claims.patient_claims.amount')).decision, 'deny');
  });

  it('north_admin sees only North Hospital rows, and the guardrail strips PII from the broad grant', async () => {
    const d = await authorize('north_admin', 'SELECT', 'lake.claims.patient_claims');
    assert.equal(d.decision, 'allow');
    assert.match(d.rowFilter ?? '', /North Hospital/);
    const cols = (d.columns ?? []).map((c) => c.name);
    assert.ok(!cols.includes('ssn') && !cols.includes('patient_name'), cols.join(','));
    assert.ok(d.deniedBy.length > 0);
  });

  it('explains decisions in plain text by default', async () => {
    const r = await steward(['authorize', '--principal', 'alice', '--action', 'SELECT', '--resource', 'lake.claims.patient_claims.ssn'], env);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^DENY/);
  });
});

describe('policy as code through the CLI', () => {
  it('export round-trips through plan with no changes', async () => {
    const file = path.join(home, 'exported.yaml');
    const exp = await steward(['export', '--out', file], env);
    assert.equal(exp.code, 0, exp.stderr);
    const plan = await stewardJson<{ changes: number }>(['plan', file], env);
    assert.equal(plan.changes, 0);
  });

  it('a broken file is refused with file, line and column, and nothing is written', async () => {
    const file = path.join(home, 'broken.yaml');
    await fs.writeFile(file, 'apiVersion: steward/v1\ngrants:\n  - principal: group:analysts\n    resource: lake.claims.nope\n    permissions: [SELECT]\n');
    const r = await steward(['apply', file], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /broken\.yaml:\d+:\d+/);
    const plan = await stewardJson<{ changes: number }>(['plan', path.join(home, 'exported.yaml')], env);
    assert.equal(plan.changes, 0);
  });
});

describe('bad input', () => {
  it('an unknown action exits non-zero and names the field', async () => {
    const r = await steward(['authorize', '--principal', 'alice', '--action', 'FLY', '--resource', 'lake.claims', '--json'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /action/);
  });

  it('a tag value outside the key’s allowed values is refused with its code', async () => {
    const r = await steward(['tag', 'set', 'lake.claims.patient_claims.amount', 'pii=maybe'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /STEWARD_E_UNKNOWN_TAG_VALUE/);
  });

  it('a group cycle is refused', async () => {
    assert.equal((await steward(['group', 'add', 'cyc_a'], env)).code, 0);
    assert.equal((await steward(['group', 'add', 'cyc_b'], env)).code, 0);
    assert.equal((await steward(['group', 'add-member', 'cyc_a', 'group:cyc_b'], env)).code, 0);
    const r = await steward(['group', 'add-member', 'cyc_b', 'group:cyc_a'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /STEWARD_E_GROUP_CYCLE/);
  });

  it('a filter predicate that does not parse is refused with its position', async () => {
    const r = await steward(['filter', 'create', 'lake.claims.patient_claims', 'bad', '--row-filter', "hospital = 'x' UNION SELECT 1"], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /STEWARD_E_INVALID_PREDICATE|STEWARD_E_VALIDATION/);
  });

  it('a grant on a missing table is refused', async () => {
    const r = await steward(['grant', 'create', '--principal', 'alice', '--resource', 'lake.claims.ghost', '--permissions', 'SELECT'], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /ghost/);
  });
});
