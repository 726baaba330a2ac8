/**
 * The Trino OPA endpoints over real HTTP on the demo workspace: each request
 * shape of the plugin, who may call, bad input, and what reaches the log.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';
import { batch, catalog, column, schema, single, table } from './fixtures.js';

let s: TestServer;
let trinoToken: string;
let aliceToken: string;

const CLAIMS = ['lake', 'claims', 'patient_claims'] as const;

before(async () => {
  s = await startTestServer({ config: () => ({ trinoPrincipals: ['user:trino'] }) });
  const ok = async (method: string, p: string, body: unknown, status = 200): Promise<any> => {
    const r = await s.call(method, p, body);
    assert.ok(r.status === status || r.status === 201, `${p}: ${r.status} ${JSON.stringify(r.json)}`);
    return r.json;
  };
  await ok('POST', '/v1/demo', {});
  // frank: claim_id and hospital on every row, amount only on South Hospital rows (cell level).
  await ok('POST', '/v1/users', { name: 'frank' });
  await ok('POST', '/v1/filters', { table: 'lake.claims.patient_claims', name: 'south_amounts', columns: ['amount'], rowFilter: "hospital = 'South Hospital'" });
  await ok('POST', '/v1/grants', { principal: 'user:frank', resource: { table: 'lake.claims.patient_claims', columns: ['claim_id', 'hospital'] }, permissions: ['SELECT'] });
  await ok('POST', '/v1/grants', { principal: 'user:frank', resource: { table: 'lake.claims.patient_claims', filter: 'south_amounts' }, permissions: ['SELECT'] });
  // gina: rows of a hospital whose name holds a quote.
  await ok('POST', '/v1/users', { name: 'gina' });
  await ok('POST', '/v1/filters', { table: 'lake.claims.patient_claims', name: 'obrien_rows', rowFilter: "hospital = 'O''Brien Clinic'" });
  await ok('POST', '/v1/grants', { principal: 'user:gina', resource: { table: 'lake.claims.patient_claims', filter: 'obrien_rows' }, permissions: ['SELECT'] });
  trinoToken = (await ok('POST', '/v1/tokens', { name: 'trino-coordinator', principal: 'user:trino', role: 'user' })).token;
  aliceToken = (await ok('POST', '/v1/tokens', { name: 'alice', principal: 'user:alice', role: 'user' })).token;
});

after(async () => {
  await s.close();
});

const ask = (p: string, body: unknown, token: string | null = trinoToken) => s.call('POST', `/v1/trino/opa/${p}`, body, token);
const allow = async (body: unknown): Promise<boolean> => {
  const r = await ask('allow', body);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  return r.json.result;
};

describe('who may ask (the coordinator holds a token that can ask about anyone, so only that)', () => {
  it('refuses a request without a token', async () => {
    // Threat: anyone on the network probing what each user may read.
    const r = await ask('allow', single('alice', 'ExecuteQuery'), null);
    assert.equal(r.status, 401);
  });

  it('refuses an ordinary user token, which would let alice learn what carol may read', async () => {
    // Threat: a user enumerating other users' access and filters through the Trino API.
    const r = await ask('row-filters', single('north_admin', 'GetRowFilters', table(...CLAIMS)), aliceToken);
    assert.equal(r.status, 403);
    assert.equal(r.json.error.code, 'STEWARD_E_FORBIDDEN');
  });

  it('answers the principal named in STEWARD_TRINO_PRINCIPALS and admins', async () => {
    assert.equal((await ask('allow', single('alice', 'ExecuteQuery'))).json.result, true);
    assert.equal((await ask('allow', single('alice', 'ExecuteQuery'), s.adminToken)).json.result, true);
  });
});

describe('opa.policy.uri: one decision', () => {
  it('allows alice to select claim columns and refuses the moment ssn is among them', async () => {
    assert.equal(await allow(single('alice', 'SelectFromColumns', table(...CLAIMS, ['claim_id', 'amount']))), true);
    assert.equal(await allow(single('alice', 'SelectFromColumns', table(...CLAIMS, ['claim_id', 'ssn']))), false);
  });

  it('ignores the groups Trino claims: erin saying she is a privacy officer still reads nothing', async () => {
    // Threat: a Trino group provider (or a spoofed header upstream of it) widening access beyond Steward's memberships.
    assert.equal(await allow(single('erin', 'SelectFromColumns', table(...CLAIMS, ['ssn']), ['privacy-officers'])), false);
    assert.equal(await allow(single('carol', 'SelectFromColumns', table(...CLAIMS, ['ssn']))), true);
  });

  it('denies operations Steward does not map, whatever the resource (fail closed)', async () => {
    // Threat: a new or unusual Trino operation slipping through as allowed.
    for (const op of ['ImpersonateUser', 'SetSystemSessionProperty', 'CreateViewWithSelectFromColumns', 'RenameTable', 'DropEverything', 'constructor', '__proto__']) {
      assert.equal(await allow(single('carol', op, table(...CLAIMS, ['claim_id']))), false, op);
    }
  });

  it('denies an operation given the wrong kind of resource', async () => {
    assert.equal(await allow(single('carol', 'SelectFromColumns', catalog('lake'))), false);
    assert.equal(await allow(single('carol', 'SelectFromColumns')), false);
  });

  it('denies a Trino user that is not exactly a Steward user (case, unknown, odd characters)', async () => {
    // Threat: `Alice` or `alice ` in Trino being a different person mapped onto alice.
    for (const user of ['Alice', 'alice ', 'mallory', 'user:alice', "o'neil"]) {
      assert.equal(await allow(single(user, 'ExecuteQuery')), false, user);
      assert.equal(await allow(single(user, 'SelectFromColumns', table(...CLAIMS, ['claim_id']))), false, user);
    }
  });

  it('denies names carrying quotes or SQL instead of failing or matching loosely', async () => {
    // Threat: a crafted identifier matching a table it is not, or breaking the service.
    assert.equal(await allow(single('carol', 'SelectFromColumns', table('lake', 'claims', 'patient_claims"; drop table x; --', ['claim_id']))), false);
    assert.equal(await allow(single('carol', 'SelectFromColumns', table('lake', "claims'", 'patient_claims', ['claim_id']))), false);
  });

  it('lets a user see and kill only its own queries', async () => {
    assert.equal(await allow(single('alice', 'ViewQueryOwnedBy', { user: { user: 'alice', groups: [] } })), true);
    assert.equal(await allow(single('alice', 'KillQueryOwnedBy', { user: { user: 'carol', groups: [] } })), false);
  });

  it('maps writes to INSERT, DELETE and DROP decisions', async () => {
    assert.equal(await allow(single('carol', 'InsertIntoTable', table(...CLAIMS))), false);
    assert.equal(await allow(single('carol', 'DropTable', table(...CLAIMS))), false);
  });
});

describe('opa.policy.batched-uri: indexes', () => {
  const indexes = async (body: unknown): Promise<number[]> => {
    const r = await ask('batch', body);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json.result;
  };

  it('filters catalogs, schemas and tables to what the user may DESCRIBE', async () => {
    assert.deepEqual(await indexes(batch('bob', 'FilterCatalogs', [catalog('system'), catalog('lake'), catalog('steward')])), [1]);
    assert.deepEqual(await indexes(batch('bob', 'FilterSchemas', [schema('lake', 'claims'), schema('lake', 'finance'), schema('lake', 'information_schema')])), [1, 2]);
    assert.deepEqual(await indexes(batch('bob', 'FilterTables', [table(...CLAIMS), table('lake', 'finance', 'revenue')])), [1]);
    assert.deepEqual(await indexes(batch('erin', 'FilterCatalogs', [catalog('lake')])), []);
  });

  it('filters columns as indexes into the one table, leaving out guarded ones', async () => {
    const cols = ['claim_id', 'patient_name', 'ssn', 'hospital', 'no_such_column'];
    assert.deepEqual(await indexes(batch('alice', 'FilterColumns', [table(...CLAIMS, cols)])), [0, 3]);
    assert.deepEqual(await indexes(batch('carol', 'FilterColumns', [table(...CLAIMS, cols)])), [0, 1, 2, 3]);
  });

  it('answers an unknown operation with no index at all', async () => {
    assert.deepEqual(await indexes(batch('carol', 'FilterFunctions', [catalog('lake'), table(...CLAIMS)])), []);
  });

  it('refuses a huge batch with a 400 naming the field instead of working through it', async () => {
    // Threat: one request pinning the server's CPU (and the decision log) with a million checks.
    const many = Array.from({ length: 10_001 }, () => table(...CLAIMS));
    const r = await ask('batch', batch('carol', 'FilterTables', many));
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.json.error), /filterResources/);
    const cols = Array.from({ length: 10_001 }, (_, i) => `c${i}`);
    const r2 = await ask('batch', batch('carol', 'FilterColumns', [table(...CLAIMS, cols)]));
    assert.equal(r2.status, 400);
    assert.match(JSON.stringify(r2.json.error), /columns/);
  });

  it('refuses a batch request without filterResources, and FilterColumns over several tables', async () => {
    const r = await ask('batch', single('carol', 'FilterTables', table(...CLAIMS)));
    assert.equal(r.status, 400);
    assert.match(r.json.error.message, /input\.action\.filterResources/);
    const r2 = await ask('batch', batch('carol', 'FilterColumns', [table(...CLAIMS, ['ssn']), table('lake', 'finance', 'revenue', ['cost'])]));
    assert.equal(r2.status, 400);
  });
});

describe('bad input is a 400 naming the field', () => {
  it('names a missing identity user', async () => {
    const r = await ask('allow', { input: { context: { identity: {} }, action: { operation: 'ExecuteQuery' } } });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.json.error), /identity/);
  });

  it('names a missing input envelope', async () => {
    const r = await ask('allow', { context: { identity: { user: 'alice' } }, action: { operation: 'ExecuteQuery' } });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.json.error), /input/);
  });

  it('refuses a table resource with a number where a name belongs', async () => {
    const r = await ask('allow', single('alice', 'SelectFromColumns', { table: { catalogName: 'lake', schemaName: 7, tableName: 'x' } } as never));
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.json.error), /schemaName/);
  });
});

describe('opa.policy.row-filters-uri', () => {
  const filters = async (user: string, t = table(...CLAIMS)): Promise<{ expression: string }[]> => {
    const r = await ask('row-filters', single(user, 'GetRowFilters', t));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json.result;
  };

  it('gives north_admin the North Hospital predicate in Trino SQL and carol none', async () => {
    assert.deepEqual(await filters('north_admin'), [{ expression: `("hospital" = 'North Hospital')` }]);
    assert.deepEqual(await filters('carol'), []);
  });

  it('keeps a quote inside a filter value a literal quote', async () => {
    // Threat: a value such as O'Brien ending the literal and turning the rest into SQL Trino runs.
    assert.deepEqual(await filters('gina'), [{ expression: `("hospital" = 'O''Brien Clinic')` }]);
  });

  it('answers a user without SELECT with a filter that admits no row', async () => {
    // Defence in depth: should Trino ever read rows without asking SelectFromColumns first.
    assert.deepEqual(await filters('erin'), [{ expression: 'FALSE' }]);
    assert.deepEqual(await filters('carol', table('lake', 'claims', "patient_claims' OR 1=1")), [{ expression: 'FALSE' }]);
  });
});

describe('opa.policy.column-masking-uri and its batch form', () => {
  const mask = async (user: string, col: string): Promise<{ expression: string } | null> => {
    const r = await ask('column-mask', single(user, 'GetColumnMask', column(...CLAIMS, col)));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    return r.json.result;
  };

  it('masks a cell-level column with the same CASE the gateway uses, and leaves whole columns alone', async () => {
    assert.deepEqual(await mask('frank', 'amount'), { expression: `CASE WHEN ("hospital" = 'South Hospital') THEN "amount" END` });
    assert.equal(await mask('frank', 'claim_id'), null);
    assert.equal(await mask('carol', 'ssn'), null);
  });

  it('masks to NULL a column the user may not read', async () => {
    assert.deepEqual(await mask('frank', 'ssn'), { expression: 'NULL' });
    assert.deepEqual(await mask('alice', 'ssn'), { expression: 'NULL' });
  });

  it('answers the batch form by index, listing masked columns only', async () => {
    const r = await ask('column-masks', batch('frank', 'GetColumnMask', [column(...CLAIMS, 'claim_id'), column(...CLAIMS, 'amount'), column(...CLAIMS, 'ssn')]));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.result, [
      { index: 1, viewExpression: { expression: `CASE WHEN ("hospital" = 'South Hospital') THEN "amount" END` } },
      { index: 2, viewExpression: { expression: 'NULL' } },
    ]);
  });
});

describe('the decision log', () => {
  it('records one entry per batch, naming the Trino user and the item count', async () => {
    await ask('batch', batch('dana', 'FilterTables', [table(...CLAIMS), table('lake', 'finance', 'revenue'), table('lake', 'finance', 'nope')]));
    const log = await s.call('GET', '/v1/decision-log?actor=user:trino&limit=1000');
    const mine = log.json.entries.filter((e: any) => e.action === 'trino.batch.FilterTables' && e.details?.principal === 'user:dana');
    assert.equal(mine.length, 1);
    assert.equal(mine[0].details.items, 3);
    assert.equal(mine[0].reason, '2 of 3 allowed');
  });
});
