/**
 * Gateway enforcement of embed sessions: the session's row predicate is
 * added in the rewrite step on top of the principal's own decision, plans are
 * never shared across sessions, and every query is logged with the vendor's
 * user and the session tags.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startFixture, type Fixture } from '../gateway/fixture.js';
import { toPredicate, validateRowRule } from '../../src/embed/tag-rules.js';
import { ANYHEALTH_RULE, ANYHEALTH_TABLE, ANYHEALTH_USERS } from '../../src/demo/anyhealth.js';
import type { SessionScope } from '../../src/gateway/gateway.js';
import type { PrincipalRef } from '../../src/policy/model.js';
import { toPlainValue, type PlainValue } from '../../src/lake/duckdb.js';
import { isStewardError } from '../../src/errors.js';
import { HAND_WRITTEN } from './hand-written.js';
import { decisionToEvent } from '../../src/audit/steward-events.js';

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

function session(user: string, tags: Readonly<Record<string, string>>): SessionScope {
  return { rows: new Map([[ANYHEALTH_TABLE, toPredicate(validateRowRule(ANYHEALTH_RULE), tags)]]), user, tags, id: `test-${user}` };
}

async function rows(principal: string, sql: string, s: SessionScope): Promise<Record<string, PlainValue>[]> {
  const st = await f.gateway.open({ principal: principal as PrincipalRef, actor: principal, sql, session: s });
  const names = st.columns.map((c) => c.name);
  const out: Record<string, PlainValue>[] = [];
  for await (const batch of st.batches()) for (const r of batch) out.push(Object.fromEntries(r.map((v, i) => [names[i] as string, toPlainValue(v)])));
  return out;
}

const IDS = 'SELECT claim_id FROM lake.claims.patient_claims ORDER BY claim_id';

describe('gateway with an embed session', () => {
  for (const [user, tags] of Object.entries(ANYHEALTH_USERS)) {
    it(`${user} sees exactly the rows of the hand-written WHERE`, async () => {
      const got = (await rows('user:alice', IDS, session(user, tags))).map((r) => r['claim_id']);
      const want = (await f.direct(`SELECT claim_id FROM read_parquet('${f.claimsFile}') WHERE ${HAND_WRITTEN[user]} ORDER BY claim_id`)).map((r) => r['claim_id']);
      const total = Number((await f.direct(`SELECT count(*)::INTEGER AS n FROM read_parquet('${f.claimsFile}')`))[0]?.['n']);
      // The comparison means something only if the rule actually cuts rows (PowerUser sees all).
      assert.ok(want.length > 0 && (user === 'PowerUser' ? want.length === total : want.length < total), `${want.length} of ${total}`);
      assert.deepEqual(got, want);
    });
  }

  it('refuses a table that is not a dataset of the session', async () => {
    // Threat: a viewer's token used to query another table through the same principal.
    await assert.rejects(
      rows('user:bob', 'SELECT * FROM lake.finance.revenue', session('PowerUser', ANYHEALTH_USERS['PowerUser']!)),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_FORBIDDEN' && e.message.includes('not a dataset of this embed session'),
    );
  });

  it('a session never widens the principal: PowerUser tags over north_admin still see North Hospital only', async () => {
    // Threat: match-all tags replacing, instead of narrowing, the principal's own data filter.
    const got = await rows('user:north_admin', 'SELECT DISTINCT hospital FROM lake.claims.patient_claims', session('PowerUser', { hospital: '*', region: '*' }));
    assert.deepEqual(got.map((r) => r['hospital']), ['North Hospital']);
  });

  it('two sessions running the same text never share a cached plan', async () => {
    // Threat: the plan cache keyed without the session hands NorthAdmin's rewrite to SouthAdmin.
    const sql = 'SELECT DISTINCT hospital FROM lake.claims.patient_claims ORDER BY 1';
    const north = await rows('user:alice', sql, session('NorthAdmin', ANYHEALTH_USERS['NorthAdmin']!));
    const south = await rows('user:alice', sql, session('SouthAdmin', ANYHEALTH_USERS['SouthAdmin']!));
    assert.deepEqual(north.map((r) => r['hospital']), ['North Hospital']);
    assert.deepEqual(south.map((r) => r['hospital']), ['South Hospital']);
  });

  it('hostile tag values stay data: quotes and backslashes select nothing and break nothing', async () => {
    // Threat: `' OR 1=1 --` in a tag value becoming SQL in the rewritten query.
    for (const v of ["North Hospital' OR '1'='1", "x\\' OR 1=1 --", 'North Hospital"', '北 Hospital']) {
      const got = await rows('user:alice', 'SELECT count(*)::INTEGER AS n FROM lake.claims.patient_claims', session('Hostile', { hospital: v, region: '*' }));
      assert.deepEqual(got, [{ n: 0 }], v);
    }
  });

  it('a session with no complete group reads no row', async () => {
    // Threat: a forgotten region tag read as "no filter".
    const got = await rows('user:alice', 'SELECT count(*)::INTEGER AS n FROM lake.claims.patient_claims', session('Partial', { hospital: 'North Hospital' }));
    assert.deepEqual(got, [{ n: 0 }]);
  });

  it('logs the query with the vendor user as OCSF actor.user and the session tags, so an embed viewer is never recorded as the service principal', async () => {
    // Threat: embed queries in the security lake that cannot be traced to the vendor's user.
    const tags = ANYHEALTH_USERS['SouthMedicareUser']!;
    await rows('user:alice', 'SELECT count(*) AS n FROM lake.claims.patient_claims', { ...session('SouthMedicareUser', tags), id: 'jti-audit-1' });
    const { rows: logged } = await f.server.ws.db.query<{ details: { principal: string; embed?: string } }>(
      "SELECT details FROM steward.decision_log WHERE action = 'query.run' ORDER BY id DESC LIMIT 20",
    );
    const entry = logged.find((r) => r.details.embed?.includes('"jti-audit-1"'));
    assert.ok(entry !== undefined, 'no decision-log entry for the embed session');
    assert.equal(entry.details.principal, 'embed:SouthMedicareUser');
    const event = decisionToEvent({ id: 1, at: new Date().toISOString(), actor: 'user:alice', action: 'query.run', resource: ANYHEALTH_TABLE, result: 'allow', reason: '', details: entry.details });
    const actor = event['actor'] as { user: { uid: string; name: string }; invoked_by?: string };
    assert.deepEqual([actor.user.uid, actor.user.name, actor.invoked_by], ['embed:SouthMedicareUser', 'SouthMedicareUser', 'user:alice']);
    assert.deepEqual((event['unmapped'] as { embed: { tags: unknown; principal: string } }).embed.tags, tags);
  });
});
