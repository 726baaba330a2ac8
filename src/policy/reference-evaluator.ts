/**
 * The reference evaluator: docs/policy.md transcribed into loops over the whole
 * world, with no index and no cache. It is slow on purpose; its only job is to
 * be obviously right, so that the indexed engine can be checked against it.
 *
 * The message texts of reasons live here too (exported), because both
 * evaluators must say the same thing.
 */
import type {
  AccessHolder,
  ColumnAccess,
  Decision,
  EffectivePermission,
  Evaluator,
  AuthorizeRequest,
  Reason,
} from './decision.js';
import type {
  Column,
  DataFilter,
  Grant,
  Guardrail,
  Permission,
  PolicyWorld,
  PrincipalRef,
  ResourceRef,
  Table,
} from './model.js';
import { ACTIONS_AT, findTable, GRANTABLE_ON, PERMISSIONS, resourceExists, resourceToString } from './model.js';
import type { Predicate } from './predicate.js';
import { anyOf, FALSE, samePredicate } from './predicate.js';
import { compareText, membershipGraph, principalExists, principalSet, splitPrincipal } from './principals.js';
import { matchesTagExpression } from './tag-expression.js';
import { ancestorsOf, effectiveTags, tagValues } from './tags.js';

// ------------------------------------------------------------------ messages

export const reasonText = {
  grant: (g: Grant): string => `grant \`${g.id}\` to \`${g.principal}\``,
  guardrail: (name: string): string => `guardrail \`${name}\` denies it`,
  lifted: (name: string, g: Grant): string =>
    `guardrail \`${name}\` lifted by time-bound grant \`${g.id}\` until ${g.notAfter ?? 'an invalid instant'}`,
  noGrant: (principal: string, action: Permission, resource: string): string =>
    `no grant gives \`${principal}\` ${action} on \`${resource}\``,
  expired: (g: Grant): string => `grant \`${g.id}\` expired at ${g.notAfter ?? 'an invalid instant'}`,
  notApplicable: (action: string, level: string): string => `${action} is not decided on a ${level}`,
  unknownPrincipal: (principal: string): string => `unknown principal \`${principal}\``,
  unknownResource: (resource: string): string => `unknown resource \`${resource}\``,
};

export function grantReason(g: Grant): Reason {
  return { code: 'GRANT', grantId: g.id, via: g.principal, message: reasonText.grant(g) };
}

export function guardrailReason(name: string): Reason {
  return { code: 'GUARDRAIL', guardrail: name, message: reasonText.guardrail(name) };
}

export function liftedReason(name: string, g: Grant): Reason {
  return { code: 'GUARDRAIL_LIFTED', guardrail: name, grantId: g.id, message: reasonText.lifted(name, g) };
}

// --------------------------------------------------------------- small rules

/**
 * When a grant stops counting, as epoch ms. A `notAfter` that does not parse
 * counts as already passed: an unreadable expiry must not mean "forever".
 */
export function expiryOf(g: Grant): number {
  if (g.notAfter === undefined) return Number.POSITIVE_INFINITY;
  const ms = Date.parse(g.notAfter);
  return Number.isNaN(ms) ? Number.NEGATIVE_INFINITY : ms;
}

export function isExpired(g: Grant, now: number): boolean {
  return now >= expiryOf(g);
}

/**
 * Whether grant `g` is exempt from guardrail `gr`: the grant is time-bound
 * (a `notAfter` that parses), names the guardrail in `liftsGuardrails`, and
 * the guardrail is `liftable`. The caller checks that the grant is live.
 */
export function lifts(g: Grant, gr: Guardrail): boolean {
  return gr.liftable === true && Number.isFinite(expiryOf(g)) && (g.liftsGuardrails ?? []).includes(gr.name);
}

/** A grant carries an action only when it lists it and its kind may carry it. */
export function carries(g: Grant, action: Permission): boolean {
  return g.permissions.includes(action) && GRANTABLE_ON[g.resource.kind].includes(action);
}

/**
 * The columns an include/exclude pair selects, in table order. Include wins
 * over nothing; when both lists are given (an invalid world) the include list
 * minus the exclude list is taken, the narrower reading. `whenNeither` says
 * what no list at all means (all columns for a filter, none for a grant).
 */
export function selectColumns(
  table: Table,
  include: readonly string[] | undefined,
  exclude: readonly string[] | undefined,
  whenNeither: 'all' | 'none',
): Column[] {
  if (include !== undefined) return table.columns.filter((c) => include.includes(c.name) && !(exclude ?? []).includes(c.name));
  if (exclude !== undefined) return table.columns.filter((c) => !exclude.includes(c.name));
  return whenNeither === 'all' ? [...table.columns] : [];
}

// -------------------------------------------------------------- the context

interface Ctx {
  readonly world: PolicyWorld;
  readonly principal: PrincipalRef;
  readonly set: ReadonlySet<PrincipalRef>;
  readonly now: number;
}

/** Grants held through the principal set, live or not. */
function heldGrants(ctx: Ctx): Grant[] {
  return ctx.world.grants.filter((g) => ctx.set.has(g.principal));
}

/**
 * Whether a catalog, database, table or tag grant covers resource `r` (columns
 * and filter grants only ever act through `columnSource`).
 */
function covers(world: PolicyWorld, g: Grant, r: ResourceRef): boolean {
  const gr = g.resource;
  switch (gr.kind) {
    case 'catalog':
      return r.catalog === gr.catalog;
    case 'database':
      return r.level !== 'catalog' && r.catalog === gr.catalog && r.database === gr.database;
    case 'table':
      return (
        (r.level === 'table' || r.level === 'column') &&
        r.catalog === gr.catalog &&
        r.database === gr.database &&
        r.table === gr.table
      );
    case 'columns':
    case 'filter':
      return false;
    case 'tag':
      return r.level !== 'catalog' && r.catalog === gr.catalog && matchesTagExpression(gr.expression, tagValues(effectiveTags(world, r)));
    default: {
      const never: never = gr;
      return never;
    }
  }
}

/** One source of SELECT on a column: all rows (`predicate` null) or the rows of a filter. */
interface Source {
  readonly grant: Grant;
  readonly predicate: Predicate | null;
  readonly filter: string | null;
}

function findFilter(world: PolicyWorld, catalog: string, database: string, table: string, name: string): DataFilter | undefined {
  return world.filters.find((f) => f.catalog === catalog && f.database === database && f.table === table && f.name === name);
}

/** What grant `g` contributes to SELECT on column `column` of `table`, or null. */
function columnSource(world: PolicyWorld, g: Grant, table: Table, column: Column): Source | null {
  if (!carries(g, 'SELECT')) return null;
  const ref: ResourceRef = { level: 'column', catalog: table.catalog, database: table.database, table: table.name, column: column.name };
  const gr = g.resource;
  const sameTable = gr.catalog === table.catalog && 'table' in gr && gr.database === table.database && gr.table === table.name;
  switch (gr.kind) {
    case 'catalog':
    case 'database':
    case 'table':
    case 'tag':
      return covers(world, g, ref) ? { grant: g, predicate: null, filter: null } : null;
    case 'columns': {
      if (!sameTable) return null;
      const cols = selectColumns(table, gr.columns, gr.excludedColumns, 'none');
      return cols.some((c) => c.name === column.name) ? { grant: g, predicate: null, filter: null } : null;
    }
    case 'filter': {
      if (!sameTable) return null;
      const f = findFilter(world, gr.catalog, gr.database, gr.table, gr.filter);
      if (f === undefined) return null;
      const cols = selectColumns(table, f.columns, f.excludedColumns, 'all');
      return cols.some((c) => c.name === column.name) ? { grant: g, predicate: f.predicate, filter: f.name } : null;
    }
    default: {
      const never: never = gr;
      return never;
    }
  }
}

function guardrailApplies(ctx: Ctx, gr: Guardrail): boolean {
  const included = gr.principals === undefined || gr.principals.length === 0 || gr.principals.some((p) => ctx.set.has(p));
  const excepted = (gr.except ?? []).some((p) => ctx.set.has(p));
  return included && !excepted;
}

function guardrailMatches(world: PolicyWorld, gr: Guardrail, r: ResourceRef): boolean {
  if (gr.catalog !== undefined && gr.catalog !== r.catalog) return false;
  return [r, ...ancestorsOf(r)].some((x) => matchesTagExpression(gr.resources, tagValues(effectiveTags(world, x))));
}

/** The guardrails that apply to the principal and deny `action` on `r`, sorted by name. */
function denyingGuardrails(ctx: Ctx, action: Permission, r: ResourceRef): Guardrail[] {
  return ctx.world.guardrails
    .filter((gr) => gr.actions.includes(action) && guardrailApplies(ctx, gr) && guardrailMatches(ctx.world, gr, r))
    .sort((a, b) => compareText(a.name, b.name));
}

function namesOf(guardrails: readonly Guardrail[]): string[] {
  return guardrails.map((gr) => gr.name);
}

/** Whether grant `g` lifts every guardrail of `denied` (true when there is none). */
function liftsAll(g: Grant, denied: readonly Guardrail[]): boolean {
  return denied.every((gr) => lifts(g, gr));
}

/** One (guardrail, grant) lift used by a decision. */
type Lift = readonly [Guardrail, Grant];

function liftsOf(denied: readonly Guardrail[], grants: readonly Grant[]): Lift[] {
  return denied.flatMap((gr) => grants.map((g): Lift => [gr, g]));
}

// --------------------------------------------------------------- decisions

/** The decision-specific part; `finish` adds the request fields. */
interface Outcome {
  readonly decision: 'allow' | 'deny';
  readonly reasons: readonly Reason[];
  readonly matchedGrants: readonly string[];
  readonly deniedBy: readonly string[];
  readonly filters: readonly string[];
  readonly columns?: readonly ColumnAccess[];
  readonly rowFilter?: Predicate | null;
}

function denyWith(reason: Reason): Outcome {
  return { decision: 'deny', reasons: [reason], matchedGrants: [], deniedBy: [], filters: [] };
}

function guardrailDeny(names: readonly string[]): Outcome {
  return { decision: 'deny', reasons: names.map(guardrailReason), matchedGrants: [], deniedBy: names, filters: [] };
}

function noGrant(ctx: Ctx, action: Permission, r: ResourceRef, expired: readonly Grant[]): Outcome {
  const sorted = [...expired].sort((a, b) => compareText(a.id, b.id));
  const reasons: Reason[] = [
    { code: 'NO_GRANT', message: reasonText.noGrant(ctx.principal, action, resourceToString(r)) },
    ...sorted.map((g): Reason => ({ code: 'GRANT_EXPIRED', grantId: g.id, message: reasonText.expired(g) })),
  ];
  return { decision: 'deny', reasons, matchedGrants: [], deniedBy: [], filters: [] };
}

function allow(grants: readonly Grant[], deniedBy: readonly string[], extra: Partial<Outcome> = {}, lifted: readonly Lift[] = []): Outcome {
  const unique = [...new Map(grants.map((g) => [g.id, g])).values()].sort((a, b) => compareText(a.id, b.id));
  const liftReasons = [...new Map(lifted.map(([gr, g]) => [`${gr.name}\u0000${g.id}`, liftedReason(gr.name, g)])).entries()]
    .sort(([a], [b]) => compareText(a, b))
    .map(([, r]) => r);
  return {
    decision: 'allow',
    reasons: [...unique.map(grantReason), ...deniedBy.map(guardrailReason), ...liftReasons],
    matchedGrants: unique.map((g) => g.id),
    deniedBy,
    filters: [],
    ...extra,
  };
}

/**
 * Whether grant `g`, were it live and ignoring guardrails, would give `action`
 * on `r`. Used only to explain a NO_GRANT with GRANT_EXPIRED reasons.
 */
function wouldCover(world: PolicyWorld, g: Grant, action: Permission, r: ResourceRef): boolean {
  if (action === 'DESCRIBE') {
    return ACTIONS_AT[r.level].some((a) => (a === 'DESCRIBE' ? carries(g, a) && covers(world, g, r) : wouldCover(world, g, a, r)));
  }
  if (action === 'SELECT' && (r.level === 'table' || r.level === 'column')) {
    const table = findTable(world, r);
    if (table === undefined) return false;
    const cols = r.level === 'table' ? table.columns : table.columns.filter((c) => c.name === r.column);
    return cols.some((c) => columnSource(world, g, table, c) !== null);
  }
  return carries(g, action) && covers(world, g, r);
}

function expiredCovering(ctx: Ctx, action: Permission, r: ResourceRef): Grant[] {
  return heldGrants(ctx).filter((g) => isExpired(g, ctx.now) && wouldCover(ctx.world, g, action, r));
}

function liveGrants(ctx: Ctx): Grant[] {
  return heldGrants(ctx).filter((g) => !isExpired(g, ctx.now));
}

/** SELECT on a table: the cell-level union of docs/policy.md. */
function selectTable(ctx: Ctx, table: Table): Outcome {
  const tref: ResourceRef = { level: 'table', catalog: table.catalog, database: table.database, table: table.name };
  const live = liveGrants(ctx);
  const perColumn = table.columns.map((column) => ({
    column,
    sources: live.map((g) => columnSource(ctx.world, g, table, column)).filter((s): s is Source => s !== null),
  }));
  // a guardrail on the table (or an ancestor) denies outright unless some source's grant lifts all of them
  const denied = denyingGuardrails(ctx, 'SELECT', tref);
  if (denied.length > 0 && !perColumn.some((pc) => pc.sources.some((s) => liftsAll(s.grant, denied)))) return guardrailDeny(namesOf(denied));
  const removedBy = new Set<string>();
  const lifted: Lift[] = [];
  const visible: { column: Column; sources: Source[] }[] = [];
  for (const { column, sources } of perColumn) {
    if (sources.length === 0) continue;
    const cref: ResourceRef = { ...tref, level: 'column', column: column.name };
    const colDenied = denyingGuardrails(ctx, 'SELECT', cref);
    // guardrails act per source: a source survives when its grant lifts every guardrail denying the column
    const surviving = sources.filter((s) => liftsAll(s.grant, colDenied));
    if (surviving.length === 0) {
      for (const s of sources) for (const gr of colDenied) if (!lifts(s.grant, gr)) removedBy.add(gr.name);
      continue;
    }
    lifted.push(...liftsOf(colDenied, surviving.map((s) => s.grant)));
    visible.push({ column, sources: surviving });
  }
  const deniedBy = [...removedBy].sort(compareText);
  if (visible.length === 0) {
    return deniedBy.length > 0 ? guardrailDeny(deniedBy) : noGrant(ctx, 'SELECT', tref, expiredCovering(ctx, 'SELECT', tref));
  }
  const allSources = visible.flatMap((v) => v.sources);
  const rowFilter = anyOf(allSources.map((s) => s.predicate));
  const columns = visible.map((v): ColumnAccess => {
    const cell = anyOf(v.sources.map((s) => s.predicate));
    return { name: v.column.name, rowFilter: samePredicate(cell, rowFilter) ? null : cell };
  });
  const filters = [...new Set(allSources.flatMap((s) => (s.filter === null ? [] : [s.filter])))].sort(compareText);
  return allow(
    allSources.map((s) => s.grant),
    deniedBy,
    { filters, columns, rowFilter },
    lifted,
  );
}

/** SELECT on one column: allowed when the column is visible. */
function selectColumn(ctx: Ctx, table: Table, column: Column): Outcome {
  const cref: ResourceRef = { level: 'column', catalog: table.catalog, database: table.database, table: table.name, column: column.name };
  const denied = denyingGuardrails(ctx, 'SELECT', cref);
  const sources = liveGrants(ctx)
    .map((g) => columnSource(ctx.world, g, table, column))
    .filter((s): s is Source => s !== null)
    .filter((s) => liftsAll(s.grant, denied));
  if (denied.length > 0 && sources.length === 0) return guardrailDeny(namesOf(denied));
  if (sources.length === 0) return noGrant(ctx, 'SELECT', cref, expiredCovering(ctx, 'SELECT', cref));
  const filters = [...new Set(sources.flatMap((s) => (s.filter === null ? [] : [s.filter])))].sort(compareText);
  return allow(
    sources.map((s) => s.grant),
    [],
    { filters, columns: [{ name: column.name, rowFilter: null }], rowFilter: anyOf(sources.map((s) => s.predicate)) },
    liftsOf(denied, sources.map((s) => s.grant)),
  );
}

/**
 * INSERT, DELETE, ALTER, DROP, CREATE_TABLE: a covering grant carries it and
 * no guardrail denies it, or the grant lifts every guardrail that does.
 */
function plainAction(ctx: Ctx, action: Permission, r: ResourceRef): Outcome {
  const denied = denyingGuardrails(ctx, action, r);
  const matched = liveGrants(ctx).filter((g) => carries(g, action) && covers(ctx.world, g, r) && liftsAll(g, denied));
  if (denied.length > 0 && matched.length === 0) return guardrailDeny(namesOf(denied));
  return matched.length > 0 ? allow(matched, [], {}, liftsOf(denied, matched)) : noGrant(ctx, action, r, expiredCovering(ctx, action, r));
}

/** Resources directly inside `r` where DESCRIBE is decided (columns have none). */
function describableChildren(world: PolicyWorld, r: ResourceRef): ResourceRef[] {
  switch (r.level) {
    case 'catalog':
      return world.databases
        .filter((d) => d.catalog === r.catalog)
        .map((d): ResourceRef => ({ level: 'database', catalog: d.catalog, database: d.name }));
    case 'database':
      return world.tables
        .filter((t) => t.catalog === r.catalog && t.database === r.database)
        .map((t): ResourceRef => ({ level: 'table', catalog: t.catalog, database: t.database, table: t.name }));
    case 'table':
    case 'column':
      return [];
    default: {
      const never: never = r;
      return never;
    }
  }
}

/**
 * DESCRIBE: a covering grant carrying it, or any other action allowed on the
 * resource, or DESCRIBE allowed on something inside it; unless a guardrail
 * denies DESCRIBE there. The matched grants are the union of all of these;
 * under a denying guardrail, only those of them that lift it.
 */
function describe(ctx: Ctx, r: ResourceRef): Outcome {
  const denied = denyingGuardrails(ctx, 'DESCRIBE', r);
  const byId = new Map(ctx.world.grants.map((g) => [g.id, g]));
  const matched: Grant[] = liveGrants(ctx).filter((g) => carries(g, 'DESCRIBE') && covers(ctx.world, g, r));
  const implied: Outcome[] = [
    ...ACTIONS_AT[r.level].filter((a) => a !== 'DESCRIBE').map((a) => decide(ctx, a, r)),
    ...describableChildren(ctx.world, r).map((child) => describe(ctx, child)),
  ];
  for (const o of implied) {
    if (o.decision === 'allow') o.matchedGrants.forEach((id) => matched.push(byId.get(id) as Grant));
  }
  const lifting = matched.filter((g) => liftsAll(g, denied));
  if (denied.length > 0 && lifting.length === 0) return guardrailDeny(namesOf(denied));
  return lifting.length > 0 ? allow(lifting, [], {}, liftsOf(denied, lifting)) : noGrant(ctx, 'DESCRIBE', r, expiredCovering(ctx, 'DESCRIBE', r));
}

/** The decision for a known principal, an applicable action and an existing resource. */
function decide(ctx: Ctx, action: Permission, r: ResourceRef): Outcome {
  switch (action) {
    case 'DESCRIBE':
      return describe(ctx, r);
    case 'SELECT': {
      if (r.level !== 'table' && r.level !== 'column') return denyWith({ code: 'NOT_APPLICABLE', message: reasonText.notApplicable(action, r.level) });
      const table = findTable(ctx.world, r) as Table;
      if (r.level === 'table') return selectTable(ctx, table);
      return selectColumn(ctx, table, table.columns.find((c) => c.name === r.column) as Column);
    }
    case 'INSERT':
    case 'DELETE':
    case 'ALTER':
    case 'DROP':
    case 'CREATE_TABLE':
      return plainAction(ctx, action, r);
    default: {
      const never: never = action;
      return never;
    }
  }
}

function finish(req: AuthorizeRequest, o: Outcome): Decision {
  const base: Decision = {
    decision: o.decision,
    principal: req.principal,
    action: req.action,
    resource: resourceToString(req.resource),
    reasons: o.reasons,
    matchedGrants: o.matchedGrants,
    deniedBy: o.deniedBy,
    filters: o.filters,
  };
  // INVARIANT: every SELECT decision carries columns and rowFilter; a deny shows no column and no row
  if (req.action !== 'SELECT') return base;
  return { ...base, columns: o.columns ?? [], rowFilter: o.decision === 'allow' ? (o.rowFilter ?? null) : FALSE };
}

/**
 * Checks run in this order: unknown principal, action not decided at the
 * level, unknown resource; then the decision proper.
 */
export function referenceAuthorize(world: PolicyWorld, req: AuthorizeRequest): Decision {
  const now = req.now ?? Date.now();
  if (!principalExists(world, req.principal)) {
    return finish(req, denyWith({ code: 'UNKNOWN_PRINCIPAL', message: reasonText.unknownPrincipal(req.principal) }));
  }
  if (!(PERMISSIONS as readonly string[]).includes(req.action) || !ACTIONS_AT[req.resource.level].includes(req.action)) {
    return finish(req, denyWith({ code: 'NOT_APPLICABLE', message: reasonText.notApplicable(req.action, req.resource.level) }));
  }
  if (!resourceExists(world, req.resource)) {
    return finish(req, denyWith({ code: 'UNKNOWN_RESOURCE', message: reasonText.unknownResource(resourceToString(req.resource)) }));
  }
  const ctx: Ctx = { world, principal: req.principal, set: principalSet(membershipGraph(world), req.principal), now };
  return finish(req, decide(ctx, req.action, req.resource));
}

/** Builds one effective-permission entry from the decisions at a resource, or null when nothing is allowed. */
export function effectiveEntry(
  r: ResourceRef,
  decisions: readonly Decision[],
  grantOf: (id: string) => Grant | undefined,
): EffectivePermission | null {
  const allowed = decisions.filter((d) => d.decision === 'allow');
  if (allowed.length === 0) return null;
  const permissions = PERMISSIONS.filter((p) => allowed.some((d) => d.action === p));
  const grantable = permissions.filter((p) =>
    allowed.some((d) => d.action === p && d.matchedGrants.some((id) => {
      const g = grantOf(id);
      return g !== undefined && g.grantable.includes(p) && carries(g, p);
    })),
  );
  const grants = [...new Set(allowed.flatMap((d) => d.matchedGrants))].sort(compareText);
  const select = allowed.find((d) => d.action === 'SELECT');
  const entry: EffectivePermission = { resource: resourceToString(r), level: r.level, permissions, grantable, grants };
  return select === undefined ? entry : { ...entry, columns: select.columns ?? [], rowFilter: select.rowFilter ?? null };
}

function allContainers(world: PolicyWorld): ResourceRef[] {
  return [
    ...world.catalogs.map((c): ResourceRef => ({ level: 'catalog', catalog: c.name })),
    ...world.databases.map((d): ResourceRef => ({ level: 'database', catalog: d.catalog, database: d.name })),
    ...world.tables.map((t): ResourceRef => ({ level: 'table', catalog: t.catalog, database: t.database, table: t.name })),
  ];
}

export function referenceEffectivePermissions(world: PolicyWorld, principal: PrincipalRef, now = Date.now()): EffectivePermission[] {
  if (!principalExists(world, principal)) return [];
  const out: EffectivePermission[] = [];
  for (const r of allContainers(world)) {
    const decisions = ACTIONS_AT[r.level].map((action) => referenceAuthorize(world, { principal, action, resource: r, now }));
    const entry = effectiveEntry(r, decisions, (id) => world.grants.find((g) => g.id === id));
    if (entry !== null) out.push(entry);
  }
  return out.sort((a, b) => compareText(a.resource, b.resource));
}

export function referenceWhoCanAccess(world: PolicyWorld, resource: ResourceRef, action: Permission, now = Date.now()): AccessHolder[] {
  const out: AccessHolder[] = [];
  for (const u of world.users) {
    const principal: PrincipalRef = `user:${u.name}`;
    const decision = referenceAuthorize(world, { principal, action, resource, now });
    if (decision.decision === 'allow') out.push({ principal, decision });
  }
  return out.sort((a, b) => compareText(a.principal, b.principal));
}

/** The naive evaluator. Every call walks the whole world. */
export function createReferenceEvaluator(world: PolicyWorld): Evaluator {
  return {
    authorize: (req) => referenceAuthorize(world, req),
    effectivePermissions: (principal, now) => referenceEffectivePermissions(world, principal, now),
    whoCanAccess: (resource, action, now) => referenceWhoCanAccess(world, resource, action, now),
  };
}

/** Exposed for explanations: is `p` a well-formed principal ref. */
export function isPrincipalRef(p: string): p is PrincipalRef {
  return splitPrincipal(p) !== null;
}
