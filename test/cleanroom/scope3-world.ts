/**
 * A test server with the Scope 3 world: three organisations as groups
 * (reporting-team: rita, purchase-team: paul, transport-team: tara), each with
 * SELECT on its own CSV table only, plus nina, who belongs to none.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeScope3Data } from '../../src/cleanroom/scope3-data.js';
import { startTestServer, type TestServer } from '../support/server.js';

export interface Scope3World {
  readonly s: TestServer;
  close(): Promise<void>;
  readonly token: Readonly<Record<'rita' | 'paul' | 'tara' | 'nina', string>>;
  /** Calls as one of the users with their own token. */
  as(user: 'rita' | 'paul' | 'tara' | 'nina', method: string, p: string, body?: unknown): Promise<{ status: number; json: any }>;
}

const ok = (r: { status: number; json: unknown }, status = [200, 201]): void => assert.ok(status.includes(r.status), JSON.stringify(r.json));

export async function startScope3World(): Promise<Scope3World> {
  const s = await startTestServer();
  const lake = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-scope3-'));
  const files = await writeScope3Data(lake);
  const orgs = [
    ['reporting', 'reporting', files.reporting, 'rita'],
    ['purchase', 'purchase', files.purchase, 'paul'],
    ['transport', 'transportation', files.transportation, 'tara'],
  ] as const;
  for (const u of ['rita', 'paul', 'tara', 'nina']) ok(await s.call('POST', '/v1/users', { name: u }));
  for (const [db, table, location, user] of orgs) {
    ok(await s.call('POST', '/v1/groups', { name: `${db}-team` }));
    ok(await s.call('POST', `/v1/groups/${db}-team/members`, { member: `user:${user}` }));
    ok(await s.call('POST', '/v1/tables/lake', { catalog: 'lake', database: db, table, location, format: 'csv' }));
    ok(await s.call('POST', '/v1/grants', { principal: `group:${db}-team`, resource: `lake.${db}.${table}`, permissions: ['SELECT'] }));
  }
  const tokens: Record<string, string> = {};
  for (const u of ['rita', 'paul', 'tara', 'nina']) tokens[u] = (await s.ws.services.tokens.createToken({ name: `t-${u}`, principal: `user:${u}`, role: 'user' })).token;
  const token = tokens as Scope3World['token'];
  const close = async (): Promise<void> => {
    await s.close();
    await fs.rm(lake, { recursive: true, force: true });
  };
  return { s, token, close, as: (user, method, p, body) => s.call(method, p, body, token[user]) };
}

/** The reference's rules (SUM on the emissions, joins on item and ingredient, product as the dimension, 2 distinct per row). */
export const REFERENCE_RULES = {
  reporting: { type: 'aggregation', aggregateColumns: [], joinColumns: ['ingredient'], dimensionColumns: ['product'], outputConstraints: [{ column: 'ingredient', minimum: 2 }] },
  purchase: { type: 'aggregation', aggregateColumns: [{ column: 's3_upstream_purchased_good', functions: ['SUM'] }], joinColumns: ['item'], joinRequired: true, outputConstraints: [{ column: 'item', minimum: 2 }] },
  transportation: { type: 'aggregation', aggregateColumns: [{ column: 's3_upstream_transportation', functions: ['SUM'] }], joinColumns: ['item'], joinRequired: true, dimensionColumns: ['unit'], outputConstraints: [{ column: 'item', minimum: 2 }] },
} as const;

export const REFERENCE_QUERY = `SELECT r.product AS "Product",
  SUM(p.s3_upstream_purchased_good) AS "Scope_3_Purchased_Goods_Emissions",
  SUM(t.s3_upstream_transportation) AS "Scope_3_Transportation_Emissions"
FROM reporting r
  INNER JOIN purchase p ON r.ingredient = p.item
  INNER JOIN transportation t ON p.item = t.item
GROUP BY r.product`;
