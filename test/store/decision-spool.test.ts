/**
 * The decision spool (src/store/decision-spool.ts): decisions made while the
 * store was closed reach the log exactly once, with the time they were made,
 * whatever crash falls between the insert and the files' deletion; and a file
 * somebody else planted never reaches it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { ingestSpool, spoolDecision, SPOOL_DIR } from '../../src/store/decision-spool.js';
import { createDecisionLog, type DecisionLogEntry } from '../../src/store/decision-log.js';
import { forEachStore } from '../support/stores.js';
import { tempDirs } from '../support/temp-dirs.js';

const home = tempDirs('steward-spool-');

const entry = (i: number): DecisionLogEntry => ({
  actor: 'user:local-admin (local)',
  action: 'authorize.SELECT',
  resource: `lake.claims.t${i}`,
  result: i % 2 === 0 ? 'allow' : 'deny',
  reason: `reason ${i}`,
  details: { principal: 'user:alice', grants: [], guardrails: [] },
});

const files = async (h: string): Promise<string[]> => (await fs.readdir(path.join(h, SPOOL_DIR))).sort();

forEachStore('spooled decisions reach the log once, with their own times, and leave no file', async ({ db }) => {
  const h = await home();
  const times = [Date.UTC(2026, 0, 1, 9), Date.UTC(2026, 0, 1, 10), Date.UTC(2026, 0, 1, 11)];
  await Promise.all(times.map((t, i) => spoolDecision(h, entry(i), new Date(t))));
  const spooled = await files(h);
  assert.equal(spooled.length, 3);
  for (const f of spooled) assert.equal((await fs.stat(path.join(h, SPOOL_DIR, f))).mode & 0o777, 0o600);
  // A crash after the commit and before the deletion: the same files are there at the next open.
  const kept = await Promise.all(spooled.map(async (f) => [f, await fs.readFile(path.join(h, SPOOL_DIR, f))] as const));

  assert.deepEqual(await ingestSpool(db, h), { ingested: 3, rejected: [] });
  assert.deepEqual(await files(h), []);
  for (const [f, body] of kept) await fs.writeFile(path.join(h, SPOOL_DIR, f), body, { mode: 0o600 });
  assert.deepEqual(await ingestSpool(db, h), { ingested: 0, rejected: [] }, 'ingested again, logged once');
  assert.deepEqual(await files(h), []);

  const logged = (await createDecisionLog(db).listDecisions({ limit: 10 })).reverse();
  assert.deepEqual(
    logged.map((e) => [e.at, e.resource, e.result]),
    times.map((t, i) => [new Date(t).toISOString(), `lake.claims.t${i}`, i % 2 === 0 ? 'allow' : 'deny']),
  );
});

forEachStore('a spool file someone else could have written is kept aside and never logged', async ({ db }) => {
  const h = await home();
  await spoolDecision(h, entry(1));
  const [good] = await files(h);
  const dir = path.join(h, SPOOL_DIR);
  const forged = (name: string, body: unknown, mode = 0o600): Promise<void> => fs.writeFile(path.join(dir, name), JSON.stringify(body), { mode });
  const key = (n: number): string => `${String(Date.now()).padStart(13, '0')}-1-${n.toString(16).padStart(16, '0')}`;
  const valid = (k: string): unknown => ({ key: k, at: new Date().toISOString(), entry: entry(9) });
  await forged(`${key(1)}.json`, valid(key(1)), 0o644); // readable and writable by others
  await forged(`${key(2)}.json`, valid(key(3))); // a key that is not its name
  await forged(`${key(4)}.json`, { key: key(4), at: 'yesterday', entry: entry(9) });
  await forged(`${key(5)}.json`, { key: key(5), at: new Date().toISOString(), entry: { ...entry(9), result: 'maybe' } });
  await fs.writeFile(path.join(dir, `${key(6)}.json`), '{', { mode: 0o600 });
  await fs.writeFile(path.join(dir, 'notes.txt'), 'not a spool file', { mode: 0o600 });

  const r = await ingestSpool(db, h);
  assert.equal(r.ingested, 1, 'only the real decision');
  assert.equal(r.rejected.length, 5, r.rejected.join('\n'));
  assert.match(r.rejected.join('\n'), /mode is 0644/);
  const left = await files(h);
  assert.ok(!left.includes(good as string));
  assert.deepEqual(left.filter((f) => f.endsWith('.rejected')).length, 5);
  assert.ok(left.includes('notes.txt'), 'files that are not spool files are left alone');
  const logged = await createDecisionLog(db).listDecisions({ limit: 10 });
  assert.deepEqual(logged.map((e) => e.resource), ['lake.claims.t1']);
});

forEachStore('a temporary file is removed only once its writer cannot still be writing it', async ({ db }) => {
  const h = await home();
  await spoolDecision(h, entry(1));
  const dir = path.join(h, SPOOL_DIR);
  await fs.writeFile(path.join(dir, '.fresh.tmp'), '{"half', { mode: 0o600 });
  await fs.writeFile(path.join(dir, '.stale.tmp'), '{"half', { mode: 0o600 });
  const old = new Date(Date.now() - 2 * 3600_000);
  await fs.utimes(path.join(dir, '.stale.tmp'), old, old);
  assert.deepEqual(await ingestSpool(db, h), { ingested: 1, rejected: [] });
  assert.deepEqual(await files(h), ['.fresh.tmp']);
});
