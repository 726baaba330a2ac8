/**
 * Embedded analytics as a service: dashboards (stored as applied), minting
 * embed tokens for them, and opening one embed view: the token checked and
 * used up, then every dataset of the dashboard run through the gateway as the
 * dashboard's `runAs` principal with the session's row rule added (so the
 * gateway's limits, sandbox and audit apply to each query).
 */
import { StewardError, notFound } from '../errors.js';
import type { Db } from '../store/db.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import type { Gateway, SessionScope } from '../gateway/gateway.js';
import type { PolicyWorld, PrincipalRef } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import type { Evaluator } from '../policy/decision.js';
import type { StateService } from '../workspace/state-service.js';
import { toPlainValue, type PlainValue } from '../lake/duckdb.js';
import { canonicalJson } from '../audit/lake-schema.js';
import { DashboardSchema, checkDashboard, type Dashboard } from './dashboard-spec.js';
import { createEmbedTokens, type EmbedSession, type EmbedTokens, type MintInput } from './embed-tokens.js';
import { createSigningKeys, type SigningKeys } from './signing-keys.js';
import { toPredicate, validateRowRule, validateSessionTags, type RowRule } from './tag-rules.js';
import { zodToStewardError } from '../server/zod-error.js';

export interface DatasetResult {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly PlainValue[])[];
  readonly truncated: boolean;
}

export interface EmbedView {
  readonly dashboard: Dashboard & { readonly id: string };
  readonly session: EmbedSession;
  readonly data: Readonly<Record<string, DatasetResult>>;
}

export interface ConsoleView {
  readonly dashboard: Dashboard & { readonly id: string };
  readonly data: Readonly<Record<string, DatasetResult | { readonly error: { readonly code: string; readonly message: string } }>>;
}

export interface EmbedService {
  readonly keys: SigningKeys;
  readonly tokens: EmbedTokens;
  putDashboard(id: string, spec: unknown, actor: string): Promise<Dashboard>;
  getDashboard(id: string): Promise<Dashboard | undefined>;
  listDashboards(): Promise<readonly { id: string; dashboard: Dashboard }[]>;
  deleteDashboard(id: string, actor: string): Promise<boolean>;
  /**
   * Makes the stored dashboards exactly `wanted` (already checked, `dashboardFor`) inside `tx`, the policy
   * apply's own transaction; returns what changed and the decision-log entries for it.
   */
  replaceDashboards(tx: Db, wanted: Readonly<Record<string, Dashboard>>, actor: string): Promise<{ changes: readonly DashboardChange[]; log: DecisionLogEntry[] }>;
  /** Checks the request (dashboard, tags against its rules, origins, user id) and mints a token. */
  mint(input: MintInput, actor: string): Promise<{ token: string; jti: string; expiresAt: string }>;
  /** Uses up the token and runs the dashboard's datasets for its session. */
  open(token: string, dashboardId: string): Promise<EmbedView>;
  /**
   * The dashboards a provisioned user may open in the console: those whose every dataset table it may SELECT.
   * Titles only; nothing of a dashboard it may not read is shown.
   */
  listFor(principal: PrincipalRef): Promise<readonly { id: string; title: string; description?: string }[]>;
  /**
   * A dashboard's datasets run as `principal` itself (its grants, data filters and guardrails, through the
   * gateway), not as the dashboard's `runAs` with a session rule: what the console shows a provisioned user.
   * A dataset the principal may not read is that dataset's error, not the whole view's.
   */
  viewAs(dashboardId: string, principal: PrincipalRef): Promise<ConsoleView>;
  /** The row predicate of each dataset table for a session (what the gateway adds). */
  sessionRows(d: Dashboard, tags: Readonly<Record<string, string>>): Map<string, Predicate>;
}

export interface DashboardChange {
  readonly id: string;
  readonly action: 'create' | 'change' | 'delete';
}

/** What makes the stored dashboards (`current`: id → canonical JSON of the stored spec) exactly `wanted`. */
export function planDashboardChanges(wanted: Readonly<Record<string, Dashboard>>, current: ReadonlyMap<string, string>): DashboardChange[] {
  const out: DashboardChange[] = [];
  for (const [id, d] of Object.entries(wanted).sort(([a], [b]) => a.localeCompare(b))) {
    const was = current.get(id);
    if (was === undefined) out.push({ id, action: 'create' });
    else if (was !== JSON.stringify(d)) out.push({ id, action: 'change' });
  }
  for (const id of [...current.keys()].sort()) if (!Object.hasOwn(wanted, id)) out.push({ id, action: 'delete' });
  return out;
}

/**
 * A dashboard as it would be stored, checked against `world`: the schema, its
 * own consistency, its dataset tables and their rule columns, its `runAs`
 * user. Pure, so policy apply checks dashboards against the world it is about
 * to commit and refuses before anything is written.
 */
export function dashboardFor(world: PolicyWorld, id: string, spec: unknown): Dashboard {
  const parsed = DashboardSchema.safeParse(spec);
  if (!parsed.success) throw zodToStewardError(`dashboards.${id}`, parsed.error);
  const d = checkDashboard(parsed.data, `dashboards.${id}`);
  for (const [dsId, ds] of Object.entries(d.datasets)) {
    const [catalog, database, name] = ds.table.split('.');
    const table = world.tables.find((t) => t.catalog === catalog && t.database === database && t.name === name);
    if (table === undefined) throw notFound('table', ds.table);
    validateRowRule(ds.rowRule, new Map(table.columns.map((c) => [c.name, c.type])), `dashboards.${id}.datasets.${dsId}.rowRule`);
  }
  const user = d.runAs.slice('user:'.length);
  if (!world.users.some((u) => u.name === user)) throw notFound('user', d.runAs);
  const { rules: _rules, ...stored } = d;
  return stored;
}

function writeDashboard(db: Db, id: string, d: Dashboard): Promise<unknown> {
  return db.query(
    `INSERT INTO steward.embed_dashboards (id, spec, updated_at) VALUES ($1, $2, now()) ON CONFLICT (id) DO UPDATE SET spec = EXCLUDED.spec, updated_at = EXCLUDED.updated_at`,
    [id, JSON.stringify(d)],
  );
}

export const MAX_DATASET_ROWS = 50_000;
const MAX_ORIGINS = 10;

export function createEmbedService(deps: { readonly db: Db; readonly state: Pick<StateService, 'snapshot' | 'log'>; readonly gateway?: Gateway; readonly keys?: SigningKeys }): EmbedService {
  const keys = deps.keys ?? createSigningKeys(deps.db);
  const tokens = createEmbedTokens({ db: deps.db, keys });

  const getDashboard = async (id: string): Promise<Dashboard | undefined> => {
    const { rows } = await deps.db.query<{ spec: Dashboard }>('SELECT spec FROM steward.embed_dashboards WHERE id = $1', [id]);
    // Through the schema again: fields in the schema's order (jsonb keeps its own), and a row edited by hand cannot smuggle a field in.
    return rows[0] === undefined ? undefined : DashboardSchema.parse(rows[0].spec);
  };

  const sessionRows = (d: Dashboard, tags: Readonly<Record<string, string>>): Map<string, Predicate> => {
    const out = new Map<string, Predicate>();
    for (const ds of Object.values(d.datasets)) {
      const p = toPredicate(ds.rowRule, tags);
      const prev = out.get(ds.table);
      // Two datasets over one table: both rules hold (a session is only ever narrowed).
      out.set(ds.table, prev === undefined ? p : { k: 'and', args: [prev, p] });
    }
    return out;
  };

  const runDataset = async (d: Dashboard, id: string, as: { principal: PrincipalRef; actor: string; scope?: SessionScope }): Promise<DatasetResult> => {
    if (deps.gateway === undefined) throw new StewardError('STEWARD_E_INTERNAL', 'the gateway is not available');
    const ds = d.datasets[id] as Dashboard['datasets'][string];
    const stream = await deps.gateway.open({ principal: as.principal, actor: as.actor, sql: ds.sql, ...(as.scope === undefined ? {} : { session: as.scope }), maxRows: MAX_DATASET_ROWS });
    const rows: PlainValue[][] = [];
    for await (const batch of stream.batches()) for (const r of batch) rows.push(r.map(toPlainValue));
    const summary = await stream.summary;
    return { columns: stream.columns.map((c) => c.name), rows, truncated: summary.truncated };
  };

  return {
    keys,
    tokens,
    getDashboard,
    sessionRows,
    async putDashboard(id, spec, actor) {
      const stored = dashboardFor((await deps.state.snapshot()).world, id, spec);
      await writeDashboard(deps.db, id, stored);
      await deps.state.log([{ actor, action: 'embed.dashboard.put', resource: `dashboard:${id}`, result: 'ok', reason: 'dashboard stored', details: { id } }]);
      return stored;
    },
    async replaceDashboards(tx, wanted, actor) {
      // Read in the transaction (PGlite has one connection: a read on `deps.db` would wait for this transaction to end).
      const current = new Map((await dashboardRows(tx)).map((d) => [d.id, JSON.stringify(d.dashboard)]));
      const changes = planDashboardChanges(wanted, current);
      for (const c of changes) {
        if (c.action === 'delete') await tx.query('DELETE FROM steward.embed_dashboards WHERE id = $1', [c.id]);
        else await writeDashboard(tx, c.id, wanted[c.id] as Dashboard);
      }
      const log = changes.map((c) => ({ actor, action: c.action === 'delete' ? 'embed.dashboard.delete' : 'embed.dashboard.put', resource: `dashboard:${c.id}`, result: 'ok' as const, reason: `dashboard ${c.action === 'delete' ? 'deleted' : 'stored'} by policy apply`, details: { id: c.id } }));
      return { changes, log };
    },
    async listDashboards() {
      return dashboardRows(deps.db);
    },
    async deleteDashboard(id, actor) {
      const { rows } = await deps.db.query<{ id: string }>('DELETE FROM steward.embed_dashboards WHERE id = $1 RETURNING id', [id]);
      if (rows.length > 0) await deps.state.log([{ actor, action: 'embed.dashboard.delete', resource: `dashboard:${id}`, result: 'ok', reason: 'dashboard deleted', details: { id } }]);
      return rows.length > 0;
    },
    async mint(input, actor) {
      const d = await getDashboard(input.dashboard);
      if (d === undefined) throw notFound('dashboard', input.dashboard);
      const rules: RowRule[] = Object.values(d.datasets).map((ds) => ds.rowRule);
      const tags = validateSessionTags(input.tags, rules);
      const user = checkUser(input.user);
      const origins = checkOrigins(input.origins);
      const minted = await tokens.mint({ ...input, user, tags, origins });
      await deps.state.log([
        {
          actor,
          action: 'embed.token.create',
          resource: `dashboard:${input.dashboard}`,
          result: 'ok',
          reason: `token for \`${user}\``,
          details: { principal: `embed:${user}`, embed: canonicalJson({ user, tags, session: minted.jti, dashboard: input.dashboard, origins }) },
        },
      ]);
      return minted;
    },
    async open(token, dashboardId) {
      const session = await tokens.open(token, dashboardId);
      const d = await getDashboard(dashboardId);
      if (d === undefined) throw notFound('dashboard', dashboardId);
      // The rules may have changed since minting: tags no rule names any more are refused now too.
      validateSessionTags(session.tags, Object.values(d.datasets).map((ds) => ds.rowRule));
      const scope: SessionScope = { rows: sessionRows(d, session.tags), user: session.user, tags: session.tags, id: session.jti, dashboard: dashboardId };
      const data: Record<string, DatasetResult> = {};
      for (const id of Object.keys(d.datasets)) data[id] = await runDataset(d, id, { principal: d.runAs as PrincipalRef, actor: `embed:${session.user}`, scope });
      return { dashboard: { ...d, id: dashboardId }, session, data };
    },
    async listFor(principal) {
      const { engine } = await deps.state.snapshot();
      return (await this.listDashboards())
        .filter((d) => readableBy(engine, principal, d.dashboard))
        .map((d) => ({ id: d.id, title: d.dashboard.title, ...(d.dashboard.description === undefined ? {} : { description: d.dashboard.description }) }));
    },
    async viewAs(dashboardId, principal) {
      const d = await getDashboard(dashboardId);
      // Only this dashboard's tables are decided: one the principal may not read every table of is not there for it.
      if (d === undefined || !readableBy((await deps.state.snapshot()).engine, principal, d)) throw notFound('dashboard', dashboardId);
      const data: Record<string, ConsoleView['data'][string]> = {};
      for (const id of Object.keys(d.datasets)) {
        try {
          data[id] = await runDataset(d, id, { principal, actor: principal });
        } catch (e) {
          if (!(e instanceof StewardError) || e.code === 'STEWARD_E_INTERNAL') throw e;
          data[id] = { error: { code: e.code, message: e.message } };
        }
      }
      return { dashboard: { ...d, id: dashboardId }, data };
    },
  };
}

/** The stored dashboards, by id. */
async function dashboardRows(db: Db): Promise<{ id: string; dashboard: Dashboard }[]> {
  const { rows } = await db.query<{ id: string; spec: Dashboard }>('SELECT id, spec FROM steward.embed_dashboards ORDER BY id');
  return rows.map((r) => ({ id: r.id, dashboard: DashboardSchema.parse(r.spec) }));
}

/** Whether `principal` may read every table of the dashboard's datasets: the console shows it only then. */
function readableBy(engine: Evaluator, principal: PrincipalRef, d: Dashboard): boolean {
  return Object.values(d.datasets).every((ds) => {
    const [catalog = '', database = '', table = ''] = ds.table.split('.');
    return engine.authorize({ principal, action: 'SELECT', resource: { level: 'table', catalog, database, table } }).decision === 'allow';
  });
}

function checkUser(user: string): string {
  const u = user.trim();
  if (u.length === 0 || u.length > 256 || /[\u0000-\u001f\u007f]/.test(u)) {
    throw new StewardError('STEWARD_E_VALIDATION', 'user: must be 1 to 256 characters without control characters', { details: [{ path: 'user', message: 'invalid' }] });
  }
  return u;
}

/**
 * Origins as a browser sends them (`https://app.example.com`, `http://localhost:8080`):
 * scheme, host and port only, so each can go into `frame-ancestors` as it is.
 */
export function checkOrigins(origins: readonly string[]): string[] {
  if (origins.length === 0 || origins.length > MAX_ORIGINS) {
    throw new StewardError('STEWARD_E_VALIDATION', `origins: list 1 to ${MAX_ORIGINS} origins allowed to frame the dashboard`, { details: [{ path: 'origins', message: 'count' }] });
  }
  return origins.map((o, i) => {
    let url: URL | undefined;
    try {
      url = new URL(o);
    } catch {
      url = undefined;
    }
    // The host must be a plain name or address: WHATWG URLs accept `*` in a host, which frame-ancestors reads as a wildcard.
    if (url === undefined || (url.protocol !== 'https:' && url.protocol !== 'http:') || url.origin !== o || !/^([a-z0-9-]+\.)*[a-z0-9-]+$|^\[[0-9a-f:.]+\]$/.test(url.hostname)) {
      throw new StewardError('STEWARD_E_VALIDATION', `origins[${i}]: \`${o}\` is not an origin such as \`https://app.example.com\` (scheme, host and port only)`, {
        details: [{ path: `origins[${i}]`, message: 'not an origin' }],
      });
    }
    return url.origin;
  });
}
