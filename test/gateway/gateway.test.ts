/**
 * Gateway correctness on the demo workspace (results equal hand-written DuckDB
 * queries with the filters applied), result formats, limits, the workbench
 * (history, saved queries with bound parameters, sharing) and `--as`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { tableFromIPC } from 'apache-arrow';
import { startFixture, viaHttp, viaLibrary, type Fixture } from './fixture.js';
import { createGateway } from '../../src/gateway/gateway.js';
import { isStewardError } from '../../src/errors.js';
import { placeholdersToParameters } from '../../src/gateway/template.js';

const T = 'claims.patient_claims';
const VISIBLE = 'claim_id, patient_id, hospital, region, payor_segment, state, amount, service_date';

let f: Fixture;
before(async () => {
  f = await startFixture();
});
after(async () => {
  await f?.close();
});

const norm = (rows: Record<string, unknown>[]): string => JSON.stringify(rows);

describe('correctness against hand-written DuckDB', () => {
  const src = (): string => `read_parquet('${f.claimsFile.replaceAll("'", "''")}')`;

  // Full tables are compared through an order-independent fingerprint (count and sum of row hashes), the first rows cell by cell.
  const fingerprint = (cols: string): string => `SELECT count(*) AS n, sum(hash(${cols})) AS h`;
  const ALL = `claim_id, patient_id, patient_name, ssn, hospital, region, payor_segment, state, amount, service_date`;

  it('alice sees every row and never ssn or patient_name', async () => {
    const g = await viaLibrary(f, 'alice', `SELECT * FROM ${T} ORDER BY claim_id LIMIT 2000`);
    assert.equal(g.ok, true, g.message);
    assert.deepEqual(g.columns, VISIBLE.split(', '));
    assert.equal(norm(g.rows), norm(await f.direct(`SELECT ${VISIBLE} FROM ${src()} ORDER BY claim_id LIMIT 2000`)));
    const fp = await viaLibrary(f, 'alice', `${fingerprint(VISIBLE)} FROM ${T}`);
    assert.equal(norm(fp.rows), norm(await f.direct(`${fingerprint(VISIBLE)} FROM ${src()}`)));
    const agg = await viaLibrary(f, 'alice', `SELECT region, count(*) AS n, sum(amount) AS s FROM ${T} GROUP BY region ORDER BY region`);
    assert.equal(norm(agg.rows), norm(await f.direct(`SELECT region, count(*) AS n, sum(amount) AS s FROM ${src()} GROUP BY region ORDER BY region`)));
  });

  it('north_admin sees only North Hospital rows, without ssn or patient_name', async () => {
    const g = await viaLibrary(f, 'north_admin', `SELECT * FROM ${T} ORDER BY claim_id LIMIT 2000`);
    assert.deepEqual(g.columns, VISIBLE.split(', '));
    assert.ok(g.rows.every((r) => r['hospital'] === 'North Hospital'));
    assert.equal(norm(g.rows), norm(await f.direct(`SELECT ${VISIBLE} FROM ${src()} WHERE hospital = 'North Hospital' ORDER BY claim_id LIMIT 2000`)));
    const fp = await viaLibrary(f, 'north_admin', `${fingerprint(VISIBLE)} FROM ${T}`);
    assert.equal(fp.rows[0]?.['n'], f.northRows);
    assert.equal(norm(fp.rows), norm(await f.direct(`${fingerprint(VISIBLE)} FROM ${src()} WHERE hospital = 'North Hospital'`)));
    const q = `SELECT payor_segment, count(*) AS n, avg(amount) AS a FROM ${T} WHERE amount > 1000 GROUP BY 1 ORDER BY 1`;
    const h = await viaHttp(f, 'north_admin', q);
    assert.equal(
      norm(h.rows),
      norm(await f.direct(`SELECT payor_segment, count(*) AS n, avg(amount) AS a FROM ${src()} WHERE hospital = 'North Hospital' AND amount > 1000 GROUP BY 1 ORDER BY 1`)),
    );
  });

  it('carol sees everything, personal data included', async () => {
    const g = await viaLibrary(f, 'carol', `SELECT * FROM ${T} ORDER BY claim_id LIMIT 2000`);
    assert.ok(g.columns.includes('ssn') && g.columns.includes('patient_name'));
    assert.equal(norm(g.rows), norm(await f.direct(`SELECT * FROM ${src()} ORDER BY claim_id LIMIT 2000`)));
    const fp = await viaLibrary(f, 'carol', `${fingerprint(ALL)} FROM ${T}`);
    assert.equal(norm(fp.rows), norm(await f.direct(`${fingerprint(ALL)} FROM ${src()}`)));
  });

  it('joins, CTEs, window functions and set operations give the same answers as DuckDB over the filtered rows', async () => {
    const gw = `WITH r AS (SELECT hospital, region, sum(amount) AS s FROM ${T} GROUP BY ALL)
      SELECT region, s, rank() OVER (ORDER BY s DESC) AS k FROM r ORDER BY region`;
    const direct = `WITH r AS (SELECT hospital, region, sum(amount) AS s FROM (SELECT * FROM ${src()} WHERE hospital = 'North Hospital') GROUP BY ALL)
      SELECT region, s, rank() OVER (ORDER BY s DESC) AS k FROM r ORDER BY region`;
    assert.equal(norm((await viaLibrary(f, 'north_admin', gw)).rows), norm(await f.direct(direct)));
  });

  it('the demo revenue table is readable by bob only', async () => {
    assert.equal((await viaLibrary(f, 'bob', 'SELECT count(*) AS n FROM finance.revenue')).rows[0]?.['n'], 288);
    assert.equal((await viaLibrary(f, 'alice', 'SELECT count(*) AS n FROM finance.revenue')).ok, false);
  });
});

describe('results over HTTP', () => {
  it('streams CSV', async () => {
    const res = await fetch(`${f.server.url}/v1/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.tokens.alice}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: `SELECT claim_id, region FROM ${T} ORDER BY claim_id LIMIT 3`, format: 'csv' }),
    });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /text\/csv/);
    const lines = (await res.text()).trim().split('\r\n');
    assert.equal(lines[0], 'claim_id,region');
    assert.equal(lines.length, 4);
  });

  it('streams Arrow IPC', async () => {
    const res = await fetch(`${f.server.url}/v1/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.tokens.north_admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ sql: `SELECT claim_id, hospital, amount, service_date FROM ${T} ORDER BY claim_id`, format: 'arrow' }),
    });
    assert.equal(res.status, 200);
    const table = tableFromIPC(new Uint8Array(await res.arrayBuffer()));
    assert.equal(table.numRows, f.northRows);
    assert.deepEqual(table.schema.fields.map((x) => x.name), ['claim_id', 'hospital', 'amount', 'service_date']);
    assert.equal(table.getChild('hospital')?.get(0), 'North Hospital');
  });

  it('JSON reports row count and truncation at maxRows', async () => {
    const r = await f.server.call('POST', '/v1/query', { sql: `SELECT claim_id FROM ${T}`, maxRows: 7 }, f.tokens.alice);
    assert.equal(r.status, 200);
    assert.equal(r.json.rows.length, 7);
    assert.equal(r.json.truncated, true);
    assert.deepEqual(r.json.tables, ['lake.claims.patient_claims']);
  });

  it('rejects oversized SQL and unknown body fields', async () => {
    assert.equal((await f.server.call('POST', '/v1/query', { sql: 'x'.repeat(100_001) }, f.tokens.alice)).status, 400);
    assert.equal((await f.server.call('POST', '/v1/query', { sql: 'SELECT 1', bogus: 1 }, f.tokens.alice)).status, 400);
  });
});

describe('--as impersonation', () => {
  it('lets an admin run as a user, audited, and refuses it for users', async () => {
    const r = await f.server.call('POST', '/v1/query', { sql: `SELECT count(*) AS n FROM ${T}`, as: 'north_admin' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal(r.json.rows[0].n, f.northRows);
    const log = await f.server.call('GET', '/v1/decision-log?limit=20');
    assert.ok(log.json.entries.some((e: { action: string; details?: { impersonatedBy?: string } }) => e.action === 'query.run-as' && e.details?.impersonatedBy === 'user:admin'));
    const denied = await f.server.call('POST', '/v1/query', { sql: 'SELECT 1', as: 'carol' }, f.tokens.alice);
    assert.equal(denied.status, 403);
    const header = await fetch(`${f.server.url}/v1/query`, {
      method: 'POST',
      headers: { authorization: `Bearer ${f.tokens.alice}`, 'content-type': 'application/json', 'x-steward-as': 'user:carol' },
      body: JSON.stringify({ sql: 'SELECT 1' }),
    });
    assert.equal(header.status, 403);
  });
});

describe('workbench', () => {
  it('records history with who, SQL, tables, duration, rows and outcome; users see only their own', async () => {
    await viaHttp(f, 'alice', `SELECT claim_id FROM ${T} LIMIT 2`);
    await viaHttp(f, 'alice', `SELECT ssn FROM ${T}`);
    const h = await f.server.call('GET', '/v1/query/history?limit=5', undefined, f.tokens.alice);
    assert.equal(h.status, 200);
    const [refused, allowed] = h.json.entries;
    assert.equal(refused.outcome, 'refused');
    assert.equal(allowed.outcome, 'allowed');
    assert.equal(allowed.rowCount, 2);
    assert.deepEqual(allowed.tables, ['lake.claims.patient_claims']);
    assert.ok(h.json.entries.every((e: { principal: string }) => e.principal === 'user:alice'));
    assert.equal((await f.server.call('GET', '/v1/query/history?principal=user:carol', undefined, f.tokens.alice)).status, 403);
  });

  it('saved queries bind ${param} values and never splice them', async () => {
    const sql = `SELECT count(*) AS n FROM ${T} WHERE region = \${region} AND amount > \${min}`;
    const created = await f.server.call('POST', '/v1/saved-queries', { name: 'by region', sql }, f.tokens.alice);
    assert.equal(created.status, 201, JSON.stringify(created.json));
    assert.deepEqual(created.json.parameters, ['region', 'min']);
    const id = created.json.id as string;
    const run = await f.server.call('POST', `/v1/saved-queries/${id}/run`, { params: { region: 'East', min: 100 } }, f.tokens.alice);
    assert.equal(run.status, 200, JSON.stringify(run.json));
    const d = await f.direct(`SELECT count(*) AS n FROM read_parquet('${f.claimsFile}') WHERE region = 'East' AND amount > 100`);
    assert.equal(run.json.rows[0].n, d[0]?.['n']);
    const injected = await f.server.call('POST', `/v1/saved-queries/${id}/run`, { params: { region: "East' OR 1=1 --", min: 0 } }, f.tokens.alice);
    assert.equal(injected.json.rows[0].n, 0);
    const unknown = await f.server.call('POST', `/v1/saved-queries/${id}/run`, { params: { region: 'East', min: 1, extra: 2 } }, f.tokens.alice);
    assert.equal(unknown.status, 400);
    const missing = await f.server.call('POST', `/v1/saved-queries/${id}/run`, { params: { region: 'East' } }, f.tokens.alice);
    assert.equal(missing.status, 400);
  });

  it('shares a saved query with a group; others get not-found; runs use the runner\'s own permissions', async () => {
    const created = await f.server.call('POST', '/v1/saved-queries', { name: 'hospitals', sql: `SELECT DISTINCT hospital FROM ${T} ORDER BY 1` }, f.tokens.alice);
    const id = created.json.id as string;
    assert.equal((await f.server.call('GET', `/v1/saved-queries/${id}`, undefined, f.tokens.north_admin)).status, 404);
    assert.equal((await f.server.call('PUT', `/v1/saved-queries/${id}/shares/hospital-admins`, undefined, f.tokens.alice)).status, 403);
    const shared = await f.server.call('PUT', `/v1/saved-queries/${id}/shares/hospital-admins`);
    assert.equal(shared.status, 200, JSON.stringify(shared.json));
    assert.deepEqual(shared.json.sharedWith, ['hospital-admins']);
    const list = await f.server.call('GET', '/v1/saved-queries', undefined, f.tokens.north_admin);
    assert.ok(list.json.queries.some((q: { id: string }) => q.id === id));
    const run = await f.server.call('POST', `/v1/saved-queries/${id}/run`, {}, f.tokens.north_admin);
    assert.deepEqual(run.json.rows, [{ hospital: 'North Hospital' }]);
    assert.equal((await f.server.call('DELETE', `/v1/saved-queries/${id}`, undefined, f.tokens.north_admin)).status, 403);
    assert.equal((await f.server.call('POST', `/v1/saved-queries/${id}/run`, {}, f.tokens.bob)).status, 404);
  });

  it('scans placeholders outside strings and comments only', () => {
    const r = placeholdersToParameters("SELECT '${a}', ${b} -- ${c}\n, \"${d}\", /* ${e} */ $$${f}$$, ${ g }");
    assert.equal(r.sql, "SELECT '${a}', $b -- ${c}\n, \"${d}\", /* ${e} */ $$${f}$$, $g");
    assert.deepEqual(r.names, ['b', 'g']);
  });
});

describe('limits', () => {
  const slow = `SELECT count(*) FROM ${T} a, ${T} b WHERE a.amount * b.amount > -1`;
  // Streams rows at once, so open() returns while the query still runs.
  const endless = `SELECT a.claim_id, b.claim_id AS other FROM ${T} a, ${T} b`;

  it('interrupts a query at its time limit and frees the slot', async () => {
    const r = await viaLibraryWith({ timeoutMs: 300 }, slow);
    assert.equal(r, 'STEWARD_E_TIMEOUT');
    assert.equal(f.gateway.limiter.running, 0);
  });

  it('cancelling frees the connection and the slot', async () => {
    const st = await f.gateway.open({ principal: 'user:alice', actor: 'test', sql: endless });
    assert.equal(f.gateway.limiter.running, 1);
    st.cancel();
    await assert.rejects(st.summary);
    assert.equal(f.gateway.limiter.running, 0);
  });

  it('refuses past the per-principal limit with STEWARD_E_BUSY, and queues within the wait', async () => {
    const g = await createGateway({
      snapshot: () => f.server.ws.services.state.snapshot(),
      log: async () => {},
      limits: { maxPerPrincipal: 1, maxConcurrent: 4, maxWaitMs: 150, timeoutMs: 5000 },
    });
    try {
      const first = await g.open({ principal: 'user:alice', actor: 't', sql: endless });
      await assert.rejects(g.open({ principal: 'user:alice', actor: 't', sql: 'SELECT 1' }), (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_BUSY');
      // Another principal is not held up by alice's query.
      const other = await g.open({ principal: 'user:carol', actor: 't', sql: 'SELECT 1 AS x' });
      for await (const _ of other.batches());
      first.cancel();
      await first.summary.catch(() => undefined);
      const again = await g.open({ principal: 'user:alice', actor: 't', sql: 'SELECT 1 AS x' });
      for await (const _ of again.batches());
      assert.equal(g.limiter.running, 0);
    } finally {
      await g.close();
    }
  });
});

async function viaLibraryWith(opts: { timeoutMs: number }, sql: string): Promise<string> {
  try {
    const st = await f.gateway.open({ principal: 'user:alice', actor: 'test', sql, timeoutMs: opts.timeoutMs });
    for await (const _ of st.batches());
    return 'ok';
  } catch (e) {
    return isStewardError(e) ? e.code : String(e);
  }
}
