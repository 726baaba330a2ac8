/**
 * A hidden column named anywhere in a query, not only at the top level, is
 * refused from the syntax tree with the same explained refusal (the column,
 * its table, the guardrail or grant) — never a raw binder error, never a
 * silent rebinding to another column, and never its value.
 *
 * Demo world: alice reads patient_claims without ssn and patient_name (the
 * `pii-requires-privacy-officer` guardrail); north_admin likewise, on North
 * Hospital rows only.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cells, startFixture, viaHttp, viaLibrary, type DemoUser, type Fixture, type Outcome } from './fixture.js';

const T = 'claims.patient_claims';

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

/** No ssn or patient_name value anywhere in the answer: rows, column names, message. */
function assertNoPii(o: Outcome, via: string): void {
  for (const v of cells(o)) {
    if (typeof v !== 'string') continue;
    for (const piece of [v, ...v.split(/['"`]/)]) assert.ok(!f.pii.has(piece), `${via}: protected value \`${piece}\` in the answer`);
  }
}

/** Refused with the explained hidden-column refusal naming `column`, through the library and over HTTP. */
async function assertExplained(user: DemoUser, sql: string, column: string): Promise<void> {
  for (const [via, run] of [['library', viaLibrary], ['http', viaHttp]] as const) {
    const o = await run(f, user, sql);
    assertNoPii(o, via);
    assert.equal(o.ok, false, `${via}: expected a refusal, got ${o.rows.length} row(s): ${sql}`);
    assert.equal(o.code, 'STEWARD_E_FORBIDDEN', `${via}: ${o.code} ${o.message}`);
    if (via === 'http') assert.equal(o.status, 403);
    assert.match(o.message ?? '', new RegExp(`may not read column \`${column}\` of \`lake\\.claims\\.patient_claims\``), `${via}: ${o.message}`);
    assert.match(o.message ?? '', /denied by guardrail `pii-requires-privacy-officer`/, `${via}: ${o.message}`);
    assert.doesNotMatch(o.message ?? '', /Binder Error|__steward/, `${via}: ${o.message}`);
  }
}

describe('hidden columns inside subqueries', () => {
  // Threat: a hidden column reached through an alias inside a subquery gets past the top-level check, or is answered with a raw binder error that reveals the rewrite instead of the reason.
  const cases: readonly [string, string, string][] = [
    ['EXISTS with an aliased q.ssn', `SELECT claim_id FROM ${T} WHERE EXISTS (SELECT 1 FROM ${T} q WHERE q.ssn = 'x')`, 'ssn'],
    ['EXISTS with a bare ssn', `SELECT claim_id FROM ${T} WHERE EXISTS (SELECT 1 FROM ${T} q WHERE ssn = 'x')`, 'ssn'],
    ['a correlated subquery reaching the outer alias', `SELECT claim_id FROM ${T} t WHERE EXISTS (SELECT 1 FROM ${T} r WHERE r.claim_id = t.claim_id AND t.ssn = 'x')`, 'ssn'],
    ['a correlated bare name resolved in the outer query', `SELECT claim_id FROM ${T} t WHERE EXISTS (SELECT 1 FROM (SELECT 1 AS a) s WHERE ssn = 'x')`, 'ssn'],
    ['a correlated count', `SELECT claim_id FROM ${T} t WHERE (SELECT count(*) FROM ${T} x WHERE x.patient_name = t.region) > 0`, 'patient_name'],
    ['a CTE selecting the column', `WITH c AS (SELECT q.ssn FROM ${T} q) SELECT count(*) FROM c`, 'ssn'],
    ['a CTE over * read by name', `WITH c AS (SELECT * FROM ${T}) SELECT c.ssn FROM c`, 'ssn'],
    ['a CTE over * read by a bare name', `WITH c AS (SELECT * FROM ${T}) SELECT count(*) FROM c WHERE ssn LIKE '1%'`, 'ssn'],
    ['nested CTEs', `WITH a AS (SELECT * FROM ${T}), b AS (SELECT * FROM a) SELECT max(patient_name) FROM b`, 'patient_name'],
    ['a CTE with column aliases', `WITH c(k) AS (SELECT q.ssn FROM ${T} q) SELECT k FROM c`, 'ssn'],
    ['a scalar subquery in SELECT', `SELECT (SELECT max(q.ssn) FROM ${T} q) AS m`, 'ssn'],
    ['a scalar subquery with a bare name', `SELECT claim_id, (SELECT min(ssn) FROM ${T}) FROM ${T} LIMIT 1`, 'ssn'],
    ['IN (subquery)', `SELECT claim_id FROM ${T} WHERE claim_id IN (SELECT q.claim_id FROM ${T} q WHERE q.ssn LIKE '1%')`, 'ssn'],
    ['IN (subquery) selecting the column', `SELECT count(*) FROM ${T} WHERE region IN (SELECT patient_name FROM ${T})`, 'patient_name'],
    ['a lateral join', `SELECT l.s FROM ${T} t, LATERAL (SELECT t.ssn AS s) l LIMIT 1`, 'ssn'],
    ['an implicit lateral join', `SELECT * FROM ${T} t, (SELECT t.patient_name AS p) l LIMIT 1`, 'patient_name'],
    ['a derived table', `SELECT s.ssn FROM (SELECT * FROM ${T}) s LIMIT 1`, 'ssn'],
    ['a derived table with column aliases keeps the hidden name', `SELECT x.ssn FROM (SELECT * FROM ${T}) AS x LIMIT 1`, 'ssn'],
    ['a join condition', `SELECT a.claim_id FROM ${T} a JOIN ${T} b ON a.ssn = b.ssn LIMIT 1`, 'ssn'],
    ['JOIN … USING', `SELECT count(*) FROM ${T} a JOIN ${T} b USING (ssn)`, 'ssn'],
    ['a set operation branch', `SELECT region FROM ${T} UNION SELECT q.patient_name FROM ${T} q`, 'patient_name'],
    ['ORDER BY in a subquery', `SELECT * FROM (SELECT claim_id FROM ${T} q ORDER BY q.ssn LIMIT 1) s`, 'ssn'],
    ['a lambda over the column', `SELECT list_transform([1], x -> q.ssn) FROM ${T} q LIMIT 1`, 'ssn'],
    ['an inner alias shadowing an outer one', `SELECT o.a FROM (SELECT 1 AS a) q, (SELECT 1 AS a) o WHERE EXISTS (SELECT 1 FROM ${T} q WHERE q.ssn = 'x')`, 'ssn'],
    ['quoted mixed case', `SELECT claim_id FROM ${T} WHERE EXISTS (SELECT 1 FROM ${T} "Q" WHERE "q"."SSN" = 'x')`, 'ssn'],
    ['* EXCLUDE naming the column', `SELECT * EXCLUDE (ssn) FROM ${T} LIMIT 1`, 'ssn'],
  ];
  for (const [what, sql, column] of cases) {
    it(`refuses a hidden column reached through ${what}, explaining why`, async () => {
      await assertExplained('alice', sql, column);
    });
  }

  it('refuses an outer query column that would silently stand in for the hidden one (inner ssn rebinding to an outer ssn)', async () => {
    // Threat: with ssn absent from the rewrite, DuckDB binds the inner `ssn` to the outer `o.ssn` and answers a wrong value without a word.
    await assertExplained('alice', `SELECT (SELECT ssn FROM ${T} x LIMIT 1) AS v FROM (SELECT 'decoy' AS ssn) o`, 'ssn');
  });

  it('refuses the hidden column for a row-filtered principal too (north_admin)', async () => {
    // Threat: a principal under a data filter reads a hidden column through a correlated subquery.
    await assertExplained('north_admin', `SELECT claim_id FROM ${T} t WHERE EXISTS (SELECT 1 FROM ${T} q WHERE q.claim_id = t.claim_id AND q.ssn IS NOT NULL)`, 'ssn');
  });

  it('logs the refusal as refused, with the explanation', async () => {
    // Threat: a probe for a hidden column leaves no refusal in the history.
    await viaHttp(f, 'alice', `SELECT claim_id FROM ${T} WHERE EXISTS (SELECT 1 FROM ${T} q WHERE q.ssn = 'history')`);
    const h = await f.server.call('GET', '/v1/query/history?limit=1', undefined, f.tokens.alice);
    assert.equal(h.json.entries[0].outcome, 'refused');
    assert.match(h.json.entries[0].message, /may not read column `ssn`/);
  });
});

describe('names that only look hidden', () => {
  // Threat (the other way): an over-eager check refuses honest queries whose own aliases are named like a hidden column, or reads the wrong column.
  const runs: readonly [string, string, unknown][] = [
    ['an inner alias shadowing the table', `SELECT (SELECT q.ssn FROM (SELECT 'a' AS ssn) q) AS v FROM ${T} q LIMIT 1`, 'a'],
    ['a CTE column named ssn', `WITH x AS (SELECT 'b' AS ssn) SELECT x.ssn FROM x, ${T} t LIMIT 1`, 'b'],
    ['a bare name in a derived table', `SELECT ssn FROM (SELECT claim_id AS ssn FROM ${T} ORDER BY claim_id LIMIT 1) s`, null],
    ['ORDER BY a select alias', `SELECT claim_id AS ssn FROM ${T} ORDER BY ssn LIMIT 1`, null],
    ['a lambda parameter', `SELECT list_transform([3], ssn -> ssn + 1)[1] AS v`, 4],
    ['a correlated name found in the inner table', `SELECT (SELECT count(*) FROM (SELECT 1 AS ssn) s WHERE ssn = 1) AS v FROM ${T} LIMIT 1`, 1],
  ];
  for (const [what, sql, value] of runs) {
    it(`runs ${what}`, async () => {
      for (const via of [viaLibrary, viaHttp]) {
        const o = await via(f, 'alice', sql);
        assert.equal(o.ok, true, `${o.code}: ${o.message}`);
        assertNoPii(o, via.name);
        const first = Object.values(o.rows[0] ?? {})[0];
        if (value === null) {
          const direct = await f.direct(`SELECT min(claim_id) AS v FROM read_parquet('${f.claimsFile}')`);
          assert.equal(first, direct[0]?.['v']);
        } else assert.equal(first, value);
      }
    });
  }
});
