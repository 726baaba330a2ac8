/**
 * World validation: every problem a user can put into a policy world, found
 * at once and reported with a path a person can act on.
 *
 * Paths name entities by their natural key (see `entityKey` in changes.ts) and
 * nested lists by index: `grants[analysts-read].resource.columns[1]`,
 * `tagAssignments[lake.claims.members#pii]`, `tables[lake.claims.members].columns[2]`.
 *
 * The evaluators stay deterministic on invalid worlds, but only a valid world
 * has the meaning docs/policy.md gives it; stores and `steward apply` refuse
 * anything `validateWorld` complains about.
 */
import type { ErrorCode } from '../errors.js';
import { StewardError } from '../errors.js';
import { entityKey } from './changes.js';
import type { DataFilter, Grant, Guardrail, PolicyWorld, PrincipalRef, ResidencyRule, Table, TagExpression } from './model.js';
import {
  CATALOG_NAME_PATTERN,
  isReservedName,
  GRANTABLE_ON,
  LABEL_PATTERN,
  MAX_TAG_VALUES,
  NAME_PATTERN,
  PERMISSIONS,
  REGION_GLOB_PATTERN,
  RESIDENCY_MODES,
  resourceToString,
  TAG_VALUE_PATTERN,
} from './model.js';
import { columnsOf } from './predicate.js';
import { findGroupCycle, splitPrincipal } from './principals.js';

export interface ValidationIssue {
  readonly path: string;
  readonly code: ErrorCode;
  readonly message: string;
}

/** Longest grant id, IdP provider or group name we accept. */
const MAX_ID_LENGTH = 128;
const MAX_EXTERNAL_LENGTH = 256;

/**
 * The default role prefix of warehouse sync (src/sync): group roles are
 * `stw_<group>`, so a user named `stw_<group>` would log in as that group's role.
 */
export const RESERVED_USER_PREFIX = 'stw_';

type Report = (path: string, code: ErrorCode, message: string) => void;

/** Everything wrong with a world, in a stable order (by section, then as listed). Empty when valid. */
export function validateWorld(world: PolicyWorld): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const report: Report = (path, code, message) => issues.push({ path, code, message });
  const ix = lookups(world);
  checkNames(world, report);
  checkUniqueKeys(world, report);
  checkContainers(world, ix, report);
  checkPrincipals(world, ix, report);
  checkTagKeys(world, report);
  checkTagAssignments(world, ix, report);
  checkFilters(world, ix, report);
  world.grants.forEach((g) => checkGrant(g, ix, report));
  world.guardrails.forEach((g) => checkGuardrail(g, ix, report));
  return issues;
}

/**
 * Throws a StewardError carrying every issue as a detail. With one issue the
 * error has that issue's code; with several, STEWARD_E_VALIDATION.
 */
export function assertValidWorld(world: PolicyWorld): void {
  const issues = validateWorld(world);
  const first = issues[0];
  if (first === undefined) return;
  const details = issues.map((i) => ({ path: i.path, message: i.message }));
  if (issues.length === 1) throw new StewardError(first.code, `${first.path}: ${first.message}`, { details });
  const code = issues.every((i) => i.code === first.code) ? first.code : 'STEWARD_E_VALIDATION';
  throw new StewardError(code, `${issues.length} problems in the policy, first: ${first.path}: ${first.message}`, { details });
}

// ---------------------------------------------------------------- lookups

interface Lookups {
  readonly catalogs: ReadonlySet<string>;
  readonly databases: ReadonlySet<string>;
  readonly tables: ReadonlyMap<string, Table>;
  readonly principals: ReadonlySet<string>;
  readonly groups: ReadonlySet<string>;
  readonly filters: ReadonlyMap<string, DataFilter>;
  readonly tagValues: ReadonlyMap<string, ReadonlySet<string>>;
  readonly guardrails: ReadonlyMap<string, Guardrail>;
}

function lookups(world: PolicyWorld): Lookups {
  return {
    catalogs: new Set(world.catalogs.map((c) => c.name)),
    databases: new Set(world.databases.map((d) => `${d.catalog}.${d.name}`)),
    tables: new Map(world.tables.map((t) => [`${t.catalog}.${t.database}.${t.name}`, t])),
    principals: new Set([...world.users.map((u) => `user:${u.name}`), ...world.groups.map((g) => `group:${g.name}`)]),
    groups: new Set(world.groups.map((g) => g.name)),
    filters: new Map(world.filters.map((f) => [`${f.catalog}.${f.database}.${f.table}/${f.name}`, f])),
    tagValues: new Map(world.tagKeys.map((k) => [k.key, new Set(k.values)])),
    guardrails: new Map(world.guardrails.map((g) => [g.name, g])),
  };
}

// ---------------------------------------------------------------- names and keys

function checkNames(world: PolicyWorld, report: Report): void {
  const name = (path: string, value: string, pattern: RegExp, what: string): void => {
    if (isReservedName(value)) report(path, 'STEWARD_E_VALIDATION', `${what} \`${value}\` is reserved (a property of every JavaScript object)`);
    else if (!pattern.test(value)) report(path, 'STEWARD_E_VALIDATION', `invalid ${what} \`${value}\``);
  };
  for (const c of world.catalogs) name(`catalogs[${c.name}]`, c.name, CATALOG_NAME_PATTERN, 'catalog name');
  for (const d of world.databases) name(`databases[${d.catalog}.${d.name}]`, d.name, NAME_PATTERN, 'database name');
  for (const t of world.tables) {
    const path = `tables[${t.catalog}.${t.database}.${t.name}]`;
    name(path, t.name, NAME_PATTERN, 'table name');
    const seen = new Set<string>();
    t.columns.forEach((c, i) => {
      name(`${path}.columns[${i}]`, c.name, NAME_PATTERN, 'column name');
      if (seen.has(c.name)) report(`${path}.columns[${i}]`, 'STEWARD_E_ALREADY_EXISTS', `duplicate column \`${c.name}\``);
      seen.add(c.name);
      if (c.ordinal !== i) report(`${path}.columns[${i}]`, 'STEWARD_E_VALIDATION', `column \`${c.name}\` has ordinal ${c.ordinal}, expected ${i}`);
    });
    if (t.columns.length === 0) report(path, 'STEWARD_E_VALIDATION', 'a table needs at least one column');
  }
  for (const u of world.users) {
    name(`users[${u.name}]`, u.name, LABEL_PATTERN, 'user name');
    if (u.name.startsWith(RESERVED_USER_PREFIX)) {
      report(`users[${u.name}]`, 'STEWARD_E_VALIDATION', `user name \`${u.name}\` starts with \`${RESERVED_USER_PREFIX}\`, which is reserved for the roles Steward creates in warehouses`);
    }
  }
  for (const g of world.groups) name(`groups[${g.name}]`, g.name, LABEL_PATTERN, 'group name');
  for (const k of world.tagKeys) name(`tagKeys[${k.key}]`, k.key, NAME_PATTERN, 'tag key');
  for (const f of world.filters) name(`filters[${entityKey('filter', f)}]`, f.name, LABEL_PATTERN, 'filter name');
  for (const g of world.guardrails) name(`guardrails[${g.name}]`, g.name, LABEL_PATTERN, 'guardrail name');
  for (const g of world.grants) {
    if (g.id.length === 0 || g.id.length > MAX_ID_LENGTH || /[\s\p{Cc}]/u.test(g.id)) {
      report(`grants[${g.id}]`, 'STEWARD_E_VALIDATION', `invalid grant id \`${g.id}\``);
    }
  }
  for (const m of world.idpMappings) {
    const path = `idpMappings[${entityKey('idpMapping', m)}]`;
    for (const [field, value] of [['provider', m.provider], ['externalGroup', m.externalGroup]] as const) {
      if (value.trim().length === 0 || value.length > MAX_EXTERNAL_LENGTH) report(`${path}.${field}`, 'STEWARD_E_VALIDATION', `invalid ${field} \`${value}\``);
    }
  }
}

function checkUniqueKeys(world: PolicyWorld, report: Report): void {
  const unique = <T>(field: string, items: readonly T[], key: (t: T) => string, code: ErrorCode = 'STEWARD_E_ALREADY_EXISTS'): void => {
    const seen = new Set<string>();
    for (const item of items) {
      const k = key(item);
      if (seen.has(k)) {
        report(`${field}[${k}]`, code, code === 'STEWARD_E_DUPLICATE_TAG' ? `\`${k.slice(0, k.lastIndexOf('#'))}\` already has a value for \`${k.slice(k.lastIndexOf('#') + 1)}\`` : `duplicate \`${k}\``);
      }
      seen.add(k);
    }
  };
  unique('catalogs', world.catalogs, (e) => entityKey('catalog', e));
  unique('databases', world.databases, (e) => entityKey('database', e));
  unique('tables', world.tables, (e) => entityKey('table', e));
  unique('users', world.users, (e) => entityKey('user', e));
  unique('groups', world.groups, (e) => entityKey('group', e));
  unique('memberships', world.memberships, (e) => entityKey('membership', e));
  unique('idpMappings', world.idpMappings, (e) => entityKey('idpMapping', e));
  unique('tagKeys', world.tagKeys, (e) => entityKey('tagKey', e));
  unique('tagAssignments', world.tagAssignments, (e) => entityKey('tagAssignment', e), 'STEWARD_E_DUPLICATE_TAG');
  unique('filters', world.filters, (e) => entityKey('filter', e));
  unique('grants', world.grants, (e) => entityKey('grant', e));
  unique('guardrails', world.guardrails, (e) => entityKey('guardrail', e));
}

// ---------------------------------------------------------------- references

function checkContainers(world: PolicyWorld, ix: Lookups, report: Report): void {
  for (const d of world.databases) {
    if (!ix.catalogs.has(d.catalog)) report(`databases[${d.catalog}.${d.name}].catalog`, 'STEWARD_E_NOT_FOUND', `catalog \`${d.catalog}\` not found`);
  }
  for (const t of world.tables) {
    if (!ix.databases.has(`${t.catalog}.${t.database}`)) {
      report(`tables[${t.catalog}.${t.database}.${t.name}].database`, 'STEWARD_E_NOT_FOUND', `database \`${t.catalog}.${t.database}\` not found`);
    }
  }
}

function checkPrincipalRef(path: string, ref: string, ix: Lookups, report: Report): void {
  if (splitPrincipal(ref) === null) report(path, 'STEWARD_E_VALIDATION', `invalid principal \`${ref}\`, expected \`user:name\` or \`group:name\``);
  else if (!ix.principals.has(ref)) report(path, 'STEWARD_E_NOT_FOUND', `principal \`${ref}\` not found`);
}

function checkPrincipals(world: PolicyWorld, ix: Lookups, report: Report): void {
  for (const m of world.memberships) {
    const path = `memberships[${entityKey('membership', m)}]`;
    if (!ix.groups.has(m.group)) report(`${path}.group`, 'STEWARD_E_NOT_FOUND', `group \`${m.group}\` not found`);
    checkPrincipalRef(`${path}.member`, m.member, ix, report);
  }
  for (const m of world.idpMappings) {
    if (!ix.groups.has(m.group)) report(`idpMappings[${entityKey('idpMapping', m)}].group`, 'STEWARD_E_NOT_FOUND', `group \`${m.group}\` not found`);
  }
  const cycle = findGroupCycle(world);
  if (cycle !== null) report(`groups[${cycle[0]}]`, 'STEWARD_E_GROUP_CYCLE', `group cycle \`${cycle.join(' → ')}\``);
}

// ---------------------------------------------------------------- tags

function checkTagKeys(world: PolicyWorld, report: Report): void {
  for (const k of world.tagKeys) {
    const path = `tagKeys[${k.key}]`;
    if (k.values.length === 0) report(`${path}.values`, 'STEWARD_E_VALIDATION', `tag key \`${k.key}\` needs at least one value`);
    if (k.values.length > MAX_TAG_VALUES) report(`${path}.values`, 'STEWARD_E_TOO_MANY_VALUES', `tag key \`${k.key}\` has ${k.values.length} values, at most ${MAX_TAG_VALUES} are allowed`);
    const seen = new Set<string>();
    k.values.forEach((v, i) => {
      if (isReservedName(v)) report(`${path}.values[${i}]`, 'STEWARD_E_VALIDATION', `tag value \`${v}\` is reserved (a property of every JavaScript object)`);
      else if (!TAG_VALUE_PATTERN.test(v)) report(`${path}.values[${i}]`, 'STEWARD_E_VALIDATION', `invalid tag value \`${v}\``);
      if (seen.has(v)) report(`${path}.values[${i}]`, 'STEWARD_E_VALIDATION', `duplicate tag value \`${v}\``);
      seen.add(v);
    });
  }
}

function taggableExists(ix: Lookups, ref: PolicyWorld['tagAssignments'][number]['resource']): boolean {
  switch (ref.level) {
    case 'database':
      return ix.databases.has(`${ref.catalog}.${ref.database}`);
    case 'table':
      return ix.tables.has(`${ref.catalog}.${ref.database}.${ref.table}`);
    case 'column':
      return ix.tables.get(`${ref.catalog}.${ref.database}.${ref.table}`)?.columns.some((c) => c.name === ref.column) ?? false;
    default: {
      const never: never = ref;
      return never;
    }
  }
}

function checkTagValue(path: string, key: string, value: string, ix: Lookups, report: Report): void {
  const allowed = ix.tagValues.get(key);
  if (allowed === undefined) report(path, 'STEWARD_E_UNKNOWN_TAG', `unknown tag key \`${key}\``);
  else if (!allowed.has(value)) report(path, 'STEWARD_E_UNKNOWN_TAG_VALUE', `\`${value}\` is not a value of tag key \`${key}\``);
}

function checkTagAssignments(world: PolicyWorld, ix: Lookups, report: Report): void {
  for (const a of world.tagAssignments) {
    const path = `tagAssignments[${entityKey('tagAssignment', a)}]`;
    if (!taggableExists(ix, a.resource)) report(`${path}.resource`, 'STEWARD_E_NOT_FOUND', `${a.resource.level} \`${resourceToString(a.resource)}\` not found`);
    checkTagValue(path, a.key, a.value, ix, report);
  }
}

/** Keys and values of an expression must exist: a typo would otherwise make a guardrail silently match nothing. */
function checkExpression(path: string, expr: TagExpression, ix: Lookups, report: Report): void {
  for (const key of Object.keys(expr)) {
    const values = expr[key] ?? [];
    if (!ix.tagValues.has(key)) {
      report(`${path}.${key}`, 'STEWARD_E_UNKNOWN_TAG', `unknown tag key \`${key}\``);
      continue;
    }
    if (values.length === 0) report(`${path}.${key}`, 'STEWARD_E_VALIDATION', `tag key \`${key}\` lists no value, so it matches nothing`);
    values.forEach((v, i) => checkTagValue(`${path}.${key}[${i}]`, key, v, ix, report));
  }
}

// ---------------------------------------------------------------- filters

function checkColumnList(path: string, table: Table, names: readonly string[], report: Report): void {
  names.forEach((n, i) => {
    if (!table.columns.some((c) => c.name === n)) report(`${path}[${i}]`, 'STEWARD_E_UNKNOWN_COLUMN', `column \`${n}\` not found in \`${table.catalog}.${table.database}.${table.name}\``);
  });
}

function checkFilters(world: PolicyWorld, ix: Lookups, report: Report): void {
  for (const f of world.filters) {
    const path = `filters[${entityKey('filter', f)}]`;
    const table = ix.tables.get(`${f.catalog}.${f.database}.${f.table}`);
    if (table === undefined) {
      report(`${path}.table`, 'STEWARD_E_NOT_FOUND', `table \`${f.catalog}.${f.database}.${f.table}\` not found`);
      continue;
    }
    if (f.columns !== undefined && f.excludedColumns !== undefined) {
      report(path, 'STEWARD_E_VALIDATION', 'a filter has either `columns` or `excludedColumns`, not both');
    }
    if (f.columns !== undefined && f.columns.length === 0) report(`${path}.columns`, 'STEWARD_E_VALIDATION', 'an empty column list shows nothing');
    checkColumnList(`${path}.columns`, table, f.columns ?? [], report);
    checkColumnList(`${path}.excludedColumns`, table, f.excludedColumns ?? [], report);
    if ((f.predicate === null) !== (f.rowFilter === null)) {
      report(`${path}.predicate`, 'STEWARD_E_INVALID_PREDICATE', f.predicate === null ? 'the row filter has not been parsed' : 'a parsed predicate without its row filter text');
    }
    if (f.predicate !== null) {
      for (const col of columnsOf(f.predicate)) {
        if (!table.columns.some((c) => c.name === col)) report(`${path}.predicate`, 'STEWARD_E_UNKNOWN_COLUMN', `the row filter reads unknown column \`${col}\``);
      }
    }
  }
}

// ---------------------------------------------------------------- grants

function checkGrantResource(g: Grant, ix: Lookups, report: Report): void {
  const path = `grants[${g.id}].resource`;
  const r = g.resource;
  const missing = (what: string, name: string): void => report(path, 'STEWARD_E_NOT_FOUND', `${what} \`${name}\` not found`);
  switch (r.kind) {
    case 'catalog':
    case 'tag':
      if (!ix.catalogs.has(r.catalog)) missing('catalog', r.catalog);
      if (r.kind === 'tag') checkExpression(`${path}.expression`, r.expression, ix, report);
      return;
    case 'database':
      if (!ix.databases.has(`${r.catalog}.${r.database}`)) missing('database', `${r.catalog}.${r.database}`);
      return;
    case 'table':
    case 'columns':
    case 'filter': {
      const name = `${r.catalog}.${r.database}.${r.table}`;
      const table = ix.tables.get(name);
      if (table === undefined) return missing('table', name);
      if (r.kind === 'filter' && !ix.filters.has(`${name}/${r.filter}`)) missing('filter', `${name}/${r.filter}`);
      if (r.kind !== 'columns') return;
      if ((r.columns === undefined) === (r.excludedColumns === undefined)) {
        report(path, 'STEWARD_E_VALIDATION', 'a columns grant has exactly one of `columns` or `excludedColumns`');
      }
      if (r.columns !== undefined && r.columns.length === 0) report(`${path}.columns`, 'STEWARD_E_VALIDATION', 'an empty column list grants nothing');
      checkColumnList(`${path}.columns`, table, r.columns ?? [], report);
      checkColumnList(`${path}.excludedColumns`, table, r.excludedColumns ?? [], report);
      return;
    }
    default: {
      const never: never = r;
      return never;
    }
  }
}

function checkGrant(g: Grant, ix: Lookups, report: Report): void {
  const path = `grants[${g.id}]`;
  checkPrincipalRef(`${path}.principal`, g.principal, ix, report);
  checkGrantResource(g, ix, report);
  if (g.permissions.length === 0) report(`${path}.permissions`, 'STEWARD_E_VALIDATION', 'a grant needs at least one permission');
  const allowed: readonly string[] = GRANTABLE_ON[g.resource.kind] ?? [];
  g.permissions.forEach((p, i) => {
    if (!allowed.includes(p)) report(`${path}.permissions[${i}]`, 'STEWARD_E_VALIDATION', `${p} cannot be granted on a ${g.resource.kind} grant`);
  });
  g.grantable.forEach((p, i) => {
    if (!g.permissions.includes(p)) report(`${path}.grantable[${i}]`, 'STEWARD_E_VALIDATION', `${p} is grantable but not granted`);
  });
  if (g.notAfter !== undefined && Number.isNaN(Date.parse(g.notAfter))) {
    report(`${path}.notAfter`, 'STEWARD_E_VALIDATION', `invalid instant \`${g.notAfter}\`, expected ISO-8601`);
  }
  checkLifts(g, ix, report);
}

/** A grant may lift only existing, liftable guardrails, and only when it ends (`notAfter`). */
function checkLifts(g: Grant, ix: Lookups, report: Report): void {
  const names = g.liftsGuardrails;
  if (names === undefined) return;
  const path = `grants[${g.id}].liftsGuardrails`;
  if (names.length > 0 && g.notAfter === undefined) {
    report(path, 'STEWARD_E_VALIDATION', 'a grant that lifts guardrails must be time-bound, set `notAfter`');
  }
  const seen = new Set<string>();
  names.forEach((name, i) => {
    const gr = ix.guardrails.get(name);
    if (gr === undefined) report(`${path}[${i}]`, 'STEWARD_E_VALIDATION', `guardrail \`${name}\` not found, so it cannot be lifted`);
    else if (gr.liftable !== true) report(`${path}[${i}]`, 'STEWARD_E_VALIDATION', `guardrail \`${name}\` is not liftable, mark it \`liftable: true\` to let time-bound grants lift it`);
    if (seen.has(name)) report(`${path}[${i}]`, 'STEWARD_E_VALIDATION', `guardrail \`${name}\` is listed twice`);
    seen.add(name);
  });
}

// ---------------------------------------------------------------- guardrails

function checkGuardrail(g: Guardrail, ix: Lookups, report: Report): void {
  const path = `guardrails[${g.name}]`;
  if (g.residency !== undefined) checkResidency(path, g, report);
  else if (g.actions.length === 0) report(`${path}.actions`, 'STEWARD_E_VALIDATION', 'a guardrail needs at least one action');
  g.actions.forEach((a, i) => {
    if (!(PERMISSIONS as readonly string[]).includes(a)) report(`${path}.actions[${i}]`, 'STEWARD_E_VALIDATION', `unknown action \`${a}\``);
  });
  // an empty list is read as "everyone" by the evaluators; refuse it so no author relies on either reading
  if (g.principals !== undefined && g.principals.length === 0) {
    report(`${path}.principals`, 'STEWARD_E_VALIDATION', 'an empty principal list is ambiguous, omit it to mean everyone');
  }
  (g.principals ?? []).forEach((p: PrincipalRef, i) => checkPrincipalRef(`${path}.principals[${i}]`, p, ix, report));
  (g.except ?? []).forEach((p: PrincipalRef, i) => checkPrincipalRef(`${path}.except[${i}]`, p, ix, report));
  if (g.catalog !== undefined && !ix.catalogs.has(g.catalog)) report(`${path}.catalog`, 'STEWARD_E_NOT_FOUND', `catalog \`${g.catalog}\` not found`);
  checkExpression(`${path}.resources`, g.resources, ix, report);
}

/**
 * A residency guardrail says where tagged tables may be; it denies no action
 * and names no principals (the place matters, not who moves the data), and no
 * grant can lift it.
 */
function checkResidency(path: string, g: Guardrail, report: Report): void {
  const r = g.residency as ResidencyRule;
  if (g.actions.length > 0) report(`${path}.actions`, 'STEWARD_E_VALIDATION', 'a residency guardrail denies no action, omit `actions`');
  if (g.principals !== undefined || g.except !== undefined) report(`${path}.principals`, 'STEWARD_E_VALIDATION', 'a residency guardrail applies to everyone, omit `principals` and `except`');
  if (g.liftable === true) report(`${path}.liftable`, 'STEWARD_E_VALIDATION', 'a residency guardrail cannot be lifted');
  if (Object.keys(g.resources).length === 0) report(`${path}.resources`, 'STEWARD_E_VALIDATION', 'a residency guardrail needs a tag expression, e.g. `residency=eu`');
  if (r.regions.length === 0) report(`${path}.residency.regions`, 'STEWARD_E_VALIDATION', 'a residency guardrail needs at least one region pattern');
  r.regions.forEach((p, i) => {
    if (!REGION_GLOB_PATTERN.test(p)) report(`${path}.residency.regions[${i}]`, 'STEWARD_E_VALIDATION', `\`${p}\` is not a region pattern (lowercase letters, digits, \`-\`, \`*\`)`);
  });
  if (!(RESIDENCY_MODES as readonly string[]).includes(r.mode)) report(`${path}.residency.mode`, 'STEWARD_E_VALIDATION', `unknown mode \`${r.mode}\`, use \`enforce\` or \`report-only\``);
}
