/**
 * The consumer's own gateway over replicated tables: `POST /v1/query` at the
 * consumer, as a consumer principal, on a replica of a share. The consumer's
 * policy decides first; the rows come from the producer's gateway as the
 * share's principal, so the share's column and row limits (and the
 * producer's guardrails) hold whatever the consumer grants. And residency for
 * tables a shared database gains later (or that a tag binds later): judged
 * again at every feed, withheld and reported. Two in-process
 * servers over real HTTP, one share, pulled once and read by every test.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateKeyPair } from 'jose';
import type { Change } from '../../src/policy/changes.js';
import { MAX_REMOTE_ROWS } from '../../src/gateway/remote.js';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { atProducer, ok, shareToken, startPair, type Pair } from './support.js';

process.env['STEWARD_ACCESS_SCHEDULER'] = 'off';

let pair: Pair;
let dir: string;
const CLAIMS = 'lake.claims.patient_claims';
const REPLICA = '"producer-claims"';

before(async () => {
  pair = await startPair({ producerRegion: 'eu-west-1' });
  dir = await mkdtemp(path.join(os.tmpdir(), 'steward-remote-'));
  // One row more than a query may load from a shared table.
  await writeFile(path.join(dir, 'small.csv'), 'id,country\n1,fr\n');
  const big = path.join(dir, 'big.csv');
  await writeFile(big, `n\n${Array.from({ length: MAX_REMOTE_ROWS + 1 }, (_, i) => i).join('\n')}\n`);
  await ok(pair.producer, 'POST', '/v1/databases', { catalog: 'lake', name: 'bulk' });
  await ok(pair.producer, 'POST', '/v1/tables/lake', { catalog: 'lake', database: 'bulk', table: 'big', location: big, format: 'csv' });
  await ok(pair.producer, 'POST', '/v1/shares', {
    name: 'claims',
    to: 'consumer',
    objects: [CLAIMS, 'lake.finance.revenue', 'lake.bulk.big'],
    excludeColumns: { [CLAIMS]: ['amount'] },
    rows: { [CLAIMS]: "hospital = 'North Hospital'" },
  });
  await ok(pair.producer, 'POST', '/v1/shares', { name: 'other', to: 'consumer', objects: ['lake.finance.revenue'] });
  await ok(pair.consumer, 'POST', '/v1/shares/pull', {});
  await pair.consumer.ws.services.state.change({
    actor: 'test',
    action: 'grant.create',
    resource: 'test',
    build: (): Change[] => [
      { op: 'put', kind: 'user', entity: { name: 'ana' } },
      { op: 'put', kind: 'user', entity: { name: 'bob' } },
      { op: 'put', kind: 'user', entity: { name: 'cy' } },
      // ana: the whole replica catalog, every column the consumer has.
      { op: 'put', kind: 'grant', entity: { id: 'ana', principal: 'user:ana', resource: { kind: 'catalog', catalog: 'producer-claims' }, permissions: ['DESCRIBE', 'SELECT'], grantable: [] } },
      // cy: revenue through a filter of the consumer's own: South Hospital only, and no `revenue` column.
      { op: 'put', kind: 'filter', entity: { name: 'cy-south', catalog: 'producer-claims', database: 'finance', table: 'revenue', rowFilter: "hospital = 'South Hospital'", predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'hospital' }, right: { k: 'lit', value: 'South Hospital' } }, excludedColumns: ['revenue'] } },
      { op: 'put', kind: 'grant', entity: { id: 'cy', principal: 'user:cy', resource: { kind: 'filter', catalog: 'producer-claims', database: 'finance', table: 'revenue', filter: 'cy-south' }, permissions: ['SELECT'], grantable: [] } },
    ],
  });
});
after(async () => {
  await pair?.close();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

const queryAs = (who: string, sql: string) => pair.consumer.call('POST', '/v1/query', { sql, as: `user:${who}` });
const producerReads = async (): Promise<number> => (await ok(pair.producer, 'GET', '/v1/query/history?principal=user:share.claims&limit=1000')).entries.length;

describe("the consumer's gateway reads replicated tables through the producer", () => {
  it("applies the consumer's grant and the producer's row limit: a consumer principal sees only the rows the share admits", async () => {
    // threat: the consumer's gateway reads around the producer and returns rows the share's row limit keeps at the producer
    const r = await queryAs('ana', `SELECT hospital, count(*) AS n FROM ${REPLICA}.claims.patient_claims GROUP BY hospital`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    // Counted apart from every gateway: DuckDB on the producer's file.
    const source = (await pair.producer.ws.services.state.snapshot()).world.tables.find((t) => t.database === 'claims' && t.name === 'patient_claims')?.source;
    assert.ok(source?.kind === 'lake');
    const duck = await openDuckDb();
    const [own] = await duck.all<{ n: number }>("SELECT count(*) AS n FROM read_parquet($1) WHERE hospital = 'North Hospital'", [source.location]);
    duck.close();
    assert.ok((own?.n ?? 0) > 0);
    assert.deepEqual(r.json.rows, [{ hospital: 'North Hospital', n: own?.n }]);
  });

  it('a column the share hides stays hidden even though the consumer grants the whole catalog', async () => {
    // threat: a consumer admin grants SELECT on everything and expects the producer's hidden `amount` (and guarded `ssn`) to follow
    const star = await queryAs('ana', `SELECT * FROM ${REPLICA}.claims.patient_claims LIMIT 1`);
    assert.equal(star.status, 200, JSON.stringify(star.json));
    const columns = star.json.columns.map((c: { name: string }) => c.name);
    for (const hidden of ['amount', 'ssn', 'patient_name']) assert.ok(!columns.includes(hidden), `${hidden} is not a column here`);
    const named = await queryAs('ana', `SELECT sum(amount) FROM ${REPLICA}.claims.patient_claims`);
    assert.equal(named.status, 400, JSON.stringify(named.json));
    assert.match(named.json.error.message, /amount/);
    // And a consumer that asks the producer for the column itself (its own token, its own share) is refused by name there.
    const direct = await atProducer(pair, '/v1/sharing/rows/claims', await shareToken(pair, { share: 'claims' }), { database: 'claims', table: 'patient_claims', columns: ['hospital', 'amount'] });
    assert.equal(direct.status, 403, JSON.stringify(direct.json));
    assert.match(direct.json.error.message, /column `amount`/);
  });

  it("applies the consumer's own data filter on top: rows and columns it hides stay hidden for its principal", async () => {
    // threat: the remote read drops the consumer's own row filter and column limit for its principals
    const r = await queryAs('cy', `SELECT DISTINCT hospital FROM ${REPLICA}.finance.revenue`);
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.deepEqual(r.json.rows, [{ hospital: 'South Hospital' }]);
    const hidden = await queryAs('cy', `SELECT revenue FROM ${REPLICA}.finance.revenue`);
    assert.equal(hidden.status, 403, JSON.stringify(hidden.json));
  });

  it('a consumer principal without a grant is told not found, and nothing is fetched from the producer', async () => {
    // threat: the consumer's gateway fetches shared rows before its own policy has said yes
    const before = await producerReads();
    const r = await queryAs('bob', `SELECT count(*) FROM ${REPLICA}.finance.revenue`);
    assert.equal(r.status, 404, JSON.stringify(r.json));
    assert.equal(await producerReads(), before, 'no read reached the producer');
  });

  it("SQL at the consumer cannot reach the producer's tables outside the share", async () => {
    // threat: a consumer principal names a producer table the share does not include, in the producer's names or the replica's
    for (const sql of ['SELECT * FROM lake.claims.patient_claims', `SELECT * FROM ${REPLICA}.finance.expenses`, `SELECT * FROM ${REPLICA}.claims.patient_claims_v2`]) {
      const r = await queryAs('ana', sql);
      assert.equal(r.status, 404, `${sql}: ${JSON.stringify(r.json)}`);
    }
    // The rows route takes names, never SQL: a name carrying SQL is a name, not found.
    const token = await shareToken(pair, { share: 'claims' });
    for (const table of ['expenses', 'revenue" UNION SELECT * FROM lake.claims.patient_claims --']) {
      const r = await atProducer(pair, '/v1/sharing/rows/claims', token, { database: 'finance', table, columns: ['hospital'] });
      assert.equal(r.status, 404, `${table}: ${JSON.stringify(r.json)}`);
    }
  });

  it('the rows route refuses a forged share token and a token for another share', async () => {
    // threat: someone without the consumer's key, or with a token for one share, reads another share's rows
    const body = { database: 'finance', table: 'revenue', columns: ['hospital'] };
    const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const forged = await atProducer(pair, '/v1/sharing/rows/claims', await shareToken(pair, { share: 'claims', key: stranger.privateKey }), body);
    assert.equal(forged.status, 401, JSON.stringify(forged.json));
    const other = await atProducer(pair, '/v1/sharing/rows/claims', await shareToken(pair, { share: 'other' }), body);
    assert.equal(other.status, 401, JSON.stringify(other.json));
    assert.match(other.json.error.message, /share `other`/);
  });

  it('a shared table with more rows than a query may load is refused with the bound, not read in part', async () => {
    // threat: a cut table makes an aggregate silently wrong (or a huge table exhausts the consumer's memory)
    const r = await queryAs('ana', `SELECT count(*) AS n FROM ${REPLICA}.bulk.big`);
    assert.equal(r.status, 413, JSON.stringify(r.json));
    assert.match(r.json.error.message, new RegExp(`more than ${MAX_REMOTE_ROWS} rows`));
  });

  it("revoking the share stops reads through the consumer's gateway at once, before the consumer's next pull", async () => {
    // threat: a consumer keeps reading a revoked share until its replica is removed
    const before = await queryAs('ana', `SELECT count(*) AS n FROM ${REPLICA}.finance.revenue`);
    assert.deepEqual(before.json.rows, [{ n: 288 }]);
    await ok(pair.producer, 'POST', '/v1/shares/claims/revoke', {});
    const r = await queryAs('ana', `SELECT count(*) AS n FROM ${REPLICA}.finance.revenue`);
    assert.equal(r.status, 404, JSON.stringify(r.json));
    assert.match(r.json.error.message, /share `claims` not found/);
  });
});

describe('residency of tables a shared database gains after the share', () => {
  const later = (table: string) => ok(pair.producer, 'POST', '/v1/tables/lake', { catalog: 'lake', database: 'later', table, location: path.join(dir, 'small.csv'), format: 'csv' });
  const replicated = async (): Promise<string[]> => (await pair.consumer.ws.services.state.snapshot()).world.tables.filter((t) => t.catalog === 'producer-later').map((t) => t.name).sort();
  const pull = () => ok(pair.consumer, 'POST', '/v1/shares/pull', {});

  before(async () => {
    // The producer lies in eu-west-1; the consumer was trusted with no region, which no residency guardrail admits.
    await ok(pair.producer, 'PUT', '/v1/tag-keys/residency', { values: ['eu'] });
    await ok(pair.producer, 'PUT', '/v1/guardrails/eu-stays', { resources: 'residency=eu', residency: { regions: ['eu-*'], mode: 'enforce' } });
    await ok(pair.producer, 'POST', '/v1/databases', { catalog: 'lake', name: 'later' });
    await later('first');
    await ok(pair.producer, 'POST', '/v1/shares', { name: 'later', to: 'consumer', objects: ['lake.later'] });
    await pull();
    assert.deepEqual(await replicated(), ['first']);
  });

  it("a table added later that a residency guardrail keeps from the consumer's region is withheld from the feed and reported", async () => {
    // threat: a database shared when it held nothing EU-bound carries a later EU-bound table to a workspace outside the EU
    await later('second');
    await ok(pair.producer, 'PUT', '/v1/resources/lake.later.second/tags/residency', { value: 'eu' });
    await pull();
    assert.deepEqual(await replicated(), ['first'], 'the EU-bound table did not replicate');
    const share = (await ok(pair.producer, 'GET', '/v1/shares')).shares.find((s: { name: string }) => s.name === 'later');
    assert.deepEqual(share.withheld, [{ table: 'lake.later.second', guardrail: 'eu-stays' }]);
    const events = await pair.producer.ws.services.decisionLog.listDecisions({ actor: 'share:consumer', limit: 1000 });
    const withheld = events.filter((e) => e.action === 'residency.violation' && e.resource === 'lake.later.second');
    assert.equal(withheld.length, 1, 'reported once');
    assert.equal(withheld[0]?.result, 'deny');
    assert.match(withheld[0]?.reason ?? '', /withheld from share `later`.*guardrail `eu-stays`/);
    // Pulling again neither sends it nor reports it again.
    await pull();
    assert.deepEqual(await replicated(), ['first']);
    assert.equal((await pair.producer.ws.services.decisionLog.listDecisions({ actor: 'share:consumer', limit: 1000 })).filter((e) => e.resource === 'lake.later.second' && e.action === 'residency.violation').length, 1);
  });

  it("a tag change that binds a replicated table to a region outside the consumer's removes it at the next pull", async () => {
    // threat: re-tagging a table already shared as EU-bound leaves its replica (and reads of it) at a consumer outside the EU
    await ok(pair.producer, 'PUT', '/v1/resources/lake.later.first/tags/residency', { value: 'eu' });
    await pull();
    assert.deepEqual(await replicated(), []);
    const share = (await ok(pair.producer, 'GET', '/v1/shares')).shares.find((s: { name: string }) => s.name === 'later');
    assert.deepEqual(share.withheld.map((w: { table: string }) => w.table), ['lake.later.first', 'lake.later.second']);
  });
});
