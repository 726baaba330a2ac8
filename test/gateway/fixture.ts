/**
 * One demo workspace behind a real HTTP server, with user tokens and the
 * protected values each demo user must never see, for the gateway tests.
 */
import { startTestServer, type TestServer } from '../support/server.js';
import type { Gateway, ParamValue } from '../../src/gateway/gateway.js';
import type { PrincipalRef } from '../../src/policy/model.js';
import { toPlainValue, type PlainValue } from '../../src/lake/duckdb.js';
import { isStewardError } from '../../src/errors.js';

export const USERS = ['alice', 'bob', 'carol', 'north_admin', 'dana', 'erin'] as const;
export type DemoUser = (typeof USERS)[number];

export interface Fixture {
  readonly server: TestServer;
  readonly gateway: Gateway;
  readonly tokens: Readonly<Record<DemoUser, string>>;
  readonly claimsFile: string;
  readonly revenueFile: string;
  /** Every ssn and patient_name value of the demo claims. */
  readonly pii: ReadonlySet<string>;
  /** Hospital names north_admin must never see. */
  readonly otherHospitals: ReadonlySet<string>;
  /** Claim ids of rows outside North Hospital. */
  readonly hiddenClaimIds: ReadonlySet<number>;
  readonly northRows: number;
  /** Raw DuckDB (test side only) for hand-written reference queries. */
  direct(sql: string): Promise<Record<string, PlainValue>[]>;
  close(): Promise<void>;
}

export interface Outcome {
  readonly ok: boolean;
  readonly status: number;
  readonly code?: string;
  readonly message?: string;
  readonly rows: Record<string, PlainValue>[];
  readonly columns: string[];
}

export async function startFixture(): Promise<Fixture> {
  const server = await startTestServer();
  try {
    const demo = await server.call('POST', '/v1/demo', {});
    if (demo.status !== 200) throw new Error(`demo failed: ${JSON.stringify(demo.json)}`);
    const g = server.ws.services.gateway;
    if (g === undefined) throw new Error('gateway service missing');
    const tokens = {} as Record<DemoUser, string>;
    for (const u of USERS) {
      tokens[u] = (await server.ws.services.tokens.createToken({ name: `t-${u}`, principal: `user:${u}`, role: 'user' })).token;
    }
    const snap = await server.ws.services.state.snapshot();
    const loc = (name: string): string => {
      const t = snap.world.tables.find((x) => x.name === name);
      if (t === undefined || t.source.kind !== 'lake') throw new Error(`no lake table ${name}`);
      return t.source.location;
    };
    const claimsFile = loc('patient_claims');
    const revenueFile = loc('revenue');
    const duck = await server.ws.services.lake.duckdb();
    const direct = async (sql: string): Promise<Record<string, PlainValue>[]> => duck.all(sql);
    const piiRows = await duck.all<{ v: string }>('SELECT ssn AS v FROM read_parquet($1) UNION SELECT patient_name FROM read_parquet($1)', [claimsFile]);
    const hosp = await duck.all<{ h: string }>("SELECT DISTINCT hospital AS h FROM read_parquet($1) WHERE hospital <> 'North Hospital'", [claimsFile]);
    const hidden = await duck.all<{ id: number }>("SELECT claim_id AS id FROM read_parquet($1) WHERE hospital <> 'North Hospital'", [claimsFile]);
    const north = await duck.all<{ n: number }>("SELECT count(*)::INTEGER AS n FROM read_parquet($1) WHERE hospital = 'North Hospital'", [claimsFile]);
    return {
      server,
      gateway: g.gateway,
      tokens,
      claimsFile,
      revenueFile,
      pii: new Set(piiRows.map((r) => r.v)),
      otherHospitals: new Set(hosp.map((r) => r.h)),
      hiddenClaimIds: new Set(hidden.map((r) => r.id)),
      northRows: north[0]?.n ?? 0,
      direct,
      close: () => server.close(),
    };
  } catch (e) {
    await server.close();
    throw e;
  }
}

/** Runs through the library, as `principal`. */
export async function viaLibrary(f: Fixture, user: DemoUser, sql: string, params?: Record<string, ParamValue>): Promise<Outcome> {
  try {
    const st = await f.gateway.open({ principal: `user:${user}` as PrincipalRef, actor: `user:${user}`, sql, ...(params === undefined ? {} : { params }) });
    const names = st.columns.map((c) => c.name);
    const rows: Record<string, PlainValue>[] = [];
    for await (const batch of st.batches()) {
      for (const r of batch) rows.push(Object.fromEntries(r.map((v, i) => [names[i] as string, toPlainValue(v)])));
    }
    return { ok: true, status: 200, rows, columns: names };
  } catch (e) {
    if (!isStewardError(e)) throw e;
    return { ok: false, status: e.status, code: e.code, message: e.message, rows: [], columns: [] };
  }
}

/** Runs through the HTTP API with the user's own token. */
export async function viaHttp(f: Fixture, user: DemoUser, sql: string, params?: Record<string, ParamValue>): Promise<Outcome> {
  const r = await f.server.call('POST', '/v1/query', { sql, ...(params === undefined ? {} : { params }) }, f.tokens[user]);
  if (r.status !== 200) {
    return { ok: false, status: r.status, code: r.json?.error?.code, message: r.json?.error?.message, rows: [], columns: [] };
  }
  if (r.json?.error !== undefined) return { ok: false, status: 200, code: r.json.error.code, message: r.json.error.message, rows: [], columns: [] };
  return { ok: true, status: 200, rows: r.json.rows, columns: r.json.columns.map((c: { name: string }) => c.name) };
}

/** Every string, number and nested value of a result, flattened. */
export function cells(o: Outcome): PlainValue[] {
  const out: PlainValue[] = [];
  const walk = (v: PlainValue): void => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') Object.values(v).forEach(walk);
    else out.push(v);
  };
  for (const r of o.rows) Object.values(r).forEach(walk);
  for (const c of o.columns) out.push(c);
  if (o.message !== undefined) out.push(o.message);
  return out;
}
