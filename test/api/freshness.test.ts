/**
 * Two server processes sharing one PostgreSQL store: a change committed
 * through one is visible to the very next decision on the other.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { startTestServer, type TestServer } from '../support/server.js';

let db: TestDatabase;
let a: TestServer;
let b: TestServer;

before(async () => {
  db = await createTestDatabase();
  a = await startTestServer({ databaseUrl: db.url });
  b = await startTestServer({ databaseUrl: db.url });
  const demo = await a.call('POST', '/v1/demo', {});
  assert.equal(demo.status, 200, JSON.stringify(demo.json));
});

after(async () => {
  await a.close();
  await b.close();
  await db.drop();
});

const ask = (s: TestServer, principal: string, resource: string) =>
  s.call('POST', '/v1/authorize', { principal, action: 'SELECT', resource }).then((r) => r.json.decision as string);

describe('decisions see committed changes at once', () => {
  it('a grant made on one server allows the next decision on the other, and its revocation denies it', async () => {
    assert.equal(await ask(b, 'bob', 'lake.claims.patient_claims.amount'), 'deny');
    const g = await a.call('POST', '/v1/grants', { id: 'bob-claims-amount', principal: 'user:bob', resource: { table: 'lake.claims.patient_claims', columns: ['amount'] }, permissions: ['SELECT'] });
    assert.equal(g.status, 201, JSON.stringify(g.json));
    assert.equal(await ask(b, 'bob', 'lake.claims.patient_claims.amount'), 'allow');
    assert.equal(await ask(b, 'bob', 'lake.claims.patient_claims.ssn'), 'deny');
    assert.equal((await a.call('DELETE', '/v1/grants/bob-claims-amount')).status, 200);
    assert.equal(await ask(b, 'bob', 'lake.claims.patient_claims.amount'), 'deny');
  });

  it('removing a user from a group ends the access it gave, on every server', async () => {
    assert.equal(await ask(b, 'alice', 'lake.claims.patient_claims.amount'), 'allow');
    assert.equal((await a.call('DELETE', '/v1/groups/analysts/members/user:alice')).status, 200);
    assert.equal(await ask(b, 'alice', 'lake.claims.patient_claims.amount'), 'deny');
    assert.equal((await a.call('POST', '/v1/groups/analysts/members', { member: 'alice' })).status, 201);
    assert.equal(await ask(b, 'alice', 'lake.claims.patient_claims.amount'), 'allow');
  });

  it('every decision and change lands in the decision log', async () => {
    const log = await b.call('GET', '/v1/decision-log?limit=1000');
    assert.equal(log.status, 200);
    const actions = new Set((log.json.entries as { action: string }[]).map((e) => e.action));
    for (const a of ['authorize.SELECT', 'grant.create', 'grant.revoke', 'group.member.remove', 'demo.create']) assert.ok(actions.has(a), `${a} missing`);
  });
});
