/**
 * POST /v1/access/preview: the dry run a requester sees before submitting
 * (the console shows it on the request form). It must refuse what a request
 * would refuse and store nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let alice: string;
let erin: string;
before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
  alice = (await s.ws.services.tokens.createToken({ name: 't-alice', principal: 'user:alice', role: 'user' })).token;
  erin = (await s.ws.services.tokens.createToken({ name: 't-erin', principal: 'user:erin', role: 'user' })).token;
});
after(() => s.close());

const body = { scope: 'lake.claims.patient_claims', permissionSet: 'read-with-pii', duration: '2h', justification: 'audit case 7' };

describe('access request preview', () => {
  it('shows what read-with-pii would add and who must approve, before anything is requested', async () => {
    const r = await s.call('POST', '/v1/access/preview', body, alice);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.addsNothing, false);
    assert.ok(JSON.stringify(r.json.entries).includes('patient_name'), JSON.stringify(r.json.entries));
    assert.equal(r.json.approvalRequired, true);
    assert.deepEqual(r.json.approverGroups, ['privacy-officers']);
    assert.equal(Date.parse(r.json.endAt) - Date.parse(r.json.startAt), 2 * 3600 * 1000);
  });

  // Threat: a preview that skipped eligibility would tell anyone what a permission set unlocks on any scope.
  it('refuses a preview the requester is not eligible for, as a request would be', async () => {
    const r = await s.call('POST', '/v1/access/preview', body, erin);
    assert.equal(r.status, 403, JSON.stringify(r.json));
    const real = await s.call('POST', '/v1/access/requests', body, erin);
    assert.equal(real.status, r.status);
  });

  // Threat: a preview that persisted a request would put it in approvers' inboxes without the requester submitting.
  it('stores no request', async () => {
    assert.equal((await s.call('POST', '/v1/access/preview', body, alice)).status, 200);
    const list = await s.call('GET', '/v1/access/requests', undefined, alice);
    assert.deepEqual(list.json.requests, []);
  });
});
