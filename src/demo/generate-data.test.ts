import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isStewardError } from '../errors.js';
import { openDuckDb } from '../lake/duckdb.js';
import type { DuckDb } from '../lake/duckdb.js';
import { inspectLake } from '../catalog/lake-source.js';
import {
  DEFAULT_DEMO_CLAIMS,
  DEMO_REVENUE_ROWS,
  HOSPITALS,
  PAYOR_SEGMENTS,
  REGIONS,
  STATES,
  describeDemoData,
  generateDemoData,
} from './generate-data.js';
import type { DemoDataResult } from './generate-data.js';

let root: string;
let db: DuckDb;
let first: DemoDataResult;

const sha = (file: string): string => createHash('sha256').update(readFileSync(file)).digest('hex');

/** An order-sensitive checksum of every row: equal checksums mean equal rows in equal order. */
async function checksum(file: string): Promise<string> {
  const [r] = await db.all<{ c: string; n: number }>(
    'SELECT bit_xor(hash(rn, r))::VARCHAR AS c, count(*) AS n FROM (SELECT row_number() OVER () AS rn, t AS r FROM read_parquet($1) t)',
    [file],
  );
  return `${String(r?.c)}:${String(r?.n)}`;
}

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'steward-demo-'));
  db = await openDuckDb({ config: { threads: '1' } });
  first = await generateDemoData(path.join(root, 'a'));
});

after(() => {
  db.close();
  rmSync(root, { recursive: true, force: true });
});

describe('generateDemoData', () => {
  test('writes 100,000 claims and the revenue table well under 10 s', async () => {
    assert.equal(first.generated, true);
    assert.ok(first.ms < 10_000, `took ${first.ms} ms`);
    assert.deepEqual(first.rows, { patientClaims: DEFAULT_DEMO_CLAIMS, revenue: DEMO_REVENUE_ROWS });
    const [c] = await db.all('SELECT count(*) AS n, count(DISTINCT claim_id) AS ids FROM read_parquet($1)', [first.files.patientClaims]);
    assert.deepEqual(c, { n: 100_000, ids: 100_000 });
    const [r] = await db.all('SELECT count(*) AS n FROM read_parquet($1)', [first.files.revenue]);
    assert.equal(r?.n, DEMO_REVENUE_ROWS);
  });

  test('the same seed gives the same rows (and the same bytes)', async () => {
    const second = await generateDemoData(path.join(root, 'b'));
    assert.equal(await checksum(second.files.patientClaims), await checksum(first.files.patientClaims));
    assert.equal(await checksum(second.files.revenue), await checksum(first.files.revenue));
    assert.equal(sha(second.files.patientClaims), sha(first.files.patientClaims));
    assert.equal(sha(second.files.revenue), sha(first.files.revenue));
  });

  test('another seed gives other rows', async () => {
    const other = await generateDemoData(path.join(root, 'c'), { claims: 1000, seed: 7 });
    const same = await generateDemoData(path.join(root, 'd'), { claims: 1000, seed: 42 });
    assert.notEqual(await checksum(other.files.patientClaims), await checksum(same.files.patientClaims));
  });

  test('values stay in their documented domains', async () => {
    const [row] = await db.all(
      `SELECT
         bool_and(list_contains(string_split($2, '|'), hospital)) AS hospitals,
         bool_and(list_contains(string_split($3, '|'), region)) AS regions,
         bool_and(list_contains(string_split($4, '|'), payor_segment)) AS payors,
         bool_and(list_contains(string_split($5, '|'), state)) AS states,
         bool_and(regexp_full_match(ssn, '\\d{3}-\\d{2}-\\d{4}')) AS ssns,
         bool_and(regexp_full_match(patient_name, '[A-Z][a-z]+ [A-Z][a-z]+')) AS names,
         bool_and(year(service_date) = 2025) AS dates,
         bool_and(amount > 0) AS amounts,
         count(DISTINCT hospital) AS n_hospitals, count(DISTINCT region) AS n_regions,
         count(DISTINCT payor_segment) AS n_payors,
         count(*) FILTER (WHERE claim_id IS NULL OR patient_id IS NULL OR patient_name IS NULL OR ssn IS NULL) AS nulls
       FROM read_parquet($1)`,
      [first.files.patientClaims, HOSPITALS.join('|'), REGIONS.join('|'), PAYOR_SEGMENTS.join('|'), STATES.join('|')],
    );
    assert.deepEqual(row, {
      hospitals: true,
      regions: true,
      payors: true,
      states: true,
      ssns: true,
      names: true,
      dates: true,
      amounts: true,
      n_hospitals: 3,
      n_regions: 4,
      n_payors: 4,
      nulls: 0,
    });
    // A patient looks the same on every claim.
    const [p] = await db.all(
      'SELECT count(*) AS n FROM (SELECT patient_id FROM read_parquet($1) GROUP BY patient_id HAVING count(DISTINCT (patient_name, ssn, state)) > 1)',
      [first.files.patientClaims],
    );
    assert.equal(p?.n, 0);
    const [f] = await db.all(
      'SELECT count(DISTINCT month) AS months, bool_and(cost < revenue) AS margin, min(month)::VARCHAR AS first FROM read_parquet($1)',
      [first.files.revenue],
    );
    assert.deepEqual(f, { months: 24, margin: true, first: '2024-01-01' });
  });

  test('the files inspect with the documented columns', async () => {
    const described = describeDemoData();
    for (const table of described) {
      const inspection = await inspectLake({ location: path.join(first.dir, path.dirname(table.file)) }, { db });
      assert.deepEqual(
        inspection.columns.map((c) => `${c.name} ${c.type}`),
        table.columns.map((c) => `${c.name} ${c.type}`),
      );
      assert.equal(inspection.rows, table.rows);
    }
  });

  test('is idempotent: existing files with the right rows and seed are left alone', async () => {
    const before = sha(first.files.patientClaims);
    const again = await generateDemoData(first.dir);
    assert.equal(again.generated, false);
    assert.equal(sha(first.files.patientClaims), before);
    // Another seed in the same folder regenerates.
    const manifest = path.join(first.dir, '.steward-demo.json');
    const saved = readFileSync(manifest, 'utf8');
    writeFileSync(manifest, saved.replace('"seed": 42', '"seed": 41'));
    const regenerated = await generateDemoData(first.dir);
    assert.equal(regenerated.generated, true);
    assert.equal(sha(first.files.patientClaims), before);
  });

  test('rejects out-of-range options', async () => {
    for (const options of [{ claims: 0 }, { claims: 1.5 }, { seed: -1 }, { claims: 20_000_000 }]) {
      await assert.rejects(generateDemoData(path.join(root, 'bad'), options), (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_VALIDATION');
    }
  });
});
