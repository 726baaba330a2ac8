/**
 * Policy engine benchmark.
 *
 *     node --expose-gc --import tsx bench/policy.bench.ts [--quick] [--no-cedar]
 *
 * Builds the large world (100k tables, ~1M columns, 2k principals, 5k tag
 * grants, 50 guardrails; --quick is 10x smaller) and reports:
 *   1. authorize throughput on one core over >= 1M decisions of a realistic mix
 *      (table SELECT, column SELECT, DESCRIBE, INSERT) and p50/p99 latency from
 *      individually timed calls;
 *   2. the same decisions made by Cedar (@cedar-policy/cedar-wasm) on an
 *      equivalent policy set, as a throughput ratio, with the agreement rate;
 *   3. effective permissions of a few principals;
 *   4. index build time and heap.
 * Results go to bench/results/policy.json.
 *
 * How the Cedar side is kept fair: the policy set is translated once (grants
 * to permits, tag grants to permits with `when` over entity tags, guardrails
 * to forbids, notAfter to `context.now`), pre-parsed once, and evaluated with
 * `statefulIsAuthorized`. Cedar has no notion of our cell-level union or of
 * DESCRIBE implication, so one decision is the same procedure expressed in
 * Cedar calls: table SELECT asks about each column until one is allowed;
 * DESCRIBE asks DESCRIBE, and when that is denied without a forbid, the other
 * table actions. Passing 1M column entities per call is impossible, so each
 * call gets the entity slice it needs (the principal with its group ancestry,
 * the resource with its ancestors), built once and cached outside the timing.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, platform, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import * as cedar from '@cedar-policy/cedar-wasm/nodejs';
import type { AuthorizeRequest } from '../src/policy/decision.js';
import { createEngine } from '../src/policy/engine.js';
import type { Engine } from '../src/policy/engine.js';
import type { Grant, Guardrail, Permission, PolicyWorld, PrincipalRef, ResourceRef, Table, TagExpression } from '../src/policy/model.js';
import { GRANTABLE_ON } from '../src/policy/model.js';
import { membershipGraph } from '../src/policy/principals.js';
import { expiryOf, selectColumns } from '../src/policy/reference-evaluator.js';
import { createRng, generateLargeWorld, NOW } from '../test/support/random-world.js';

export interface PolicyBenchOptions {
  readonly quick?: boolean;
  /** Skip the Cedar comparison. */
  readonly cedar?: boolean;
  /** Where to write the JSON; null to not write. */
  readonly out?: string | null;
  readonly decisions?: number;
  readonly cedarSeconds?: number;
  readonly log?: (line: string) => void;
}

export interface PolicyBenchResult {
  readonly machine: { cpu: string; cores: number; memoryGb: number; node: string; platform: string; date: string; gcExposed: boolean; loadAverage: number[] };
  readonly world: Record<string, number>;
  readonly build: { ms: number; heapMb: number | null; worldHeapMb: number | null };
  readonly authorize: {
    decisions: number;
    seconds: number;
    perSecond: number;
    /** Decisions per second of this process's CPU time: steadier than wall time on a shared machine. */
    perCpuSecond: number;
    /** Rounds of one pass over the requests each; perSecond is their median, perSecondRange the slowest and fastest. */
    rounds: number;
    perSecondRange: [number, number];
    mix: Record<string, number>;
    latencyUs: { p50: number; p90: number; p99: number; p999: number; max: number; samples: number };
  };
  readonly effectivePermissions: { principal: string; ms: number; entries: number }[];
  readonly whoCanAccess: { resource: string; ms: number; users: number };
  readonly heapAfterMb: number | null;
  readonly cedar: null | {
    policies: number;
    translateMs: number;
    decisions: number;
    cedarCalls: number;
    seconds: number;
    perSecond: number;
    engineOnSameRequestsPerSecond: number;
    ratio: number;
    agreement: { compared: number; mismatches: number };
    isAuthorizedStateless: { calls: number; msPerCall: number | null };
  };
}

type Kind = 'table SELECT' | 'column SELECT' | 'DESCRIBE' | 'INSERT';

export interface Req {
  readonly kind: Kind;
  readonly req: AuthorizeRequest;
  readonly table: Table;
}

function heapMb(): number | null {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc === undefined) return null;
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 / 1024;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number;
}

export function makeRequests(world: PolicyWorld, n: number, seed: number): Req[] {
  const rng = createRng(seed);
  const out: Req[] = [];
  for (let i = 0; i < n; i++) {
    const table = rng.pick(world.tables);
    const principal: PrincipalRef = `user:${rng.pick(world.users).name}`;
    const tref = { level: 'table', catalog: table.catalog, database: table.database, table: table.name } as const;
    const r = rng.next();
    if (r < 0.5) out.push({ kind: 'table SELECT', table, req: { principal, action: 'SELECT', resource: tref, now: NOW } });
    else if (r < 0.75) {
      const column = rng.pick(table.columns).name;
      out.push({ kind: 'column SELECT', table, req: { principal, action: 'SELECT', resource: { ...tref, level: 'column', column }, now: NOW } });
    } else if (r < 0.9) out.push({ kind: 'DESCRIBE', table, req: { principal, action: 'DESCRIBE', resource: tref, now: NOW } });
    else out.push({ kind: 'INSERT', table, req: { principal, action: 'INSERT', resource: tref, now: NOW } });
  }
  return out;
}

// ------------------------------------------------------------------ Cedar translation

const q = (s: string): string => JSON.stringify(s);

function cedarPrincipal(p: PrincipalRef): string {
  return p.startsWith('user:') ? `User::${q(p.slice(5))}` : `Group::${q(p.slice(6))}`;
}

function cedarExpr(expr: TagExpression, on: string): string {
  const keys = Object.keys(expr);
  if (keys.length === 0) return 'true';
  return keys.map((k) => `(${on}.hasTag(${q(k)}) && [${(expr[k] ?? []).map(q).join(', ')}].contains(${on}.getTag(${q(k)})))`).join(' && ');
}

function cedarActions(perms: readonly Permission[]): string {
  return `[${perms.map((p) => `Action::${q(p)}`).join(', ')}]`;
}

function timeClause(g: Grant): string {
  const exp = expiryOf(g);
  return Number.isFinite(exp) ? ` && context.now < ${exp}` : exp === Number.NEGATIVE_INFINITY ? ' && false' : '';
}

function grantToCedar(world: PolicyWorld, g: Grant, tables: Map<string, Table>): string | null {
  const perms = g.permissions.filter((p) => GRANTABLE_ON[g.resource.kind].includes(p));
  if (perms.length === 0) return null;
  const who = g.principal.startsWith('user:') ? `principal == ${cedarPrincipal(g.principal)}` : `principal in ${cedarPrincipal(g.principal)}`;
  const r = g.resource;
  const head = (scope: string): string => `permit(${who}, action in ${cedarActions(perms)}, ${scope})`;
  switch (r.kind) {
    case 'catalog':
      return `${head(`resource in Catalog::${q(r.catalog)}`)} when { true${timeClause(g)} };`;
    case 'database':
      return `${head(`resource in Database::${q(`${r.catalog}.${r.database}`)}`)} when { true${timeClause(g)} };`;
    case 'table':
      return `${head(`resource in Table::${q(`${r.catalog}.${r.database}.${r.table}`)}`)} when { true${timeClause(g)} };`;
    case 'columns':
    case 'filter': {
      const key = `${r.catalog}.${r.database}.${r.table}`;
      const table = tables.get(key);
      if (table === undefined) return null;
      let cols: string[];
      if (r.kind === 'columns') cols = selectColumns(table, r.columns, r.excludedColumns, 'none').map((c) => c.name);
      else {
        const f = world.filters.find((x) => x.catalog === r.catalog && x.database === r.database && x.table === r.table && x.name === r.filter);
        if (f === undefined) return null;
        cols = selectColumns(table, f.columns, f.excludedColumns, 'all').map((c) => c.name);
      }
      return `${head(`resource is Column in Table::${q(key)}`)} when { [${cols.map(q).join(', ')}].contains(resource.name)${timeClause(g)} };`;
    }
    case 'tag':
      return `${head('resource')} when { resource.catalog == ${q(r.catalog)} && !(resource is Catalog) && ${cedarExpr(r.expression, 'resource')}${timeClause(g)} };`;
    default: {
      const never: never = r;
      return never;
    }
  }
}

function guardrailToCedar(g: Guardrail): string {
  const who = g.principals !== undefined && g.principals.length > 0 ? `(${g.principals.map((p) => `principal in ${cedarPrincipal(p)}`).join(' || ')})` : 'true';
  const except = (g.except ?? []).length > 0 ? ` && !(${(g.except ?? []).map((p) => `principal in ${cedarPrincipal(p)}`).join(' || ')})` : '';
  const scope = g.catalog === undefined ? '' : ` && resource.catalog == ${q(g.catalog)}`;
  const empty = Object.keys(g.resources).length === 0;
  const match = empty
    ? 'true'
    : `(${cedarExpr(g.resources, 'resource')}) || (resource has table && (${cedarExpr(g.resources, 'resource.table')})) || (resource has database && (${cedarExpr(g.resources, 'resource.database')}))`;
  return `forbid(principal, action in ${cedarActions(g.actions)}, resource) when { ${who}${except}${scope} && (${match}) };`;
}

interface CedarSide {
  readonly policies: number;
  /** The whole policy set as Cedar text, for the stateless call. */
  readonly policyText: string;
  decide(r: Req): { allow: boolean; calls: number };
}

function buildCedar(world: PolicyWorld, engine: Engine): CedarSide {
  const tables = new Map(world.tables.map((t) => [`${t.catalog}.${t.database}.${t.name}`, t]));
  const staticPolicies: Record<string, string> = {};
  for (const g of world.grants) {
    const text = grantToCedar(world, g, tables);
    if (text !== null) staticPolicies[`grant:${g.id}`] = text;
  }
  for (const g of world.guardrails) staticPolicies[`guardrail:${g.name}`] = guardrailToCedar(g);
  const parsed = cedar.preparsePolicySet('steward', { staticPolicies });
  if (parsed.type !== 'success') throw new Error(`cedar refused the policy set: ${JSON.stringify(parsed.errors.slice(0, 3))}`);

  // effective tags, computed the plain way (own assignments merged down the chain)
  const own = new Map<string, Record<string, string>>();
  for (const a of world.tagAssignments) {
    const r = a.resource;
    const key = r.level === 'database' ? `${r.catalog}.${r.database}` : r.level === 'table' ? `${r.catalog}.${r.database}.${r.table}` : `${r.catalog}.${r.database}.${r.table}.${r.column}`;
    (own.get(key) ?? own.set(key, {}).get(key)!)[a.key] ??= a.value;
  }
  const graph = membershipGraph(world);
  const principalEntities = new Map<string, cedar.EntityJson[]>();
  const entitiesOf = (p: PrincipalRef): cedar.EntityJson[] => {
    let list = principalEntities.get(p);
    if (list !== undefined) return list;
    const set = engine.principalSetOf(p) ?? new Set([p]);
    list = [...set].map((ref) => ({
      uid: ref.startsWith('user:') ? { type: 'User', id: ref.slice(5) } : { type: 'Group', id: ref.slice(6) },
      attrs: {},
      parents: (graph.parents.get(ref) ?? []).map((g) => ({ type: 'Group', id: g })),
    }));
    principalEntities.set(p, list);
    return list;
  };
  const tableEntities = new Map<string, cedar.EntityJson[]>();
  const resourceEntities = (t: Table): cedar.EntityJson[] => {
    const tkey = `${t.catalog}.${t.database}.${t.name}`;
    let list = tableEntities.get(tkey);
    if (list !== undefined) return list;
    const dkey = `${t.catalog}.${t.database}`;
    const dbTags = own.get(dkey) ?? {};
    const tTags = { ...dbTags, ...(own.get(tkey) ?? {}) };
    const dbUid = { type: 'Database', id: dkey };
    const tUid = { type: 'Table', id: tkey };
    list = [
      { uid: { type: 'Catalog', id: t.catalog }, attrs: { catalog: t.catalog }, parents: [] },
      { uid: dbUid, attrs: { catalog: t.catalog }, parents: [{ type: 'Catalog', id: t.catalog }], tags: dbTags },
      { uid: tUid, attrs: { catalog: t.catalog, database: { __entity: dbUid } }, parents: [dbUid], tags: tTags },
      ...t.columns.map((c) => ({
        uid: { type: 'Column', id: `${tkey}.${c.name}` },
        attrs: { catalog: t.catalog, name: c.name, table: { __entity: tUid }, database: { __entity: dbUid } },
        parents: [tUid],
        tags: { ...tTags, ...(own.get(`${tkey}.${c.name}`) ?? {}) },
      })),
    ];
    tableEntities.set(tkey, list);
    return list;
  };
  const entitySlices = new Map<string, cedar.EntityJson[]>();
  const ask = (p: PrincipalRef, action: Permission, t: Table, column: string | null): { allow: boolean; forbidden: boolean } => {
    const tkey = `${t.catalog}.${t.database}.${t.name}`;
    const sliceKey = `${p}|${tkey}`;
    let entities = entitySlices.get(sliceKey);
    if (entities === undefined) {
      entities = [...entitiesOf(p), ...resourceEntities(t)];
      if (entitySlices.size > 50_000) entitySlices.clear();
      entitySlices.set(sliceKey, entities);
    }
    const answer = cedar.statefulIsAuthorized({
      principal: p.startsWith('user:') ? { type: 'User', id: p.slice(5) } : { type: 'Group', id: p.slice(6) },
      action: { type: 'Action', id: action },
      resource: column === null ? { type: 'Table', id: tkey } : { type: 'Column', id: `${tkey}.${column}` },
      context: { now: NOW },
      preparsedPolicySetId: 'steward',
      entities,
    });
    if (answer.type !== 'success') throw new Error(`cedar failed: ${JSON.stringify(answer.errors.slice(0, 2))}`);
    const allow = answer.response.decision === 'allow';
    return { allow, forbidden: !allow && answer.response.diagnostics.reason.length > 0 };
  };
  const selectTable = (p: PrincipalRef, t: Table): { allow: boolean; calls: number } => {
    let calls = 0;
    for (const c of t.columns) {
      calls++;
      if (ask(p, 'SELECT', t, c.name).allow) return { allow: true, calls };
    }
    return { allow: false, calls };
  };
  return {
    policies: Object.keys(staticPolicies).length,
    policyText: Object.values(staticPolicies).join('\n'),
    decide(r: Req): { allow: boolean; calls: number } {
      const p = r.req.principal;
      switch (r.kind) {
        case 'table SELECT':
          return selectTable(p, r.table);
        case 'column SELECT':
          return { allow: ask(p, 'SELECT', r.table, (r.req.resource as { column: string }).column).allow, calls: 1 };
        case 'INSERT':
          return { allow: ask(p, 'INSERT', r.table, null).allow, calls: 1 };
        case 'DESCRIBE': {
          const d = ask(p, 'DESCRIBE', r.table, null);
          if (d.allow || d.forbidden) return { allow: d.allow, calls: 1 };
          const s = selectTable(p, r.table);
          let calls = 1 + s.calls;
          if (s.allow) return { allow: true, calls };
          for (const a of ['INSERT', 'DELETE', 'ALTER', 'DROP'] as const) {
            calls++;
            if (ask(p, a, r.table, null).allow) return { allow: true, calls };
          }
          return { allow: false, calls };
        }
        default: {
          const never: never = r.kind;
          return never;
        }
      }
    },
  };
}

// ------------------------------------------------------------------ the run

export async function run(options: PolicyBenchOptions = {}): Promise<PolicyBenchResult> {
  const log = options.log ?? ((line: string) => console.log(line));
  const quick = options.quick ?? false;
  const sizes = quick
    ? { tables: 10_000, columnsPerTable: 10, principals: 200, tagGrants: 500, guardrails: 50, seed: 42 }
    : { tables: 100_000, columnsPerTable: 10, principals: 2_000, tagGrants: 5_000, guardrails: 50, seed: 42 };
  log(`building the ${quick ? 'quick' : 'full'} world: ${JSON.stringify(sizes)}`);
  const heap0 = heapMb();
  const world = generateLargeWorld(sizes);
  const heapWorld = heapMb();
  const engine = createEngine(world);
  const heapEngine = heapMb();
  const stats = engine.stats;
  log(`index built in ${stats.buildMs.toFixed(0)} ms`);

  // (1) throughput and latency
  const requests = makeRequests(world, 200_000, 7);
  let allows = 0;
  for (let i = 0; i < 200_000; i++) if (engine.authorize((requests[i] as Req).req).decision === 'allow') allows++;
  const target = options.decisions ?? 1_000_000;
  // Timed in rounds of one pass over the requests; the median round is the figure, min and max show
  // the noise (this machine's speed varies ~2x within minutes, so one long run mixes phases).
  const rounds: { seconds: number; cpuSeconds: number; decisions: number }[] = [];
  let done = 0;
  while (done < target) {
    const n = Math.min(requests.length, target - done);
    const cpu0 = process.cpuUsage();
    const started = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (engine.authorize((requests[i] as Req).req).decision === 'allow') allows++;
    const cpu = process.cpuUsage(cpu0);
    rounds.push({ seconds: Number(process.hrtime.bigint() - started) / 1e9, cpuSeconds: (cpu.user + cpu.system) / 1e6, decisions: n });
    done += n;
  }
  const rates = rounds.map((r) => r.decisions / r.seconds).sort((x, y) => x - y);
  const cpuRates = rounds.map((r) => r.decisions / r.cpuSeconds).sort((x, y) => x - y);
  const middle = <T>(xs: readonly T[]): T => xs[Math.floor(xs.length / 2)] as T;
  const seconds = rounds.reduce((t, r) => t + r.seconds, 0);
  const perSecond = middle(rates);
  const perCpuSecond = middle(cpuRates);
  const samples = Math.min(100_000, requests.length);
  const lat = new Float64Array(samples);
  for (let i = 0; i < samples; i++) {
    const req = (requests[(i * 7919) % requests.length] as Req).req;
    const t0 = process.hrtime.bigint();
    engine.authorize(req);
    lat[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  lat.sort();
  const mix: Record<string, number> = {};
  for (const r of requests) mix[r.kind] = (mix[r.kind] ?? 0) + 1;
  const allowShare = allows / (target + 200_000);
  log(`authorize: ${perSecond.toFixed(0)}/s wall (median of ${rounds.length} rounds, ${(rates[0] ?? 0).toFixed(0)}…${(rates[rates.length - 1] ?? 0).toFixed(0)}), ${perCpuSecond.toFixed(0)}/s of CPU time, allow share ${(allowShare * 100).toFixed(1)}%`);

  // (3) effective permissions and who can access
  const rng = createRng(3);
  const effective = Array.from({ length: 5 }, () => {
    const principal = `user:${rng.pick(world.users).name}` as PrincipalRef;
    const t0 = performance.now();
    const entries = engine.effectivePermissions(principal, NOW).length;
    return { principal, ms: performance.now() - t0, entries };
  });
  const someTable = world.tables[0] as Table;
  const tableRef: ResourceRef = { level: 'table', catalog: someTable.catalog, database: someTable.database, table: someTable.name };
  const w0 = performance.now();
  const holders = engine.whoCanAccess(tableRef, 'SELECT', NOW).length;
  const whoMs = performance.now() - w0;
  const heapAfter = heapMb();

  // (2) Cedar on the same world and requests
  let cedarResult: PolicyBenchResult['cedar'] = null;
  if (options.cedar ?? true) {
    const t0 = performance.now();
    const side = buildCedar(world, engine);
    const translateMs = performance.now() - t0;
    log(`cedar: ${side.policies} policies translated and pre-parsed in ${translateMs.toFixed(0)} ms`);
    const budget = (options.cedarSeconds ?? (quick ? 5 : 20)) * 1000;
    // warm the entity-slice caches outside the timing, then time
    for (let i = 0; i < 5; i++) side.decide(requests[i] as Req);
    let n = 0;
    let calls = 0;
    let mismatches = 0;
    const c0 = performance.now();
    while (performance.now() - c0 < budget && n < requests.length) {
      const r = requests[n] as Req;
      const d = side.decide(r);
      calls += d.calls;
      if (d.allow !== (engine.authorize(r.req).decision === 'allow')) mismatches++;
      n++;
    }
    const cedarSeconds = (performance.now() - c0) / 1000;
    // the engine on exactly those requests, for a like-for-like ratio
    const e0 = process.hrtime.bigint();
    let reps = 0;
    while (Number(process.hrtime.bigint() - e0) < 2e8) {
      for (let i = 0; i < n; i++) engine.authorize((requests[i] as Req).req);
      reps++;
    }
    const engineSame = (reps * n) / (Number(process.hrtime.bigint() - e0) / 1e9);
    // The stateless call re-parses every policy per call: three calls show its cost on the quick
    // world; on the full one a single call took ~9 minutes (2026-11-22), most of the bench's time.
    const statelessCalls = quick ? 3 : 0;
    const policiesText = side.policyText;
    const s0 = performance.now();
    for (let i = 0; i < statelessCalls; i++) {
      const r = requests[i] as Req;
      cedar.isAuthorized({
        principal: { type: 'User', id: r.req.principal.slice(5) },
        action: { type: 'Action', id: 'INSERT' },
        resource: { type: 'Table', id: `${r.table.catalog}.${r.table.database}.${r.table.name}` },
        context: { now: NOW },
        policies: { staticPolicies: policiesText },
        entities: [],
      });
    }
    const statelessMs = statelessCalls === 0 ? null : (performance.now() - s0) / statelessCalls;
    const perSecond = n / cedarSeconds;
    cedarResult = {
      policies: side.policies,
      translateMs,
      decisions: n,
      cedarCalls: calls,
      seconds: cedarSeconds,
      perSecond,
      engineOnSameRequestsPerSecond: engineSame,
      ratio: engineSame / perSecond,
      agreement: { compared: n, mismatches },
      isAuthorizedStateless: { calls: statelessCalls, msPerCall: statelessMs },
    };
    log(`cedar: ${perSecond.toFixed(0)} decisions/s (${(calls / cedarSeconds).toFixed(0)} calls/s), ${mismatches} disagreements in ${n}`);
  }

  const result: PolicyBenchResult = {
    machine: {
      cpu: cpus()[0]?.model ?? 'unknown',
      cores: cpus().length,
      memoryGb: Math.round(totalmem() / 1024 ** 3),
      node: process.version,
      platform: platform(),
      date: new Date().toISOString(),
      gcExposed: heap0 !== null,
      loadAverage: loadavg().map((x) => Math.round(x * 100) / 100),
    },
    world: { ...sizes, ...Object.fromEntries(Object.entries(stats).filter(([k]) => k !== 'buildMs')) },
    build: {
      ms: stats.buildMs,
      heapMb: heapEngine === null || heapWorld === null ? null : heapEngine - heapWorld,
      worldHeapMb: heapWorld === null || heap0 === null ? null : heapWorld - heap0,
    },
    authorize: {
      decisions: target,
      seconds,
      perSecond,
      perCpuSecond,
      rounds: rates.length,
      perSecondRange: [rates[0] ?? 0, rates[rates.length - 1] ?? 0],
      mix,
      latencyUs: { p50: percentile(lat, 0.5), p90: percentile(lat, 0.9), p99: percentile(lat, 0.99), p999: percentile(lat, 0.999), max: lat[lat.length - 1] as number, samples },
    },
    effectivePermissions: effective,
    whoCanAccess: { resource: `${someTable.catalog}.${someTable.database}.${someTable.name}`, ms: whoMs, users: holders },
    heapAfterMb: heapAfter,
    cedar: cedarResult,
  };
  const out = options.out === undefined ? join(dirname(fileURLToPath(import.meta.url)), 'results', quick ? 'policy-quick.json' : 'policy.json') : options.out;
  if (out !== null) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  }
  log(markdown(result));
  return result;
}

function markdown(r: PolicyBenchResult): string {
  const f = (n: number | null | undefined, d = 1): string => (n === null || n === undefined ? 'n/a' : n.toFixed(d));
  const rows = [
    ['world', `${r.world.tables} tables, ${r.world.columns} columns, ${r.world.users} users + ${r.world.groups} groups, ${r.world.tagGrants} tag grants, ${r.world.grants} grants, ${r.world.guardrails} guardrails`],
    ['index build', `${f(r.build.ms, 0)} ms, heap +${f(r.build.heapMb)} MB (world itself ${f(r.build.worldHeapMb)} MB)`],
    ['authorize throughput (1 core)', `${f(r.authorize.perSecond / 1000, 0)}k decisions/s wall (median of ${r.authorize.rounds} rounds over ${r.authorize.decisions} decisions; slowest ${f(r.authorize.perSecondRange[0] / 1000, 0)}k, fastest ${f(r.authorize.perSecondRange[1] / 1000, 0)}k), ${f(r.authorize.perCpuSecond / 1000, 0)}k per CPU-second (load average ${r.machine.loadAverage.join(' ')}) — goal ≥ 500k/s`],
    ['authorize latency', `p50 ${f(r.authorize.latencyUs.p50, 2)} µs, p99 ${f(r.authorize.latencyUs.p99, 2)} µs, p99.9 ${f(r.authorize.latencyUs.p999, 2)} µs — goal p99 ≤ 50 µs`],
    ['effective permissions', r.effectivePermissions.map((e) => `${f(e.ms)} ms (${e.entries})`).join(', ')],
    ['who can access (table SELECT)', `${f(r.whoCanAccess.ms)} ms, ${r.whoCanAccess.users} users`],
  ];
  if (r.cedar !== null) {
    rows.push(
      ['cedar-wasm (same decisions)', `${f(r.cedar.perSecond, 0)} decisions/s, ${r.cedar.policies} policies, ${r.cedar.agreement.mismatches}/${r.cedar.agreement.compared} disagreements`],
      ['engine / cedar', `${f(r.cedar.ratio, 0)}× (engine ${f(r.cedar.engineOnSameRequestsPerSecond / 1000, 0)}k/s on the same requests) — goal ≥ 10×`],
      [
        'cedar isAuthorized (stateless)',
        r.cedar.isAuthorizedStateless.msPerCall === null
          ? 'not timed at this size (one call re-parses all policies; ~9 min per call in the 2026-11-22 run); see `--quick`'
          : `${f(r.cedar.isAuthorizedStateless.msPerCall, 0)} ms per call`,
      ],
    );
  }
  return ['| measure | result |', '|---|---|', ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick'), cedar: !process.argv.includes('--no-cedar') });
}
