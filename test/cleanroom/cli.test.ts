/**
 * `steward cleanroom …` with the built binary: the Scope 3 demo end to end as
 * the docs run it, refusals that exit non-zero naming the rule, and bad input
 * naming the field with nothing written.
 *
 * The demo is added on the embedded workspace; then a `steward serve` runs on
 * the same workspace, as after `npm start`, and every later command goes
 * through it (the CLI finds it by its server.json) instead of opening the
 * store itself each time, which is most of an embedded command's seconds.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { steward, stewardJson } from '../support/cli.js';
import { startServeProcess, type ServeProcess } from '../support/serve-process.js';

let home: string;
let env: NodeJS.ProcessEnv;
let server: ServeProcess | undefined;
const ok = async (args: string[]): Promise<string> => {
  const r = await steward(args, env);
  assert.equal(r.code, 0, `steward ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
};
const REFERENCE = 'SELECT r.product, SUM(p.s3_upstream_purchased_good) AS goods, SUM(t.s3_upstream_transportation) AS transport FROM reporting r JOIN purchase p ON r.ingredient = p.item JOIN transportation t ON p.item = t.item GROUP BY r.product ORDER BY r.product';

before(async () => {
  home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-cleanroom-cli-'));
  env = { STEWARD_HOME: home };
  await ok(['cleanroom', 'demo']);
  server = await startServeProcess(env);
  // Every command goes through the server from here on (not only the first).
  assert.match(await ok(['status']), new RegExp(`^target: local server pid ${server.child.pid} at `, 'm'));
  await ok(['cleanroom', 'create', 'scope3', '--as', 'rita', '--member', 'reporting=group:reporting-team:query,receive', '--invite', 'purchased-goods=group:purchase-team', '--invite', 'transportation=group:transport-team']);
});

after(async () => {
  if (server !== undefined) {
    const child = server.child;
    child.removeAllListeners('close');
    // SIGTERM: a clean shutdown that removes server.json before the workspace folder goes.
    await new Promise<void>((resolve) => {
      child.once('close', () => resolve());
      child.kill('SIGTERM');
    });
  }
  await fs.rm(home, { recursive: true, force: true });
});

describe('steward cleanroom', () => {
  it('refuses creating a collaboration in the name of an organisation the caller does not act for, and writes nothing', async () => {
    // threat: a member opens a collaboration as the supplier, so the supplier appears to have agreed
    const r = await steward(['cleanroom', 'create', 'fake', '--as', 'rita', '--member', 'purchased-goods=group:purchase-team:query,receive'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /creator\.principal: you do not act for `group:purchase-team` \[STEWARD_E_FORBIDDEN\]/);
    const list = await stewardJson<{ cleanrooms: { name: string }[] }>(['cleanroom', 'show'], env);
    assert.deepEqual(list.cleanrooms.map((c) => c.name), ['scope3']);
  });

  it('refuses a malformed rule with the field named and keeps the table without a rule', async () => {
    // threat: a typo in an output constraint silently leaves a table unprotected
    await ok(['cleanroom', 'accept', 'scope3', '--as', 'paul']);
    await ok(['cleanroom', 'associate', 'scope3', 'purchase', 'lake.purchase.purchase', '--as', 'paul', '--columns', 'item,s3_upstream_purchased_good']);
    const r = await steward(['cleanroom', 'rule', 'set', 'scope3', 'purchase', '--as', 'paul', '--type', 'aggregation', '--aggregate', 's3_upstream_purchased_good=SUM', '--join', 'item', '--min', 'item=1'], env);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /outputConstraints\.0\.minimum/);
    const room = await stewardJson<{ tables: { name: string; rule?: unknown }[] }>(['cleanroom', 'show', 'scope3', '--as', 'paul'], env);
    assert.equal(room.tables.find((t) => t.name === 'purchase')?.rule, undefined);
  });

  it('runs the Scope 3 demo as the docs do: three rows, one removed, the rules named, and the log for every member', async () => {
    // threat: the reference query leaks the single-ingredient product's row
    await ok(['cleanroom', 'accept', 'scope3', '--as', 'tara']);
    await ok(['cleanroom', 'associate', 'scope3', 'reporting', 'lake.reporting.reporting', '--as', 'rita', '--columns', 'product,ingredient']);
    await ok(['cleanroom', 'associate', 'scope3', 'transportation', 'lake.transport.transportation', '--as', 'tara', '--columns', 'item,s3_upstream_transportation,unit']);
    await ok(['cleanroom', 'rule', 'set', 'scope3', 'reporting', '--as', 'rita', '--type', 'aggregation', '--join', 'ingredient', '--dimension', 'product', '--min', 'ingredient=2']);
    await ok(['cleanroom', 'rule', 'set', 'scope3', 'purchase', '--as', 'paul', '--type', 'aggregation', '--aggregate', 's3_upstream_purchased_good=SUM', '--join', 'item', '--join-required', '--min', 'item=2']);
    await ok(['cleanroom', 'rule', 'set', 'scope3', 'transportation', '--as', 'tara', '--type', 'aggregation', '--aggregate', 's3_upstream_transportation=SUM', '--join', 'item', '--join-required', '--min', 'item=2']);
    const out = await ok(['cleanroom', 'query', 'scope3', '--as', 'rita', REFERENCE]);
    assert.match(out, /^PRODUCT\s+GOODS\s+TRANSPORT\nbread\s.*\ncake\s.*\nsoup\s.*\n3 row\(s\); 1 removed by output constraints; rules checked: aggregation rule of `reporting`, aggregation rule of `purchase`, aggregation rule of `transportation`$/m);
    const json = await stewardJson<{ rows: unknown[][]; removed: number }>(['cleanroom', 'query', 'scope3', '--as', 'rita', REFERENCE], env);
    assert.deepEqual(json.rows.map((r) => r[0]), ['bread', 'cake', 'soup']);
    assert.equal(json.removed, 1);
    const log = await stewardJson<{ entries: { member: string; outcome: string; removed: number }[] }>(['cleanroom', 'log', 'scope3', '--as', 'tara'], env);
    assert.deepEqual(log.entries.map((e) => [e.member, e.outcome, e.removed]), [['reporting', 'allowed', 1], ['reporting', 'allowed', 1]]);
  });

  it('exits non-zero naming the rule for a query that groups by a join column, and for a member that may not query', async () => {
    // threat: a script treats a refused analysis as an empty result
    const grouped = await steward(['cleanroom', 'query', 'scope3', '--as', 'rita', 'SELECT p.item, SUM(p.s3_upstream_purchased_good) FROM reporting r JOIN purchase p ON r.ingredient = p.item GROUP BY p.item'], env);
    assert.equal(grouped.code, 1, grouped.stderr);
    assert.match(grouped.stderr, /aggregation rule of `purchase`: grouping by join column `item` is not allowed/);
    const paul = await steward(['cleanroom', 'query', 'scope3', '--as', 'paul', REFERENCE], env);
    assert.equal(paul.code, 1, paul.stderr);
    assert.match(paul.stderr, /member `purchased-goods` may not run queries in `scope3`/);
  });
});
