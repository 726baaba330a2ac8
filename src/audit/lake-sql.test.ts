/**
 * The bulk pipeline (DuckDB) against its readable reference: every kind of
 * decision-log row gives, through STEWARD_EVENTS_SQL and a Parquet round trip,
 * exactly the stored event decisionToEvent + conform give; the chain columns
 * link up and verify recomputes the same digests.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { createParquetWriter, type ParquetWriter } from './parquet-writer.js';
import { decisionToEvent } from './steward-events.js';
import { conform, EVENT_SCHEMA, GENESIS_HASH, stripNulls } from './lake-schema.js';
import { readChainRows } from './verify.js';
import { KINDS } from '../../test/audit/fixtures/decision-kinds.js';
import { validateOcsf } from '../../test/audit/ocsf-validator.js';
import type { StoredDecision } from '../store/decision-log.js';

const ndjson = (rows: readonly StoredDecision[]): string =>
  rows.map((r) => JSON.stringify({ id: r.id, at: r.at, actor: r.actor, action: r.action, resource: r.resource, result: r.result, reason: r.reason, details: r.details ?? null })).join('\n');

describe('lake SQL: steward events in DuckDB equal the reference mapping', () => {
  let dir: string;
  let writer: ParquetWriter;
  let batch = 0;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-lake-sql-'));
    writer = await createParquetWriter({ stagingDir: path.join(dir, '.staging') });
  });
  after(async () => {
    writer.close();
    await fs.rm(dir, { recursive: true, force: true });
  });

  /** Writes rows as one batch and reads the events back, stripped of nulls, by metadata.uid. */
  async function roundTrip(rows: readonly StoredDecision[], firstSeq = 1, prevHash = GENESIS_HASH): Promise<Map<string, Record<string, unknown>>> {
    batch += 1;
    const out = await writer.writeBatch(dir, { kind: 'steward', source: `s${batch}`, batch, ndjson: ndjson(rows), firstSeq, prevHash, region: 'local', accountId: 'steward' });
    assert.equal(out.events, rows.length);
    const read = await writer.duckdb.all(`SELECT * FROM read_parquet($1)`, [path.join(dir, 'security', 'ext', `s${batch}`, '**', '*.parquet')]);
    const byUid = new Map<string, Record<string, unknown>>();
    for (const r of read) {
      const e: Record<string, unknown> = {};
      for (const c of Object.keys(EVENT_SCHEMA)) {
        const v = stripNulls(r[c]);
        if (v !== undefined) e[c] = v;
      }
      byUid.set(String((e['metadata'] as { uid: string }).uid), e);
    }
    return byUid;
  }

  it('every kind of row maps to the same stored event, valid OCSF 1.1', async () => {
    const rows = Object.values(KINDS);
    const got = await roundTrip(rows);
    for (const [kind, r] of Object.entries(KINDS)) {
      const want = conform(decisionToEvent(r)).event as Record<string, unknown>;
      const e = got.get(`steward-${r.id}`);
      assert.ok(e !== undefined, kind);
      assert.deepEqual({ ...e, unmapped: e['unmapped'] === undefined ? undefined : JSON.parse(e['unmapped'] as string) }, { ...want, unmapped: want['unmapped'] === undefined ? undefined : JSON.parse(want['unmapped'] as string) }, kind);
      assert.deepEqual(validateOcsf(e), [], kind);
    }
  });

  it('grant.revoke names the grantee as the Account Change user', async () => {
    const got = await roundTrip([KINDS['grantRevokeGrantee'] as StoredDecision]);
    const e = [...got.values()][0] as { user: { uid: string; name: string; type: string }; policy: { uid: string }; activity_id: number };
    assert.equal(e.user.uid, 'group:auditors');
    assert.equal(e.user.name, 'auditors');
    assert.equal(e.policy.uid, 'grant:auditors-read-security');
    assert.equal(e.activity_id, 8);
  });

  it('random decision-log rows map the same in SQL and in the reference', async () => {
    const text = fc.oneof(fc.constantFrom('', 'x', 'user:alice', 'group:g', 'user:bob (local)', 'a.b.c', 'a.b.c.d.e'), fc.string({ maxLength: 12 }));
    const action = fc.oneof(
      fc.constantFrom('authorize.SELECT', 'authorize.drop', 'auth.token', 'auth.ingest-key', 'login', 'user.put', 'grant.revoke', 'guardrail.delete', 'filter.put', 'policy.apply'),
      fc.constantFrom('access.activate', 'access.end', 'access.x.revoke', 'access.approve', 'who-can-access.SELECT', 'effective-permissions', 'table:drop', 'catalog.create', 'x.sweep', 'odd'),
    );
    const details = fc.option(
      fc.record(
        {
          principal: fc.oneof(text, fc.integer()),
          grants: fc.array(fc.oneof(text, fc.integer()), { maxLength: 3 }),
          guardrails: fc.array(text, { maxLength: 2 }),
          ip: fc.constantFrom('10.0.0.1', ''),
          requester: text,
          scope: text,
          permissions: fc.array(text, { maxLength: 2 }),
          id: text,
          grantee: text,
          changes: fc.array(text, { maxLength: 2 }),
        },
        { requiredKeys: [] },
      ),
      { nil: undefined },
    );
    const rowArb = fc.record({ actor: text, action, resource: text, result: fc.constantFrom('allow', 'deny', 'ok', 'error' as const), reason: text, details });
    const sample = fc.sample(rowArb, { numRuns: 150, seed: 7 });
    const rows: StoredDecision[] = sample.map((r, i) => ({ id: 10_000 + i, at: new Date(Date.UTC(2025, 0, 1) + i * 3_600_000).toISOString(), ...r, ...(r.details === undefined ? {} : { details: r.details }) }) as StoredDecision);
    const got = await roundTrip(rows);
    for (const r of rows) {
      const want = conform(decisionToEvent(r)).event as Record<string, unknown>;
      const e = got.get(`steward-${r.id}`) as Record<string, unknown>;
      const norm = (x: Record<string, unknown>): Record<string, unknown> => ({ ...x, unmapped: x['unmapped'] === undefined ? undefined : JSON.parse(x['unmapped'] as string) });
      assert.deepEqual(norm(e), norm(want), JSON.stringify(r));
    }
  });

  it('chain columns: consecutive seq from the batch start, each prev_hash the previous digest, digests recomputable', async () => {
    const rows = Object.values(KINDS).slice(0, 5);
    batch += 1;
    const out = await writer.writeBatch(dir, { kind: 'steward', source: 'chain', batch, ndjson: ndjson(rows), firstSeq: 11, prevHash: 'f'.repeat(32), region: 'local', accountId: 'steward' });
    assert.equal(out.lastSeq, 15);
    const chain = (await readChainRows(writer.duckdb, path.join(dir, 'security', 'ext', 'chain', '**', '*.parquet'))).sort((a, b) => a.seq - b.seq);
    assert.deepEqual(chain.map((c) => c.seq), [11, 12, 13, 14, 15]);
    assert.equal(chain[0]?.prevHash, 'f'.repeat(32));
    for (let i = 1; i < chain.length; i++) assert.equal(chain[i]?.prevHash, chain[i - 1]?.hash);
    assert.ok(chain.every((c) => c.intact && /^[0-9a-f]{16}$/.test(c.hash)));
    assert.equal(out.lastHash, chain[4]?.hash);
    assert.equal(out.files.length, 1);
    assert.match(out.files[0]?.sha256 ?? '', /^[0-9a-f]{64}$/);
  });
});
