/**
 * Query results as NDJSON over the ordinary query route: rows reach the client
 * while the query still runs, every gateway check holds on this path, and a
 * client that goes away stops the work on the server.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../support/server.js';

let s: TestServer;
let alice: string;
let northAdmin: string;

before(async () => {
  s = await startTestServer();
  assert.equal((await s.call('POST', '/v1/demo', {})).status, 200);
  alice = (await s.ws.services.tokens.createToken({ name: 'alice', principal: 'user:alice', role: 'user' })).token;
  northAdmin = (await s.ws.services.tokens.createToken({ name: 'north', principal: 'user:north_admin', role: 'user' })).token;
});
after(() => s.close());

function post(body: unknown, token: string, headers: Record<string, string> = {}, signal?: AbortSignal): Promise<Response> {
  return fetch(`${s.url}/v1/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
    ...(signal === undefined ? {} : { signal }),
  });
}

/** Reads NDJSON lines as they arrive until `enough` says stop (or the body ends). */
async function readLines(res: Response, enough: (lines: string[]) => boolean = () => false): Promise<string[]> {
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  const lines: string[] = [];
  let rest = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    rest += decoder.decode(value, { stream: true });
    const parts = rest.split('\n');
    rest = parts.pop() ?? '';
    lines.push(...parts);
    if (enough(lines)) {
      await reader.cancel();
      break;
    }
  }
  return lines;
}

/** Three copies of the claims table joined: far more rows than anyone reads, so the query is still running when the first rows arrive. */
const HUGE = 'SELECT a.claim_id, b.amount FROM lake.claims.patient_claims a, lake.claims.patient_claims b, lake.claims.patient_claims c';

async function historyOf(sql: string): Promise<{ outcome: string; rowCount: number; message?: string } | undefined> {
  const h = await s.call('GET', '/v1/query/history?principal=user:alice&limit=50');
  return (h.json.entries as { sql: string; outcome: string; rowCount: number; message?: string }[]).find((e) => e.sql === sql);
}

describe('NDJSON query results', () => {
  it('streams the columns, one array per row and a closing summary, chosen by the Accept header', async () => {
    const res = await post({ sql: 'SELECT claim_id, hospital FROM lake.claims.patient_claims ORDER BY claim_id LIMIT 3' }, alice, { accept: 'application/x-ndjson' });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^application\/x-ndjson/);
    const lines = (await readLines(res)).map((l) => JSON.parse(l) as unknown);
    assert.deepEqual((lines[0] as { columns: { name: string }[] }).columns.map((c) => c.name), ['claim_id', 'hospital']);
    assert.equal(lines.length, 5);
    for (const row of lines.slice(1, 4)) assert.ok(Array.isArray(row) && row.length === 2, JSON.stringify(row));
    assert.deepEqual(Object.keys(lines[4] as object).sort(), ['durationMs', 'rowCount', 'truncated']);
    assert.equal((lines[4] as { rowCount: number }).rowCount, 3);
  });

  it('refuses a hidden column on the streaming path exactly as on the JSON path', async () => {
    // Threat: a second way to run queries that skips a gateway check.
    const res = await post({ sql: 'SELECT ssn FROM lake.claims.patient_claims', format: 'ndjson' }, alice);
    assert.equal(res.status, 403);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'STEWARD_E_FORBIDDEN');
    assert.match(body.error.message, /ssn/);
  });

  it("keeps the row filter on the streaming path: north_admin streams only North Hospital's rows", async () => {
    // Threat: rows outside the caller's data filter leaking through the streamed form.
    const res = await post({ sql: 'SELECT hospital FROM lake.claims.patient_claims', format: 'ndjson' }, northAdmin);
    assert.equal(res.status, 200);
    const rows = (await readLines(res)).slice(1, -1).map((l) => JSON.parse(l) as string[]);
    assert.ok(rows.length > 0);
    assert.deepEqual([...new Set(rows.map((r) => r[0]))], ['North Hospital']);
  });

  it('delivers the first rows before the query has finished', async () => {
    // Failure stopped: a grid that shows nothing until every row of a long query is in.
    const sql = `${HUGE} LIMIT 2000000`;
    const res = await post({ sql, format: 'ndjson', maxRows: 2_000_000, timeoutMs: 120_000 }, alice);
    assert.equal(res.status, 200);
    const lines = await readLines(res, (l) => l.length >= 2);
    assert.ok(Array.isArray(JSON.parse(lines[1] as string)), lines[1]);
    // The query is still running (or was just stopped by us): it has not been recorded as finished with all its rows.
    const entry = await historyOf(sql);
    assert.ok(entry === undefined || entry.outcome !== 'allowed', JSON.stringify(entry));
  });

  it('stops the query on the server when the client cancels: the slot is freed and the history says cancelled', async () => {
    // Threat: a cancelled query that keeps a DuckDB connection and a concurrency slot busy until its timeout (a cheap denial of service).
    const sql = `${HUGE} LIMIT 5000000`;
    const ctl = new AbortController();
    const res = await post({ sql, format: 'ndjson', maxRows: 5_000_000, timeoutMs: 300_000 }, alice, {}, ctl.signal);
    assert.equal(res.status, 200);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    assert.equal(s.ws.services.gateway?.gateway.limiter.running, 1);
    ctl.abort();
    let entry: Awaited<ReturnType<typeof historyOf>>;
    for (let i = 0; i < 50 && (entry = await historyOf(sql)) === undefined; i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual({ outcome: entry?.outcome, message: entry?.message }, { outcome: 'failed', message: 'query cancelled' });
    assert.ok((entry?.rowCount ?? 0) < 5_000_000, JSON.stringify(entry));
    assert.equal(s.ws.services.gateway?.gateway.limiter.running, 0);
  });

  it('still answers JSON to a client that asks for nothing in particular, and honours an explicit format over Accept', async () => {
    // Failure stopped: existing clients (the CLI, scripts) suddenly receiving NDJSON.
    const plain = await post({ sql: 'SELECT 1 AS one' }, alice, { accept: '*/*' });
    assert.deepEqual(((await plain.json()) as { rows: unknown[] }).rows, [{ one: 1 }]);
    const explicit = await post({ sql: 'SELECT 1 AS one', format: 'json' }, alice, { accept: 'application/x-ndjson' });
    assert.match(explicit.headers.get('content-type') ?? '', /^application\/json/);
    await explicit.arrayBuffer();
  });
});
