/**
 * Two real `steward serve` processes with separate workspaces, shared by the
 * tests of this file (a fresh start is most of its time), the consumer pulling
 * on its own schedule: a share appears at the consumer, a tag change at the
 * producer is visible there within the stated bound (docs/sharing.md: 10 s), a
 * dropped table disappears, a revocation stops reads at once and empties the
 * consumer's catalog; both read modes (direct files on one storage, through
 * the producer); and last, the consumer killed -9 in the middle of a large
 * pull and restarted (afterwards its replica is exactly the producer's: no
 * gaps, no duplicates).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { callServe, kill9, serveHarness, startServeProcess, type ServeProcess } from '../support/serve-process.js';
import { pollUntil } from '../support/poll.js';

/** The bound docs/sharing.md states for a producer change to reach a consumer with the default 1 s pull interval. */
const VISIBLE_WITHIN_MS = 10_000;
const TABLES = 150;
/** Tables whose tag changes while the consumer is down: one feed the restarted consumer is killed in the middle of applying. */
const TAGGED = 100;

let lake: string;
/** Storage only the producer has: under its lake roots, not the consumer's. */
let producerOnly: string;
let producerHome: string;
let consumerHome: string;
let producer: ServeProcess | undefined;
let producerToken = '';
let consumerScheduler: 'on' | 'off' = 'on';
// Both workspaces have `lake` under their lake roots: one machine, one storage.
const consumer = serveHarness(() => ({ STEWARD_HOME: consumerHome, STEWARD_LAKE_ROOTS: lake, ...(consumerScheduler === 'off' ? { STEWARD_ACCESS_SCHEDULER: 'off' } : {}) }));

before(async () => {
  lake = await mkdtemp(path.join(os.tmpdir(), 'steward-share-lake-'));
  producerOnly = await mkdtemp(path.join(os.tmpdir(), 'steward-share-own-'));
  producerHome = await mkdtemp(path.join(os.tmpdir(), 'steward-share-p-'));
  consumerHome = await mkdtemp(path.join(os.tmpdir(), 'steward-share-c-'));
  await writeFile(path.join(lake, 'orders.csv'), 'id,region,amount\n1,eu,10\n2,us,20\n');
  await writeFile(path.join(producerOnly, 'orders.csv'), 'id,region,amount\n3,eu,30\n');
});

after(async () => {
  await consumer.kill9();
  await kill9(producer);
  for (const d of [lake, producerOnly, producerHome, consumerHome]) await rm(d, { recursive: true, force: true });
});

const p = async (method: string, url: string, body?: unknown): Promise<any> => {
  const r = await callServe(producer, producerToken, method, url, body);
  assert.ok(r.status < 300, `producer ${method} ${url}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
};
const c = async (method: string, url: string, body?: unknown): Promise<any> => {
  const r = await consumer.call(method, url, body);
  assert.ok(r.status < 300, `consumer ${method} ${url}: ${r.status} ${JSON.stringify(r.json)}`);
  return r.json;
};
const replicaTables = async (catalog = 'producer-orders'): Promise<{ name: string; tags: Record<string, string> }[]> => {
  const r = await c('GET', `/v1/tables?catalog=${catalog}`);
  return r.tables;
};
const tagOf = async (resource: string, key: string): Promise<string | undefined> => {
  const r = await consumer.call('GET', `/v1/resources/${resource}/tags`);
  return r.status === 200 ? r.json.tags.find((t: { key: string }) => t.key === key)?.value : undefined;
};

/** Runs `fn` over `items`, `width` at a time: the server commits one change at a time, but requests overlap their I/O. */
async function inBatches<T>(items: readonly T[], width: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(fn));
}

test('two workspaces: share, tag change within the bound, drop, revoke', { timeout: 300_000 }, async () => {
  // Two fresh workspaces start at once: a first start (a new embedded store) is most of this file's time.
  [producer] = await Promise.all([startServeProcess({ STEWARD_HOME: producerHome, STEWARD_LAKE_ROOTS: [lake, producerOnly].join(path.delimiter) }), consumer.start()]);
  producerToken = producer.bootstrapToken ?? '';
  const producerKey = (await p('GET', '/v1/shares/identity')).publicKey;
  const consumerKey = (await c('GET', '/v1/shares/identity')).publicKey;
  await p('POST', '/v1/catalogs', { name: 'lake' });
  await p('POST', '/v1/databases', { catalog: 'lake', name: 'sales' });
  await inBatches(Array.from({ length: TABLES }, (_, i) => i), 8, (i) => p('POST', '/v1/tables/lake', { catalog: 'lake', database: 'sales', table: `t${i}`, location: path.join(lake, 'orders.csv'), format: 'csv' }));
  await p('PUT', '/v1/tag-keys/confidentiality', { values: ['public', 'internal', 'restricted'] });
  await p('PUT', '/v1/resources/lake.sales.t0/tags/confidentiality', { value: 'internal' });
  await p('POST', '/v1/shares/peers', { name: 'consumer', publicKey: consumerKey });
  await p('POST', '/v1/shares', { name: 'orders', to: 'consumer', objects: ['lake.sales'] });
  // Revoked below; `orders` stays for the crash test.
  await p('POST', '/v1/shares', { name: 'gone', to: 'consumer', objects: ['lake.sales.t0'] });
  await c('POST', '/v1/shares/peers', { name: 'producer', publicKey: producerKey, url: producer.url });

  // Nobody pulls by hand: the consumer's scheduler does.
  await pollUntil('the first sync', async () => (await replicaTables()).length === TABLES && (await replicaTables('producer-gone')).length === 1, 60_000, 200);
  assert.equal(await tagOf('producer-orders.sales.t0', 'confidentiality'), 'internal');

  // A tag change at the producer, seen at the consumer within the stated bound.
  const changed = Date.now();
  await p('PUT', '/v1/resources/lake.sales.t0/tags/confidentiality', { value: 'restricted' });
  const seen = await pollUntil('the tag change', async () => (await tagOf('producer-orders.sales.t0', 'confidentiality')) === 'restricted', VISIBLE_WITHIN_MS, 50);
  assert.ok(seen - changed <= VISIBLE_WITHIN_MS, `visible after ${seen - changed} ms`);

  // A drop at the producer disappears at the consumer.
  await p('DELETE', '/v1/tables/lake/sales/t1?cascade=true');
  await pollUntil('the drop', async () => !(await replicaTables()).some((t) => t.name === 't1'), VISIBLE_WITHIN_MS, 50);

  // Revoke: reads stop at once; the consumer's catalog is gone within the bound.
  const read = await c('POST', '/v1/shares/read', { peer: 'producer', share: 'gone', sql: 'SELECT count(*) AS n FROM lake.sales.t0' });
  assert.deepEqual(read.rows, [[2]]);
  await p('POST', '/v1/shares/gone/revoke', {});
  const after = await consumer.call('POST', '/v1/shares/read', { peer: 'producer', share: 'gone', sql: 'SELECT count(*) AS n FROM lake.sales.t0' });
  assert.equal(after.status, 404, JSON.stringify(after.json));
  await pollUntil('the revoked catalog removed', async () => (await replicaTables('producer-gone')).length === 0, VISIBLE_WITHIN_MS, 50);
});

test('two workspaces on one storage: direct files for a share without limits, reads through the producer for a limited one', { timeout: 120_000 }, async () => {
  assert.ok(producer !== undefined, 'runs after the first test, on its processes');
  await p('POST', '/v1/databases', { catalog: 'lake', name: 'files' });
  await p('POST', '/v1/tables/lake', { catalog: 'lake', database: 'files', table: 'orders', location: path.join(lake, 'orders.csv'), format: 'csv' });
  await p('POST', '/v1/tables/lake', { catalog: 'lake', database: 'files', table: 'own', location: path.join(producerOnly, 'orders.csv'), format: 'csv' });

  // threat: files carry every column and row, so a limited share read from files would leak what its limits hide
  const limitedFiles = await callServe(producer, producerToken, 'POST', '/v1/shares', { name: 'leaky', to: 'consumer', objects: ['lake.files.orders'], excludeColumns: { 'lake.files.orders': ['amount'] }, directFiles: true });
  assert.equal(limitedFiles.status, 400, JSON.stringify(limitedFiles.json));
  assert.match(limitedFiles.json.error.message, /^directFiles: a share with column or row limits/);

  await p('POST', '/v1/shares', { name: 'direct', to: 'consumer', objects: ['lake.files'], directFiles: true });
  await p('POST', '/v1/shares', { name: 'limited', to: 'consumer', objects: ['lake.sales.t0'], rows: { 'lake.sales.t0': "region = 'eu'" } });
  await c('POST', '/v1/users', { name: 'ana' });
  // The scheduler pulls both; `own` lies outside the consumer's lake roots and is refused there, named, and nothing else waits for it.
  const subscription = async (share: string): Promise<any> => (await c('GET', '/v1/shares/status')).subscriptions.find((x: { share: string }) => x.share === share);
  await pollUntil('both shares pulled', async () => (await subscription('direct'))?.tables === 1 && (await subscription('limited'))?.tables === 1, 30_000, 100);
  const conflicts = (await subscription('direct')).conflicts as { key: string; message: string }[];
  // threat: a producer (or a careless admin) points the consumer's gateway at files outside the consumer's own lake roots
  assert.ok(conflicts.some((x) => x.key === 'table:files.own' && /outside the lake roots/.test(x.message)), JSON.stringify(conflicts));
  for (const catalog of ['producer-direct', 'producer-limited']) await c('POST', '/v1/grants', { principal: 'user:ana', resource: catalog, permissions: ['SELECT'] });

  const reads = async (share: string): Promise<number> => (await p('GET', `/v1/query/history?principal=user:share.${share}&limit=100`)).entries.length;
  const asAna = (sql: string) => consumer.call('POST', '/v1/query', { sql, as: 'user:ana' });

  // Direct files: the consumer's gateway reads the shared storage itself; the producer serves no read.
  const direct = await asAna('SELECT sum(amount) AS total FROM "producer-direct".files.orders');
  assert.equal(direct.status, 200, JSON.stringify(direct.json));
  assert.deepEqual(direct.json.rows, [{ total: 30 }]);
  assert.equal(await reads('direct'), 0, 'a direct read never reaches the producer');

  // Through the producer: its row limit holds, and it served the read.
  const limited = await asAna('SELECT id, region FROM "producer-limited".sales.t0');
  assert.equal(limited.status, 200, JSON.stringify(limited.json));
  assert.deepEqual(limited.json.rows, [{ id: 1, region: 'eu' }]);
  assert.ok((await reads('limited')) > 0, 'the limited share was read through the producer');

  // threat: a consumer keeps reading a revoked direct-files share: it stops at the consumer's next pull, within the bound
  await p('POST', '/v1/shares/direct/revoke', {});
  await pollUntil('direct reads stop after revoke', async () => (await asAna('SELECT count(*) FROM "producer-direct".files.orders')).status === 404, VISIBLE_WITHIN_MS, 100);
});

test('two workspaces: the consumer killed -9 in the middle of applying a large feed converges with no gaps or duplicates', { timeout: 300_000 }, async () => {
  assert.ok(producer !== undefined, 'runs after the first test, on its processes');
  const orders = async (): Promise<{ cursor: number; lastServedAt: string | null }> => (await p('GET', '/v1/shares/status')).shares.find((x: { name: string }) => x.name === 'orders');
  // A new tag on each of TAGGED tables while the consumer is down: one large feed when it is back.
  await consumer.kill9();
  await inBatches(Array.from({ length: TAGGED }, (_, i) => i + 2), 8, (i) => p('PUT', `/v1/resources/lake.sales.t${i}/tags/confidentiality`, { value: 'public' }));
  const servedBefore = (await orders()).lastServedAt;
  await consumer.start();
  // The producer has answered the restarted consumer's pull: it is applying the feed now.
  await pollUntil('a feed served to the restarted consumer', async () => (await orders()).lastServedAt !== servedBefore, 30_000, 5);
  await consumer.kill9();
  // Restarted without its scheduler, to look at what the crash left: the replica is whole, before or after that feed, never half of it (one transaction per feed).
  consumerScheduler = 'off';
  await consumer.start();
  const hits = (await c('GET', '/v1/catalog/search?tags=confidentiality=public')).results.filter((h: { resource: string; level: string }) => h.level === 'table' && h.resource.startsWith('producer-orders.'));
  assert.ok(hits.length === 0 || hits.length === TAGGED, `a torn apply: ${hits.length} of ${TAGGED} tables carry the new tag`);
  // And a pull (the scheduler's, by hand: it waits out the killed process's lease) converges to exactly the producer's state:
  // every table once, every tag, cursor at the producer's.
  await pollUntil('convergence after the crash', async () => {
    await c('POST', '/v1/shares/pull', { peer: 'producer' });
    const t = await replicaTables();
    if (t.length !== TABLES - 1) return false;
    const last = await tagOf(`producer-orders.sales.t${TAGGED + 1}`, 'confidentiality');
    return last === 'public';
  }, 60_000, 200);
  const names = (await replicaTables()).map((t) => t.name).sort();
  assert.deepEqual(names, Array.from({ length: TABLES }, (_, i) => `t${i}`).filter((n) => n !== 't1').sort());
  for (let i = 2; i < 2 + TAGGED; i += 33) assert.equal(await tagOf(`producer-orders.sales.t${i}`, 'confidentiality'), 'public');
  const sub = (await c('GET', '/v1/shares/status')).subscriptions.find((x: { share: string }) => x.share === 'orders');
  assert.equal(sub.status, 'active');
  assert.equal(sub.cursor, (await orders()).cursor);
});
