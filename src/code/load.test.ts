import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StewardError } from '../errors.js';
import { loadPolicy, loadPolicySources } from './load.js';
import { locationKey } from './source-location.js';

function failure(fn: () => unknown): StewardError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof StewardError, String(e));
    return e;
  }
  assert.fail('expected an error');
}

async function failureAsync(fn: () => Promise<unknown>): Promise<StewardError> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof StewardError, String(e));
    return e;
  }
  assert.fail('expected an error');
}

const paths = (e: StewardError): string[] => e.details.map((d) => `${d.path ?? ''} ${d.message}`);

test('lists every schema problem with file:line:column of the offending node', () => {
  const text = [
    'apiVersion: steward/v1', // 1
    'tagKeys:', // 2
    '  pii: { values: ["true"], descripton: typo }', // 3
    'users:', // 4
    '  Bad Name: {}', // 5
    'grants:', // 6
    '  - principal: group:analysts', // 7
    '    resource: { table: lake.claims.t, colums: [a] }', // 8
    '    permissions: [SELECT, READ]', // 9
    '  - principal: alice', // 10
    '    resource: lake', // 11
    '    permissions: [DESCRIBE]', // 12
    '    notAfter: tomorrow', // 13
    'idpMappings:', // 14
    '  - { provider: okta, externalGroup: X }', // 15
  ].join('\n');
  const e = failure(() => loadPolicySources([{ file: 'p.yaml', text }]));
  assert.equal(e.code, 'STEWARD_E_VALIDATION');
  const got = paths(e);
  const expect = [
    ['p.yaml:3:28', /unknown field `descripton`/],
    ['p.yaml:5:3', /`Bad Name` is not a valid name/],
    ['p.yaml:8:39', /unknown field `colums`/],
    ['p.yaml:9:27', /expected one of `DESCRIBE`.*got `READ`/],
    ['p.yaml:13:15', /`tomorrow` is not an ISO-8601 instant/],
    ['p.yaml:15:5', /idpMappings\[0\]\.group: missing required field/],
  ] as const;
  for (const [where, what] of expect) {
    assert.ok(got.some((g) => g.startsWith(`${where} `) && what.test(g)), `${where} ${what}\n${got.join('\n')}`);
  }
  assert.match(e.message, /^policy is invalid: p\.yaml:\d+:\d+: .* \(and \d+ more\)$/);
});

test('YAML syntax errors are parse errors with a location, and every file is checked', () => {
  const e = failure(() =>
    loadPolicySources([
      { file: 'a.yaml', text: 'apiVersion: steward/v1\nusers:\n  alice: {}\n  alice: {}\n' },
      { file: 'b.yaml', text: 'apiVersion: steward/v1\nusers: [\n' },
    ]),
  );
  assert.equal(e.code, 'STEWARD_E_PARSE');
  assert.ok(e.details.some((d) => d.path === 'a.yaml:4:3'), paths(e).join('\n'));
  assert.ok(e.details.some((d) => d.path?.startsWith('b.yaml:')), paths(e).join('\n'));
  for (const d of e.details) assert.match(d.message, /^[a-z]/);
});

test('refuses an alias bomb instead of expanding it', () => {
  const lines = ['apiVersion: steward/v1', 'a: &a [x, x, x, x, x, x, x, x, x, x]'];
  for (let i = 0; i < 8; i++) lines.push(`${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`);
  const e = failure(() => loadPolicySources([{ file: 'bomb.yaml', text: lines.join('\n') }]));
  assert.equal(e.code, 'STEWARD_E_PARSE');
});

test('names that differ only in case or spaces are one entity, reported as defined twice', () => {
  const e = failure(() => loadPolicySources([{ file: 'p.yaml', text: 'apiVersion: steward/v1\nusers:\n  alice: {}\n  " Alice": {}\n' }]));
  assert.deepEqual(paths(e), ['p.yaml:4:3 user `alice` is already defined at p.yaml:3:3']);
});

test('two grants of one principal on one resource need ids to be told apart', () => {
  const text = [
    'apiVersion: steward/v1',
    'grants:',
    '  - { principal: alice, resource: lake, permissions: [DESCRIBE] }',
    '  - { principal: user:alice, resource: lake, permissions: [DESCRIBE] }',
    '  - { id: x, principal: alice, resource: lake, permissions: [DESCRIBE] }',
    '  - { id: x, principal: bob, resource: lake, permissions: [DESCRIBE] }',
  ].join('\n');
  const got = paths(failure(() => loadPolicySources([{ file: 'g.yaml', text }])));
  assert.equal(got.length, 2, got.join('\n'));
  assert.match(got[0] ?? '', /^g\.yaml:4:5 grant of `user:alice` on the same resource is already defined at g\.yaml:3:5/);
  assert.equal(got[1], 'g.yaml:6:5 grant `x` is already defined at g.yaml:5:5');
});

test('records the location of every entity', () => {
  const text = [
    'apiVersion: steward/v1',
    'tagKeys:',
    '  pii: { values: ["true"] }',
    'tags:',
    '  lake.claims.t.ssn: { pii: "true" }',
    'users:',
    '  alice:',
    'groups:',
    '  analysts:',
    '    members: [alice]',
    'idpMappings:',
    '  - { provider: okta, externalGroup: Data Analysts, group: analysts }',
    'filters:',
    '  lake.claims.t:',
    '    north: { rowFilter: "h = 1" }',
    'grants:',
    '  - id: read',
    '    principal: group:analysts',
    '    resource: lake.claims',
    '    permissions: [SELECT]',
    'guardrails:',
    '  no-pii: { actions: [SELECT], resources: pii=true }',
  ].join('\n');
  const { locations } = loadPolicySources([{ file: 'p.yaml', text }]);
  const at = (kind: Parameters<typeof locationKey>[0], key: string): string => {
    const l = locations.get(locationKey(kind, key));
    return l === undefined ? 'missing' : `${l.line}:${l.column}`;
  };
  assert.equal(at('tagKey', 'pii'), '3:3');
  assert.equal(at('tagAssignment', 'lake.claims.t.ssn#pii'), '5:24');
  assert.equal(at('user', 'alice'), '7:3');
  assert.equal(at('group', 'analysts'), '9:3');
  assert.equal(at('membership', 'analysts<user:alice'), '10:15');
  assert.equal(at('idpMapping', 'okta/Data Analysts'), '12:5');
  assert.equal(at('filter', 'lake.claims.t/north'), '15:5');
  assert.equal(at('grant', 'read'), '17:5');
  assert.equal(at('guardrail', 'no-pii'), '22:3');
  assert.equal(locations.size, 9);
});

test('loads a folder: yaml files recursively, sorted, merged; hidden and other files skipped', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-policy-'));
  mkdirSync(join(dir, 'teams'));
  mkdirSync(join(dir, '.git'));
  writeFileSync(join(dir, 'tags.yaml'), 'apiVersion: steward/v1\ntagKeys:\n  pii: { values: ["true"] }\ntags:\n  lake.claims: { pii: "true" }\n');
  writeFileSync(join(dir, 'teams', 'claims.yml'), 'apiVersion: steward/v1\nusers:\n  alice: {}\ntags:\n  lake.claims.t: { pii: "true" }\n');
  writeFileSync(join(dir, 'teams', 'finance.yaml'), 'apiVersion: steward/v1\nusers:\n  bob: {}\n');
  writeFileSync(join(dir, '.git', 'x.yaml'), 'not: [valid');
  writeFileSync(join(dir, 'README.md'), '# not policy');
  const { document, locations } = await loadPolicy(dir);
  assert.deepEqual(Object.keys(document.users ?? {}), ['alice', 'bob']);
  assert.deepEqual(document.tags, { 'lake.claims': { pii: 'true' }, 'lake.claims.t': { pii: 'true' } });
  assert.equal(locations.get(locationKey('user', 'bob'))?.file, join(dir, 'teams', 'finance.yaml'));
});

test('the same entity in two files is an error naming both places', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-policy-'));
  writeFileSync(join(dir, 'a.yaml'), 'apiVersion: steward/v1\nguardrails:\n  no-pii: { actions: [SELECT], resources: pii=true }\n');
  writeFileSync(join(dir, 'b.yaml'), 'apiVersion: steward/v1\n\nguardrails:\n  no-pii: { actions: [SELECT], resources: pii=true }\n');
  const e = await failureAsync(() => loadPolicy(dir));
  assert.equal(e.code, 'STEWARD_E_VALIDATION');
  assert.deepEqual(paths(e), [`${join(dir, 'b.yaml')}:4:3 guardrail \`no-pii\` is already defined at ${join(dir, 'a.yaml')}:3:3`]);
});

test('an empty folder and an empty file are errors, not an empty policy that would delete everything', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-policy-'));
  assert.equal((await failureAsync(() => loadPolicy(dir))).code, 'STEWARD_E_VALIDATION');
  writeFileSync(join(dir, 'empty.yaml'), '# nothing yet\n');
  assert.match((await failureAsync(() => loadPolicy(dir))).details[0]?.message ?? '', /empty policy file/);
});
