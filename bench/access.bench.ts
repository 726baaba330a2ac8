/**
 * Just-in-time access benchmark.
 *
 *     node --import tsx bench/access.bench.ts [--quick]
 *
 * With 10,000 concurrently active time-bound grants (one per request, as
 * activation creates them):
 *   1. expiry lag: the scheduler (the real loop, real clock, embedded PGlite
 *      store) ends requests whose end times are spread over a window; lag is
 *      the commit time of the transition minus the request's end time (goal:
 *      p99 <= 1 s). Decisions themselves stop honouring a grant at its end
 *      time, so this is the lag of the *cleanup*, not of access;
 *   2. authorize throughput of the indexed engine on the same world with and
 *      without the 10k temporary grants, same decisions, as a ratio (goal >= 0.9).
 * Results go to bench/results/access.json (access-quick.json with --quick).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { openPglite, type Db } from '../src/store/db.js';
import { migrate } from '../src/store/migrations.js';
import { createStateStore } from '../src/store/state-store.js';
import { createAccessService } from '../src/access/access-service.js';
import { startAccessScheduler } from '../src/access/scheduler.js';
import { grantFor } from '../src/access/policies.js';
import type { AccessRequest, RequestRule } from '../src/access/access-types.js';
import { createEngine } from '../src/policy/engine.js';
import { applyChanges, type Change } from '../src/policy/changes.js';
import { EMPTY_WORLD, type Grant, type PolicyWorld, type PrincipalRef, type ResourceRef, type Table } from '../src/policy/model.js';
import type { AuthorizeRequest } from '../src/policy/decision.js';
import { stateServiceOver } from '../test/access/harness.js';

export interface AccessBenchOptions {
  readonly quick?: boolean;
  /** Where to write the JSON; null to not write. */
  readonly out?: string | null;
  readonly log?: (line: string) => void;
}

export interface AccessBenchResult {
  readonly machine: { cpu: string; cores: number; node: string; date: string; loadAverage: number[] };
  readonly activeGrants: number;
  readonly expiry: { expired: number; windowSeconds: number; lagMs: { p50: number; p90: number; p99: number; max: number }; goalP99Ms: number; met: boolean };
  readonly authorize: { decisions: number; basePerSecond: number; withTemporaryPerSecond: number; ratio: number; goal: number; met: boolean; rounds: number };
}

const RULE: RequestRule = {
  eligibility: ['bench'],
  maxDurationSeconds: 86400,
  approvalRequired: false,
  ticketRequired: false,
  approvalPolicies: [],
  approverGroups: [],
  minApprovals: 0,
  permissionSet: { name: 'read', permissions: ['DESCRIBE', 'SELECT'] },
};

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** 20 databases × 50 tables × 8 columns, `users` users in 20 groups, group grants on databases, a PII guardrail. */
function baseWorld(users: number): PolicyWorld {
  const changes: Change[] = [{ op: 'put', kind: 'catalog', entity: { name: 'lake' } }];
  const tables: Table[] = [];
  for (let d = 0; d < 20; d++) {
    changes.push({ op: 'put', kind: 'database', entity: { catalog: 'lake', name: `db${d}` } });
    for (let t = 0; t < 50; t++) {
      tables.push({
        catalog: 'lake',
        database: `db${d}`,
        name: `t${t}`,
        columns: Array.from({ length: 8 }, (_, i) => ({ name: i === 7 ? 'ssn' : `c${i}`, type: 'VARCHAR', ordinal: i })),
        source: { kind: 'virtual' },
      });
    }
  }
  for (const t of tables) changes.push({ op: 'put', kind: 'table', entity: t });
  changes.push({ op: 'put', kind: 'tagKey', entity: { key: 'pii', values: ['true', 'false'] } });
  for (const t of tables.filter((_, i) => i % 4 === 0)) {
    changes.push({ op: 'put', kind: 'tagAssignment', entity: { resource: { level: 'column', catalog: 'lake', database: t.database, table: t.name, column: 'ssn' }, key: 'pii', value: 'true' } });
  }
  changes.push({ op: 'put', kind: 'guardrail', entity: { name: 'pii', actions: ['SELECT'], catalog: 'lake', resources: { pii: ['true'] } } });
  for (let g = 0; g < 20; g++) {
    changes.push({ op: 'put', kind: 'group', entity: { name: `g${g}` } });
    changes.push({
      op: 'put',
      kind: 'grant',
      entity: { id: `g${g}-read`, principal: `group:g${g}`, resource: { kind: 'database', catalog: 'lake', database: `db${g}` }, permissions: ['DESCRIBE', 'SELECT'], grantable: [] },
    });
  }
  for (let u = 0; u < users; u++) {
    changes.push({ op: 'put', kind: 'user', entity: { name: `u${u}` } });
    changes.push({ op: 'put', kind: 'membership', entity: { group: `g${u % 20}`, member: `user:u${u}` } });
  }
  return applyChanges(EMPTY_WORLD, changes);
}

function temporaryGrant(u: number, endAt: string): Grant {
  return grantFor({ id: `ar-bench-${u}`, requester: `user:u${u}`, scope: `lake.db${(u * 7) % 20}.t${u % 50}`, endAt, rule: RULE });
}

function decisions(n: number, users: number): AuthorizeRequest[] {
  let seed = 42;
  const rnd = (k: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % k;
  };
  const out: AuthorizeRequest[] = [];
  for (let i = 0; i < n; i++) {
    const principal = `user:u${rnd(users)}` as PrincipalRef;
    const table = { catalog: 'lake', database: `db${rnd(20)}`, table: `t${rnd(50)}` };
    const kind = rnd(10);
    const resource: ResourceRef = kind < 3 ? { level: 'column', ...table, column: `c${rnd(8)}` } : { level: 'table', ...table };
    out.push({ principal, action: kind === 9 ? 'DESCRIBE' : 'SELECT', resource });
  }
  return out;
}

function throughput(engine: ReturnType<typeof createEngine>, reqs: readonly AuthorizeRequest[], now: number): number {
  const t0 = process.hrtime.bigint();
  let allow = 0;
  for (const r of reqs) if (engine.authorize({ ...r, now }).decision === 'allow') allow++;
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  if (allow < 0) throw new Error('unreachable');
  return reqs.length / s;
}

/** A Db that reports, at each commit, the requests the transaction moved to `ended`. */
function observedDb(inner: Db, onCommit: (ended: readonly string[]) => void): Db {
  const wrapTx = (tx: Db, ended: string[]): Db => ({
    kind: tx.kind,
    query: async <T>(sql: string, params?: readonly unknown[]) => {
      if (sql.startsWith('UPDATE steward.access_requests AS r')) {
        for (const x of JSON.parse(String(params?.[0])) as { id: string; status: string }[]) if (x.status === 'ended') ended.push(x.id);
      }
      return tx.query<T>(sql, params);
    },
    exec: (sql) => tx.exec(sql),
    transaction: (fn) => fn(wrapTx(tx, ended)),
    close: () => tx.close(),
  });
  return {
    kind: inner.kind,
    query: (sql, params) => inner.query(sql, params),
    exec: (sql) => inner.exec(sql),
    transaction: async (fn) => {
      const ended: string[] = [];
      const r = await inner.transaction((tx) => fn(wrapTx(tx, ended)));
      onCommit(ended);
      return r;
    },
    close: () => inner.close(),
  };
}

export async function run(options: AccessBenchOptions = {}): Promise<AccessBenchResult> {
  const quick = options.quick ?? false;
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const ACTIVE = 10_000;
  const users = ACTIVE;
  const windowSeconds = quick ? 8 : 30;
  const expiring = quick ? 2_000 : ACTIVE;

  // ---------------------------------------------------------- 1. authorize
  log('building worlds …');
  const base = baseWorld(users);
  const far = new Date(Date.now() + 86400_000).toISOString();
  const withTemp = applyChanges(
    base,
    Array.from({ length: ACTIVE }, (_, u): Change => ({ op: 'put', kind: 'grant', entity: temporaryGrant(u, far) })),
  );
  const eBase = createEngine(base);
  const eTemp = createEngine(withTemp);
  const reqs = decisions(quick ? 100_000 : 400_000, users);
  const now = Date.now();
  throughput(eBase, reqs.slice(0, 20_000), now);
  throughput(eTemp, reqs.slice(0, 20_000), now);
  const rounds = quick ? 3 : 7;
  const b: number[] = [];
  const t: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // Alternating order, so neither side always runs second (on caches the other just filled).
    if (i % 2 === 0) {
      b.push(throughput(eBase, reqs, now));
      t.push(throughput(eTemp, reqs, now));
    } else {
      t.push(throughput(eTemp, reqs, now));
      b.push(throughput(eBase, reqs, now));
    }
  }
  const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
  const basePerSecond = median(b);
  const withTemporaryPerSecond = median(t);
  const ratio = withTemporaryPerSecond / basePerSecond;
  log(`authorize: base ${Math.round(basePerSecond)}/s, with ${ACTIVE} temporary grants ${Math.round(withTemporaryPerSecond)}/s, ratio ${ratio.toFixed(3)}`);

  // ------------------------------------------------------------ 2. expiry
  log('seeding the store with 10k active requests …');
  const raw = await openPglite('memory');
  await migrate(raw);
  const stateStore = createStateStore(raw);
  await stateStore.applyChanges(
    [...(['catalog', 'database', 'table', 'tagKey', 'tagAssignment', 'guardrail', 'group', 'user', 'membership', 'grant'] as const)].flatMap((kind) =>
      (base[({ catalog: 'catalogs', database: 'databases', table: 'tables', tagKey: 'tagKeys', tagAssignment: 'tagAssignments', guardrail: 'guardrails', group: 'groups', user: 'users', membership: 'memberships', grant: 'grants' } as const)[kind]] as readonly unknown[]).map(
        (entity) => ({ op: 'put', kind, entity }) as Change,
      ),
    ),
  );
  // End times are offsets from a start fixed only once seeding is done (below), so a slow seed cannot look like lag.
  const seedStart = Date.now();
  const startAt = seedStart + 3600_000;
  const requests: AccessRequest[] = [];
  for (let u = 0; u < ACTIVE; u++) {
    // The first `expiring` end uniformly over the window; the rest stay active beyond the run.
    const end = u < expiring ? startAt + Math.floor((u / expiring) * windowSeconds * 1000) : startAt + 3600_000;
    const g = temporaryGrant(u, new Date(end).toISOString());
    requests.push({
      id: `ar-bench-${u}`,
      requester: g.principal,
      scope: g.description ?? '',
      permissionSet: 'read',
      status: 'active',
      startAt: new Date(Date.now() - 60_000).toISOString(),
      endAt: new Date(end).toISOString(),
      durationSeconds: Math.ceil((end - Date.now() + 60_000) / 1000),
      justification: 'bench',
      rule: RULE,
      approvals: [],
      createdAt: new Date().toISOString(),
      updatedAt: new Date().toISOString(),
      pendingUntil: new Date(end).toISOString(),
    });
  }
  await raw.query(
    `INSERT INTO steward.access_requests (id, requester, scope, permission_set, status, start_at, end_at, duration_seconds, justification, rule, pending_until, created_at, updated_at)
     SELECT id, requester, scope, 'read', 'active', start_at, end_at, duration_seconds, 'bench', $2::jsonb, end_at, now(), now()
     FROM jsonb_to_recordset($1::jsonb) AS x(id text, requester text, scope text, start_at timestamptz, end_at timestamptz, duration_seconds integer)`,
    [JSON.stringify(requests.map((r) => ({ id: r.id, requester: r.requester, scope: `lake.db${Number(r.id.slice(9)) * 7 % 20}`, start_at: r.startAt, end_at: r.endAt, duration_seconds: r.durationSeconds }))), JSON.stringify(RULE)],
  );
  await raw.query(
    `INSERT INTO steward.access_timers (request_id, kind, due_at) SELECT id, 'end', end_at FROM steward.access_requests`,
  );
  await stateStore.applyChanges(requests.map((r, u): Change => ({ op: 'put', kind: 'grant', entity: temporaryGrant(u, r.endAt) })));
  const shift = Date.now() + 3000 - startAt;
  await raw.query(`UPDATE steward.access_requests SET end_at = end_at + make_interval(secs => $1::double precision / 1000) WHERE end_at < $2`, [shift, new Date(startAt + 3600_000).toISOString()]);
  await raw.query(`UPDATE steward.access_timers t SET due_at = r.end_at FROM steward.access_requests r WHERE r.id = t.request_id`);
  log(`seeded in ${Date.now() - seedStart} ms`);
  const endOf = new Map(requests.map((r) => [r.id, Date.parse(r.endAt) + (Date.parse(r.endAt) < startAt + 3600_000 ? shift : 0)]));
  const lags: number[] = [];
  const db = observedDb(raw, (ended) => {
    const at = Date.now();
    for (const id of ended) lags.push(at - (endOf.get(id) as number));
  });
  const state = stateServiceOver(raw);
  await state.snapshot();
  const access = createAccessService({ db, state });
  log(`expiring ${expiring} of ${ACTIVE} active grants over ${windowSeconds} s …`);
  const scheduler = startAccessScheduler(access, { sweepEveryMs: 3_600_000 });
  const deadline = startAt + windowSeconds * 1000 + 30_000;
  while (lags.length < expiring && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await scheduler.stop();
  access.close();
  const remaining = (await state.snapshot()).world.grants.filter((g) => g.id.startsWith('jit-')).length;
  await raw.close();
  const sorted = [...lags].sort((x, y) => x - y);
  const lagMs = { p50: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99), max: sorted.at(-1) ?? 0 };
  log(`expiry lag over ${lags.length} expiries: p50 ${lagMs.p50} ms, p99 ${lagMs.p99} ms, max ${lagMs.max} ms; ${remaining} jit grants remain active`);

  const result: AccessBenchResult = {
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, date: new Date().toISOString(), loadAverage: loadavg().map((x) => Math.round(x * 100) / 100) },
    activeGrants: ACTIVE,
    expiry: { expired: lags.length, windowSeconds, lagMs, goalP99Ms: 1000, met: lags.length === expiring && lagMs.p99 <= 1000 },
    authorize: { decisions: reqs.length, basePerSecond: Math.round(basePerSecond), withTemporaryPerSecond: Math.round(withTemporaryPerSecond), ratio: Math.round(ratio * 1000) / 1000, goal: 0.9, met: ratio >= 0.9, rounds },
  };
  const out = options.out === undefined ? join(dirname(fileURLToPath(import.meta.url)), 'results', quick ? 'access-quick.json' : 'access.json') : options.out;
  if (out !== null) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  }
  process.stdout.write(`${markdown(result)}\n`);
  return result;
}

function markdown(r: AccessBenchResult): string {
  const rows = [
    ['active time-bound grants', `${r.activeGrants}`],
    ['expiry lag (scheduler, embedded store)', `p50 ${r.expiry.lagMs.p50} ms, p90 ${r.expiry.lagMs.p90} ms, p99 ${r.expiry.lagMs.p99} ms, max ${r.expiry.lagMs.max} ms over ${r.expiry.expired} expiries in ${r.expiry.windowSeconds} s (goal p99 ≤ 1 s: ${r.expiry.met ? 'met' : 'NOT met'})`],
    ['authorize with / without temporary grants', `${r.authorize.withTemporaryPerSecond}/s vs ${r.authorize.basePerSecond}/s = ${r.authorize.ratio} (goal ≥ 0.9: ${r.authorize.met ? 'met' : 'NOT met'}), median of ${r.authorize.rounds} rounds of ${r.authorize.decisions} decisions`],
    ['load average', r.machine.loadAverage.join(' ')],
  ];
  return ['| measure | result |', '|---|---|', ...rows.map(([a, b]) => `| ${a} | ${b} |`)].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  await run({ quick: process.argv.includes('--quick') });
}
