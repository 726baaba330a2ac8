/**
 * Sharing between two workspaces over real HTTP (two servers, two stores):
 * trust, shares, the signed change feed and what reaches the consumer's
 * catalog, reads through the producer, revocation, and the attacks on each:
 * forged and replayed feeds, share tokens used elsewhere, a consumer asking
 * for what is not shared to it.
 *
 * Pulls are run by hand here (the scheduler loop is off) so every step is
 * deterministic; the periodic pull is tested with real processes in
 * two-processes.test.ts.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SignJWT, generateKeyPair, exportJWK, type CryptoKey } from 'jose';
import type { PolicyWorld } from '../../src/policy/model.js';
import { atProducer as atProducerOf, ok, shareToken, startHostile, startPair, type Pair } from './support.js';

process.env['STEWARD_ACCESS_SCHEDULER'] = 'off';

let pair: Pair;
const CLAIMS = 'lake.claims.patient_claims';
const REPLICA = 'producer-claims';

before(async () => {
  pair = await startPair();
  await ok(pair.producer, 'POST', '/v1/shares', {
    name: 'claims',
    to: 'consumer',
    objects: [CLAIMS],
    excludeColumns: { [CLAIMS]: ['amount'] },
    rows: { [CLAIMS]: "hospital = 'North Hospital'" },
  });
});
after(async () => {
  await pair?.close();
});

const world = async (which: 'producer' | 'consumer'): Promise<PolicyWorld> => (await pair[which].ws.services.state.snapshot()).world;
const pull = async (body: Record<string, unknown> = {}): Promise<any[]> => (await ok(pair.consumer, 'POST', '/v1/shares/pull', body)).pulls;
const replicaTable = async (name = 'patient_claims') => (await world('consumer')).tables.find((t) => t.catalog === REPLICA && t.database === 'claims' && t.name === name);
const tagsOf = (w: PolicyWorld, resource: string): Record<string, string> =>
  Object.fromEntries(
    w.tagAssignments
      .filter((a) => [a.resource.catalog, a.resource.database, 'table' in a.resource ? a.resource.table : undefined, 'column' in a.resource ? a.resource.column : undefined].filter((x) => x !== undefined).join('.') === resource)
      .map((a) => [a.key, a.value]),
  );

const token = (opts: { share: string; key?: CryptoKey; iss?: string; aud?: string }): Promise<string> => shareToken(pair, opts);
const atProducer = (path: string, bearer: string, body?: unknown): Promise<{ status: number; json: any }> => atProducerOf(pair, path, bearer, body);

describe('policy files at the producer', () => {
  // Threat: an export that apply refuses (share grant ids are not names) or an apply that deletes the share's grants and
  // filter, silently widening or cutting off what a consumer reads.
  it("neither export nor apply the share's principal, grants and filter, so the export applies back with an empty plan", async () => {
    const exported = await ok(pair.producer, 'GET', '/v1/policy/export');
    assert.doesNotMatch(exported.yaml as string, /share[.:-]claims/, 'the export names no entity the share owns');
    const files = { files: [{ file: 'policy.yaml', text: exported.yaml as string }] };
    const plan = await ok(pair.producer, 'POST', '/v1/policy/plan', files);
    assert.equal(plan.changes, 0, plan.text);
    await ok(pair.producer, 'POST', '/v1/policy/apply', files);
    const w = await world('producer');
    assert.ok(w.grants.some((g) => g.principal === 'user:share.claims'), "the share's grants survive the apply");
    assert.ok(w.filters.some((f) => f.name === 'share-claims'), "the share's filter survives the apply");
  });
});

describe('identity and trust', () => {
  it('prints an Ed25519 public key and refuses to trust a malformed key or its own', async () => {
    // threat: a careless admin trusts garbage (or itself) and every later signature check is meaningless
    const me = (await ok(pair.consumer, 'GET', '/v1/shares/identity')).publicKey;
    assert.match(me, /^ed25519:[A-Za-z0-9_-]{43}$/);
    const bad = await pair.consumer.call('POST', '/v1/shares/peers', { name: 'x', publicKey: 'ed25519:short' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /^publicKey: /);
    const own = await pair.consumer.call('POST', '/v1/shares/peers', { name: 'self', publicKey: me });
    assert.equal(own.status, 400);
  });

  it('refuses to re-point a trusted name at another key', async () => {
    // threat: an admin tricked into "updating" a peer's key hands the attacker's key every share bound to that name
    const other = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const r = await pair.producer.call('POST', '/v1/shares/peers', { name: 'consumer', publicKey: `ed25519:${(await exportJWK(other.publicKey)).x}` });
    assert.equal(r.status, 409, JSON.stringify(r.json));
  });
});

describe('replication', () => {
  it("a pull brings the shared table into its own catalog with the producer's tags, without hidden columns", async () => {
    const [report] = await pull();
    assert.equal(report.status, 'active', JSON.stringify(report));
    assert.equal(report.catalog, REPLICA);
    const t = await replicaTable();
    assert.ok(t, 'the shared table is in the consumer catalog');
    const columns = t.columns.map((c) => c.name);
    // `amount`: hidden by the share; `ssn`, `patient_name`: stripped by the producer's pii guardrail (its policy is the ceiling).
    for (const hidden of ['amount', 'ssn', 'patient_name']) assert.ok(!columns.includes(hidden), `${hidden} must not be published`);
    assert.ok(columns.includes('hospital') && columns.includes('claim_id'));
    const w = await world('consumer');
    assert.deepEqual(tagsOf(w, `${REPLICA}.claims.patient_claims`), { confidentiality: 'restricted', domain: 'claims', pii: 'false' });
    assert.ok(!w.tables.some((x) => x.catalog === REPLICA && x.name === 'revenue'), 'an unshared table is not replicated');
    // Pulling again changes nothing (idempotent): same cursor, no entries.
    const [again] = await pull();
    assert.equal(again.entries, 0);
    assert.equal(again.from, report.to);
  });

  it('keeps the replica read-only: local tag and drop are refused, local grants are allowed', async () => {
    // threat: a consumer admin re-tags a shared table (e.g. pii=false on a pii column) and widens its own tag grants beyond the producer's classification
    const tag = await pair.consumer.call('PUT', `/v1/resources/${REPLICA}.claims.patient_claims/tags/pii`, { value: 'true' });
    assert.equal(tag.status, 403, JSON.stringify(tag.json));
    assert.match(tag.json.error.message, /read-only/);
    const drop = await pair.consumer.call('DELETE', `/v1/tables/${REPLICA}/claims/patient_claims?cascade=true`);
    assert.equal(drop.status, 403);
    const grant = await pair.consumer.ws.services.state.change({
      actor: 'test',
      action: 'grant.create',
      resource: 'g',
      build: () => [
        { op: 'put', kind: 'user', entity: { name: 'ana' } },
        { op: 'put', kind: 'grant', entity: { id: 'ana-claims', principal: 'user:ana', resource: { kind: 'table', catalog: REPLICA, database: 'claims', table: 'patient_claims' }, permissions: ['SELECT'], grantable: [] } },
      ],
    });
    assert.ok(grant.version > 0);
  });

  it('a tag change and a schema change at the producer reach the consumer at its next pull, in order', async () => {
    await ok(pair.producer, 'PUT', `/v1/resources/lake.claims.patient_claims/tags/confidentiality`, { value: 'internal' });
    await ok(pair.producer, 'PUT', `/v1/resources/lake.claims.patient_claims.region/tags/confidentiality`, { value: 'public' });
    const [r] = await pull();
    assert.ok(r.entries >= 1, JSON.stringify(r));
    const w = await world('consumer');
    assert.equal(tagsOf(w, `${REPLICA}.claims.patient_claims`)['confidentiality'], 'internal');
    assert.equal(tagsOf(w, `${REPLICA}.claims.patient_claims.region`)['confidentiality'], 'public');
    // pii=true on `hospital`: the producer's guardrail now strips it from the share, so the column leaves the replica at the next pull.
    await ok(pair.producer, 'PUT', `/v1/resources/lake.claims.patient_claims.hospital/tags/pii`, { value: 'true' });
    await pull();
    assert.ok(!(await replicaTable())?.columns.some((c) => c.name === 'hospital'), 'a column the producer stops sharing leaves the replica');
    await ok(pair.producer, 'DELETE', `/v1/resources/lake.claims.patient_claims.hospital/tags/pii`);
    await pull();
    assert.ok((await replicaTable())?.columns.some((c) => c.name === 'hospital'));
  });
});

describe('attacks on the feed and the share token', () => {
  it('refuses a feed signed by a key the consumer does not trust (a forged feed)', async () => {
    // threat: whoever answers at the producer's URL (DNS, proxy, compromised host) feeds the consumer invented tables and tags
    const forger = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const trusted = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const trustedKey = `ed25519:${(await exportJWK(trusted.publicKey)).x}`;
    const hostile = await startHostile(async (req) => {
      if (req.url?.startsWith('/v1/sharing/offers')) return { status: 200, json: { shares: [{ name: 'forged', status: 'active' }] } };
      const nonce = new URL(req.url ?? '', 'http://x').searchParams.get('nonce');
      const iat = Math.floor(Date.now() / 1000);
      const feed = await new SignJWT({ feed: { share: 'forged', nonce, from: 0, to: 1, full: false, revoked: false, entries: [{ seq: 1, key: 'table:x.evil', op: 'put', entity: { kind: 'table', database: 'x', name: 'evil', columns: [{ name: 'a', type: 'INTEGER' }], tags: {}, columnTags: {} } }] } })
        .setProtectedHeader({ alg: 'EdDSA', typ: 'steward-share-feed+jwt' })
        .setIssuer(trustedKey)
        .setAudience(pair.consumerKey)
        .setIssuedAt(iat)
        .setExpirationTime(iat + 60)
        .sign(forger.privateKey);
      return { status: 200, json: { feed } };
    });
    try {
      await ok(pair.consumer, 'POST', '/v1/shares/peers', { name: 'mallory', publicKey: trustedKey, url: hostile.url });
      const [r] = await pull({ peer: 'mallory' });
      assert.match(r.error ?? '', /feed refused: signature does not verify/);
      assert.ok(!(await world('consumer')).catalogs.some((c) => c.name === 'mallory-forged'), 'nothing of the forged feed is applied');
    } finally {
      await hostile.close();
    }
  });

  it('refuses a replayed old feed', async () => {
    // threat: an attacker on the path replays yesterday's genuine feed to resurrect a dropped table or an old, weaker tag
    let recorded: unknown;
    const proxy = await startHostile(async (req) => {
      if (recorded !== undefined && req.url?.startsWith('/v1/sharing/feed/')) return { status: 200, json: recorded };
      const res = await fetch(`${pair.producer.url}${req.url ?? ''}`, { headers: { authorization: req.headers.authorization ?? '' } });
      const json = await res.json();
      if (req.url?.startsWith('/v1/sharing/feed/')) recorded = json;
      return { status: res.status, json };
    });
    try {
      await ok(pair.consumer, 'POST', '/v1/shares/peers', { name: 'producer', publicKey: pair.producerKey, url: proxy.url });
      const [first] = await pull({ peer: 'producer' });
      assert.equal(first.error, undefined, JSON.stringify(first));
      const [second] = await pull({ peer: 'producer' });
      assert.match(second.error ?? '', /replayed/);
      assert.equal(second.from, first.to, 'the cursor did not move');
    } finally {
      await ok(pair.consumer, 'POST', '/v1/shares/peers', { name: 'producer', publicKey: pair.producerKey, url: pair.producer.url });
      await proxy.close();
    }
  });

  it('refuses a share token used against another share', async () => {
    // threat: a consumer holding a token for one share reads the feed or data of another
    await ok(pair.producer, 'POST', '/v1/shares', { name: 'finance', to: 'consumer', objects: ['lake.finance'] });
    const forClaims = await token({ share: 'claims' });
    const feed = await atProducer('/v1/sharing/feed/finance?from=0&nonce=aaaaaaaaaaaaaaaaaaaa', forClaims);
    assert.equal(feed.status, 401, JSON.stringify(feed.json));
    assert.match(feed.json.error.message, /it is for share `claims`, not `finance`/);
    const read = await atProducer('/v1/sharing/query/finance', forClaims, { sql: 'SELECT * FROM lake.finance.revenue' });
    assert.equal(read.status, 401);
    const listing = await atProducer('/v1/sharing/offers', forClaims);
    assert.equal(listing.status, 401, 'a token for one share does not list the others');
  });

  it("refuses a token signed by an untrusted workspace, and hides another consumer's share", async () => {
    // threat: an unknown workspace, or a trusted one, reads a share made for someone else
    const stranger = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const strangerKey = `ed25519:${(await exportJWK(stranger.publicKey)).x}`;
    const r = await atProducer('/v1/sharing/feed/claims?from=0&nonce=aaaaaaaaaaaaaaaaaaaa', await token({ share: 'claims', key: stranger.privateKey, iss: strangerKey }));
    assert.equal(r.status, 401);
    assert.match(r.json.error.message, /does not trust/);
    // A consumer's own key claiming to be the trusted consumer: the signature does not verify.
    const spoof = await atProducer('/v1/sharing/feed/claims?from=0&nonce=aaaaaaaaaaaaaaaaaaaa', await token({ share: 'claims', key: stranger.privateKey }));
    assert.equal(spoof.status, 401);
    const thirdKey = `ed25519:${(await exportJWK((await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true })).publicKey)).x}`;
    await ok(pair.producer, 'POST', '/v1/shares/peers', { name: 'third', publicKey: thirdKey });
    await ok(pair.producer, 'POST', '/v1/shares', { name: 'thirds', to: 'third', objects: ['lake.finance.revenue'] });
    const theirs = await atProducer('/v1/sharing/feed/thirds?from=0&nonce=aaaaaaaaaaaaaaaaaaaa', await token({ share: 'thirds' }));
    assert.equal(theirs.status, 404, 'another consumer’s share does not exist for this one');
    const offers = await atProducer('/v1/sharing/offers', await token({ share: '*' }));
    assert.deepEqual(offers.json.shares.map((s: { name: string }) => s.name).sort(), ['claims', 'finance']);
  });
});

describe('reads through the producer', () => {
  it("applies the share's row and column limits before anything leaves", async () => {
    const r = await ok(pair.consumer, 'POST', '/v1/shares/read', { peer: 'producer', share: 'claims', sql: `SELECT hospital, count(*) AS n FROM ${CLAIMS} GROUP BY hospital` });
    assert.deepEqual(r.rows.map((x: unknown[]) => x[0]), ['North Hospital']);
  });

  it('refuses columns hidden by the share and tables not shared', async () => {
    // threat: a consumer asks the producer's gateway for more than the share gives
    const hidden = await pair.consumer.call('POST', '/v1/shares/read', { peer: 'producer', share: 'claims', sql: `SELECT sum(amount) FROM ${CLAIMS}` });
    assert.ok(hidden.status >= 400 && hidden.status < 500, JSON.stringify(hidden.json));
    assert.match(hidden.json.error.message, /amount/);
    const pii = await pair.consumer.call('POST', '/v1/shares/read', { peer: 'producer', share: 'claims', sql: `SELECT ssn FROM ${CLAIMS}` });
    assert.ok(pii.status >= 400 && pii.status < 500);
    const unshared = await pair.consumer.call('POST', '/v1/shares/read', { peer: 'producer', share: 'claims', sql: 'SELECT * FROM lake.finance.revenue' });
    assert.ok(unshared.status >= 400 && unshared.status < 500, JSON.stringify(unshared.json));
    assert.match(unshared.json.error.message, /not found/);
  });
});

describe('drops, conflicts and revocation', () => {
  it('a local catalog with the replica name is reported and blocks nothing else', async () => {
    await ok(pair.consumer, 'POST', '/v1/catalogs', { name: 'producer-clash' });
    await ok(pair.producer, 'POST', '/v1/shares', { name: 'clash', to: 'consumer', objects: ['lake.finance.revenue'] });
    await ok(pair.producer, 'POST', '/v1/shares', { name: 'more', to: 'consumer', objects: ['lake.claims'] });
    const reports = await pull();
    const clash = reports.find((r) => r.share === 'clash');
    assert.equal(clash?.status, 'conflict', JSON.stringify(reports));
    assert.match(clash?.error ?? '', /local catalog `producer-clash` already exists/);
    const w = await world('consumer');
    assert.ok(w.tables.some((t) => t.catalog === 'producer-more'), 'the other shares were applied');
    assert.ok(!w.tables.some((t) => t.catalog === 'producer-clash'), 'the local catalog was left alone');
    const status = await ok(pair.consumer, 'GET', '/v1/shares/status');
    assert.ok(status.subscriptions.some((s: { share: string; status: string }) => s.share === 'clash' && s.status === 'conflict'));
  });

  it('a table dropped at the producer disappears at the consumer with the local grants on it', async () => {
    // threat: a grant on a dropped table lingers and silently applies to a new table of the same name later
    await ok(pair.producer, 'DELETE', `/v1/tables/lake/claims/patient_claims?cascade=true`);
    await pull();
    const w = await world('consumer');
    assert.equal(await replicaTable(), undefined);
    assert.ok(!w.grants.some((g) => g.id === 'ana-claims'), 'the local grant on the dropped table is revoked');
  });

  it('revoking stops reads at once and removes the catalog at the next pull; both sides audit it', async () => {
    await ok(pair.producer, 'POST', '/v1/shares/more/revoke', {});
    const read = await pair.consumer.call('POST', '/v1/shares/read', { peer: 'producer', share: 'more', sql: 'SELECT 1 FROM lake.claims.patient_claims' });
    assert.equal(read.status, 404, 'a read right after revoke is refused');
    const reports = await pull();
    assert.equal(reports.find((r) => r.share === 'more')?.status, 'revoked');
    assert.ok(!(await world('consumer')).catalogs.some((c) => c.name === 'producer-more'));
    // Both security lakes hold the share events (OCSF). Refused share tokens are counted per address and interval, written when the interval closes.
    const lakeEvents = async (server: Pair['producer']): Promise<Set<string>> => {
      await ok(server, 'POST', '/v1/audit/flush', {});
      const q = await ok(server, 'POST', '/v1/audit/query', { sql: "SELECT DISTINCT metadata.event_code AS code FROM steward.security.steward WHERE metadata.event_code LIKE 'share.%' OR metadata.event_code LIKE 'auth.share%'" });
      return new Set(q.rows.map((r: { code: string }) => r.code));
    };
    const atProducerLake = await lakeEvents(pair.producer);
    for (const code of ['share.create', 'share.revoke', 'share.feed.serve']) assert.ok(atProducerLake.has(code), `producer lake has ${code}: ${[...atProducerLake].join(', ')}`);
    const atConsumerLake = await lakeEvents(pair.consumer);
    for (const code of ['share.trust', 'share.pull', 'share.pull.revoked']) assert.ok(atConsumerLake.has(code), `consumer lake has ${code}: ${[...atConsumerLake].join(', ')}`);
  });
});
