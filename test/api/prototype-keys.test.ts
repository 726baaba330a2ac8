/**
 * Prototype keys as names (issue 10, item 7). A name ends up as a key
 * somewhere: a YAML mapping, a JSON body, a result row, a lookup table. When
 * the name is `__proto__` or `constructor`, an assignment or lookup keyed by
 * it reaches the object's prototype instead of the data, so every kind of name
 * refuses them, through every door (HTTP, policy as code, world validation),
 * and result rows keep such a column name as data.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startTestServer, type TestServer } from '../support/server.js';
import { CATALOG_NAME_PATTERN, LABEL_PATTERN, NAME_PATTERN, PRINCIPAL_PATTERN, RESERVED_NAMES, TAG_VALUE_PATTERN, isReservedName } from '../../src/policy/model.js';
import { validateWorld } from '../../src/policy/validate.js';
import { EMPTY_WORLD } from '../../src/policy/model.js';

const HOSTILE = ['__proto__', 'constructor', 'prototype', 'hasownproperty', 'tostring', 'valueof', '__definegetter__'];

let s: TestServer;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
});

after(async () => {
  await s.close();
});

const version = async (): Promise<number> => (await s.ws.services.state.snapshot()).version;

function assertRefusedNaming(r: { status: number; json: any }, field: string): void {
  assert.equal(r.status, 400, JSON.stringify(r.json));
  const text = JSON.stringify(r.json);
  assert.match(text, /reserved/, text);
  assert.ok((r.json.error.details as { path: string }[]).some((d) => d.path.includes(field)), `no detail names ${field}: ${text}`);
}

describe('prototype keys are refused as names through the API', () => {
  for (const name of HOSTILE) {
    it(`refuses a user, a group, a tag key and a guardrail named \`${name}\``, async () => {
      const before = await version();
      assertRefusedNaming(await s.call('POST', '/v1/users', { name }), 'name');
      assertRefusedNaming(await s.call('POST', '/v1/groups', { name }), 'name');
      assertRefusedNaming(await s.call('PUT', `/v1/tag-keys/${name}`, { values: ['x'] }), 'key');
      assertRefusedNaming(await s.call('PUT', `/v1/guardrails/${name}`, {}), 'name');
      assert.equal(await version(), before, 'nothing was written');
    });
  }

  it('refuses a prototype key as a tag value (a value is a key in tag lookups too)', async () => {
    const before = await version();
    const r = await s.call('PUT', '/v1/tag-keys/tier', { values: ['gold', 'constructor'] });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json), /reserved/);
    assert.equal(await version(), before);
  });

  it('refuses a member `group:__proto__` without creating anything', async () => {
    const before = await version();
    const r = await s.call('POST', '/v1/groups/analysts/members', { member: 'group:__proto__' });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.equal(await version(), before);
  });
});

describe('prototype keys are refused in policy files', () => {
  const plan = (text: string) => s.call('POST', '/v1/policy/plan', { files: [{ file: 'evil.yaml', text }] });

  it('refuses a YAML mapping key `__proto__` among users (it would set the prototype of the users map)', async () => {
    const r = await plan('apiVersion: steward/v1\nusers:\n  __proto__:\n    displayName: x\n  mallory: {}\n');
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json), /evil\.yaml:3:3.*key `__proto__` is reserved/);
  });

  it('refuses a group named `constructor` with members', async () => {
    const r = await plan('apiVersion: steward/v1\ngroups:\n  constructor:\n    members: [alice]\n');
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json), /reserved/);
  });

  it('refuses a tag key `hasownproperty` and a tag value `toString`', async () => {
    const key = await plan('apiVersion: steward/v1\ntagKeys:\n  hasownproperty:\n    values: [a]\n');
    assert.equal(key.status, 400, JSON.stringify(key.json));
    const value = await plan('apiVersion: steward/v1\ntagKeys:\n  tier:\n    values: [toString]\n');
    assert.equal(value.status, 400, JSON.stringify(value.json));
  });
});

describe('world validation refuses reserved names whatever door they came through', () => {
  it('reports a user and a table column named after prototype keys', () => {
    const problems = validateWorld({
      ...EMPTY_WORLD,
      users: [{ name: 'constructor' }],
      catalogs: [{ name: 'lake', kind: 'lake' }],
      databases: [{ catalog: 'lake', name: 'db' }],
      tables: [{ catalog: 'lake', database: 'db', name: 't', columns: [{ name: '__proto__', type: 'VARCHAR', ordinal: 0 }] }],
    } as never);
    const text = JSON.stringify(problems);
    assert.match(text, /user name `constructor` is reserved/, text);
    assert.match(text, /column name `__proto__` is reserved/, text);
  });
});

describe('the name patterns', () => {
  it('refuse every reserved name, as written and lowercased', () => {
    for (const name of RESERVED_NAMES) {
      for (const p of [NAME_PATTERN, CATALOG_NAME_PATTERN, LABEL_PATTERN, TAG_VALUE_PATTERN]) assert.equal(p.test(name), false, `${p} accepts ${name}`);
      assert.equal(PRINCIPAL_PATTERN.test(`user:${name}`), false);
      assert.equal(PRINCIPAL_PATTERN.test(`group:${name}`), false);
    }
  });

  it('accept the same names with anything added (the refusal is exact, not a prefix rule)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...[...RESERVED_NAMES].map((n) => n.toLowerCase())), fc.stringMatching(/^[a-z0-9_]{1,8}$/), (name, suffix) => {
        const longer = `${name}${suffix}`;
        assert.equal(isReservedName(longer), RESERVED_NAMES.has(longer));
        if (!isReservedName(longer) && /^[a-z_]/.test(longer) && longer.length <= 128) assert.equal(NAME_PATTERN.test(longer), true, longer);
      }),
    );
  });
});

describe('result rows keep a column aliased after a prototype key as data', () => {
  it('returns `__proto__` and `constructor` columns as own properties of each row', async () => {
    const r = await s.call('POST', '/v1/query', {
      sql: `SELECT hospital AS "__proto__", 7 AS "constructor", hospital FROM claims.patient_claims WHERE hospital = 'North Hospital' LIMIT 1`,
      as: 'user:carol',
    });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const row = r.json.rows[0];
    assert.ok(Object.hasOwn(row, '__proto__'), JSON.stringify(r.json));
    assert.equal(row['__proto__'], 'North Hospital');
    assert.equal(row['constructor'], 7);
  });

  it('keeps such a column in the internal DuckDB rows too', async () => {
    const { openDuckDb } = await import('../../src/lake/duckdb.js');
    const db = await openDuckDb();
    try {
      const [row] = await db.all(`SELECT 'data' AS "__proto__", 1 AS "constructor"`);
      assert.ok(row !== undefined && Object.hasOwn(row, '__proto__'));
      assert.equal(Object.getPrototypeOf(row), Object.prototype, 'the prototype is untouched');
      assert.equal(row['__proto__' as keyof typeof row], 'data');
    } finally {
      db.close();
    }
  });
});

describe('YAML read outside policy files (the access configuration)', () => {
  it('refuses a `__proto__` permission set instead of dropping it silently', async () => {
    const { parseYamlText } = await import('../../src/code/load.js');
    assert.throws(
      () => parseYamlText({ file: 'access.yaml', text: 'apiVersion: steward/v1\npermissionSets:\n  __proto__:\n    actions: [SELECT]\n' }),
      (e: Error & { code?: string }) => e.code === 'STEWARD_E_VALIDATION' && /access\.yaml:3:3: key `__proto__` is reserved/.test(e.message),
    );
    assert.deepEqual(parseYamlText({ file: 'ok.yaml', text: 'a: 1\n' }), { a: 1 });
  });
});

describe('query parameters named after prototype keys', () => {
  it('treats `$constructor` as a parameter that was not given, not as Object.prototype.constructor', async () => {
    const r = await s.call('POST', '/v1/query', { sql: 'SELECT hospital FROM claims.patient_claims WHERE hospital = $constructor LIMIT 1', as: 'user:carol', params: {} });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json), /missing value for parameter `\$constructor`/);
  });

  it('refuses a parameter value given under the name `constructor` (a body key like any other), naming it', async () => {
    const r = await s.call('POST', '/v1/query', {
      sql: 'SELECT count(*) AS n FROM claims.patient_claims WHERE hospital = $constructor',
      as: 'user:carol',
      params: { constructor: 'North Hospital' },
    });
    assert.equal(r.status, 400, JSON.stringify(r.json));
    assert.match(JSON.stringify(r.json), /constructor/);
  });
});

describe('internal DuckDB rows with repeated column names', () => {
  it('keeps both columns of a self-join (claim_id, claim_id), as DuckDB names them', async () => {
    const { openDuckDb } = await import('../../src/lake/duckdb.js');
    const db = await openDuckDb();
    try {
      const [row] = await db.all(`SELECT 1 AS claim_id, 2 AS claim_id`);
      assert.deepEqual(Object.values(row ?? {}), [1, 2]);
    } finally {
      db.close();
    }
  });
});
