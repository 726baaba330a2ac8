import assert from 'node:assert/strict';
import { createDecisionLog } from '../../src/store/decision-log.js';
import type { DecisionLogEntry } from '../../src/store/decision-log.js';
import { StewardError } from '../../src/errors.js';
import { forEachStore } from '../support/stores.js';

const entry = (actor: string, i: number): DecisionLogEntry => ({
  actor,
  action: 'authorize:SELECT',
  resource: `sales.crm.t${i}`,
  result: i % 2 === 0 ? 'allow' : 'deny',
  reason: i % 2 === 0 ? 'GRANT' : 'NO_GRANT',
  ...(i % 3 === 0 ? { details: { i, nested: { ok: true } } } : {}),
});

forEachStore('appends a batch in one statement and pages newest first', async ({ db }) => {
  const log = createDecisionLog(db);
  const batch = Array.from({ length: 2500 }, (_, i) => entry(i % 2 === 0 ? 'user:alice' : 'user:bob', i));
  await log.appendDecisions(batch);
  await log.appendDecisions([]);

  const page1 = await log.listDecisions({ limit: 1000 });
  assert.equal(page1.length, 1000);
  assert.deepEqual(page1[0], { ...page1[0], ...batch[2499] });
  const ids = page1.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => b - a), 'newest first');

  let all = page1;
  for (let before = page1.at(-1)?.id; before !== undefined; ) {
    const page = await log.listDecisions({ limit: 1000, before });
    all = all.concat(page);
    before = page.length === 0 ? undefined : page.at(-1)?.id;
  }
  assert.equal(all.length, 2500);
  assert.deepEqual(
    all.reverse().map(({ id: _id, at: _at, ...rest }) => rest),
    batch,
  );

  const bob = await log.listDecisions({ actor: 'user:bob', limit: 10 });
  assert.equal(bob.length, 10);
  assert.ok(bob.every((e) => e.actor === 'user:bob'));
});

forEachStore('filters by time', async ({ db }) => {
  const log = createDecisionLog(db);
  await log.appendDecisions([entry('user:a', 1)]);
  const [first] = await log.listDecisions();
  assert.ok(first);
  assert.equal((await log.listDecisions({ since: first.at })).length, 1);
  assert.equal((await log.listDecisions({ since: new Date(Date.parse(first.at) + 1000) })).length, 0);
});

forEachStore('rejects page sizes over 1000 and bad cursors', async ({ db }) => {
  const log = createDecisionLog(db);
  for (const q of [{ limit: 1001 }, { limit: 0 }, { limit: 1.5 }, { since: 'yesterday' }, { before: Number.NaN }]) {
    await assert.rejects(log.listDecisions(q), (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_VALIDATION', JSON.stringify(q));
  }
});

// Threat: a caller-chosen resource name with characters PostgreSQL cannot store
// (NUL, a lone surrogate) or of huge size must not make its own audit row fail.
forEachStore('stores hostile text instead of failing the append', async ({ db }) => {
  const log = createDecisionLog(db);
  await log.appendDecisions([
    { actor: 'user:\u0000evil', action: 'x', resource: 'a\uD800b', result: 'deny', reason: 'r'.repeat(100_000), details: { 'k\u0000': 'v\u0000', s: '\uDC00' } },
  ]);
  const [e] = await log.listDecisions();
  assert.ok(e);
  assert.equal(e.actor, 'user:\uFFFDevil');
  assert.equal(e.resource, 'a\uFFFDb');
  assert.equal(e.reason.length, 4096);
  assert.deepEqual(e.details, { 'k\uFFFD': 'v\uFFFD', s: '\uFFFD' });
  await assert.rejects(log.appendDecisions([{ ...entry('a', 1), result: 'maybe' as 'allow' }]), (err: unknown) => err instanceof StewardError);
});
