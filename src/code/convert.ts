/**
 * Policy document <-> the managed parts of a policy world.
 *
 * `toManagedWorld` also checks what the schema alone cannot (a tag value is
 * allowed for its key, a grant names a declared principal, a filter exists,
 * optionally that resources exist in the registered catalog) and reports every
 * problem at the source location of the entity that has it.
 *
 * `fromWorld(toManagedWorld(doc))` is the canonical form of `doc`: sections and
 * entries sorted, lists sorted and de-duplicated where order carries no meaning,
 * grant ids omitted where they equal the derived id.
 */
import { createHash } from 'node:crypto';
import type { EntityKind, EntityTypes } from '../policy/changes.js';
import { entityKey, stableJson, WORLD_FIELD } from '../policy/changes.js';
import type {
  DataFilter,
  Grant,
  GrantResource,
  Group,
  Guardrail,
  IdpGroupMapping,
  Membership,
  Permission,
  PolicyWorld,
  PrincipalRef,
  TagAssignment,
  TaggableRef,
  TagExpression,
  TagKey,
  User,
} from '../policy/model.js';
import { GRANTABLE_ON, PERMISSIONS, parseResource, resourceToString } from '../policy/model.js';
import type { Predicate } from '../policy/predicate.js';
import { columnsOf } from '../policy/predicate.js';
import type { ErrorDetail } from '../errors.js';
import type { DocFilter, DocGrant, DocGrantResource, DocGuardrail, PolicyDocument } from './schema.js';
import { API_VERSION } from './schema.js';
import type { SourceLocation, SourceLocations } from './source-location.js';
import { formatLocation, locationKey, policyError } from './source-location.js';
import { experimentMeta } from '../experiments/experiment-guardrail.js';
import { tagKeyOf } from '../experiments/experiment-types.js';

/** The entity kinds policy files manage. The catalog is registered from the sources, never declared. */
export const MANAGED_KINDS = [
  'user',
  'group',
  'membership',
  'idpMapping',
  'tagKey',
  'tagAssignment',
  'filter',
  'grant',
  'guardrail',
] as const satisfies readonly EntityKind[];
export type ManagedKind = (typeof MANAGED_KINDS)[number];

export type ManagedWorld = Pick<
  PolicyWorld,
  'users' | 'groups' | 'memberships' | 'idpMappings' | 'tagKeys' | 'tagAssignments' | 'filters' | 'grants' | 'guardrails'
>;

export type CatalogWorld = Pick<PolicyWorld, 'catalogs' | 'databases' | 'tables'>;

export interface ConvertOptions {
  /** Parses a row filter's SQL (DuckDB's parser in production); throws on invalid SQL. */
  readonly parsePredicate: (sql: string) => Predicate;
  /** Entity locations from `loadPolicy`, so problems point into the files. */
  readonly locations?: SourceLocations;
  /** When given, every resource the policy names must exist in it. */
  readonly catalog?: CatalogWorld;
}

// ------------------------------------------------------------- canonical forms

const uniqueSorted = (xs: readonly string[]): string[] => [...new Set(xs)].sort();
const sortPermissions = (ps: readonly Permission[]): Permission[] =>
  [...new Set(ps)].sort((a, b) => PERMISSIONS.indexOf(a) - PERMISSIONS.indexOf(b));
/** Users first, then nested groups: most member lists are people. */
const sortMembers = (ps: readonly PrincipalRef[]): PrincipalRef[] =>
  [...new Set(ps)].sort((a, b) => Number(a.startsWith('group:')) - Number(b.startsWith('group:')) || (a < b ? -1 : a > b ? 1 : 0));
const sortPrincipals = (ps: readonly PrincipalRef[]): PrincipalRef[] => [...new Set(ps)].sort();

function canonicalExpression(e: TagExpression): TagExpression {
  const out: Record<string, string[]> = {};
  for (const k of Object.keys(e).sort()) out[k] = uniqueSorted(e[k] ?? []);
  return out;
}

export function canonicalGrantResource(r: GrantResource): GrantResource {
  switch (r.kind) {
    case 'catalog':
      return { kind: 'catalog', catalog: r.catalog };
    case 'database':
      return { kind: 'database', catalog: r.catalog, database: r.database };
    case 'table':
      return { kind: 'table', catalog: r.catalog, database: r.database, table: r.table };
    case 'columns': {
      const base = { kind: 'columns', catalog: r.catalog, database: r.database, table: r.table } as const;
      return r.columns !== undefined ? { ...base, columns: uniqueSorted(r.columns) } : { ...base, excludedColumns: uniqueSorted(r.excludedColumns ?? []) };
    }
    case 'filter':
      return { kind: 'filter', catalog: r.catalog, database: r.database, table: r.table, filter: r.filter };
    case 'tag':
      return { kind: 'tag', catalog: r.catalog, expression: canonicalExpression(r.expression) };
    default: {
      const never: never = r;
      return never;
    }
  }
}

/** Drops undefined fields so canonical entities compare equal structurally, not only by `stableJson`. */
function compact<T extends object>(o: T): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as T;
}

/** An entity with order-free lists sorted, so two worlds that mean the same compare equal. */
export function canonicalEntity<K extends ManagedKind>(kind: K, entity: EntityTypes[K]): EntityTypes[K] {
  return canonicalize(kind, entity) as EntityTypes[K];
}

function canonicalize(kind: ManagedKind, e: EntityTypes[ManagedKind]): EntityTypes[ManagedKind] {
  switch (kind) {
    case 'user': {
      const u = e as User;
      return compact<User>({ name: u.name, displayName: u.displayName });
    }
    case 'group': {
      const g = e as Group;
      return compact<Group>({ name: g.name, description: g.description });
    }
    case 'membership': {
      const m = e as Membership;
      return { group: m.group, member: m.member };
    }
    case 'idpMapping': {
      const m = e as IdpGroupMapping;
      return { provider: m.provider, externalGroup: m.externalGroup, group: m.group };
    }
    case 'tagKey': {
      const t = e as TagKey;
      // Value order is kept: it is the order people see the values in.
      return compact<TagKey>({ key: t.key, values: [...new Set(t.values)], description: t.description });
    }
    case 'tagAssignment': {
      const a = e as TagAssignment;
      const ref = parseResource(resourceToString(a.resource)) as TaggableRef;
      return { resource: ref, key: a.key, value: a.value };
    }
    case 'filter': {
      const f = e as DataFilter;
      return compact<DataFilter>({
        name: f.name,
        catalog: f.catalog,
        database: f.database,
        table: f.table,
        rowFilter: f.rowFilter,
        predicate: f.predicate,
        columns: f.columns === undefined ? undefined : uniqueSorted(f.columns),
        excludedColumns: f.excludedColumns === undefined ? undefined : uniqueSorted(f.excludedColumns),
      });
    }
    case 'grant': {
      const g = e as Grant;
      return compact<Grant>({
        id: g.id,
        principal: g.principal,
        resource: canonicalGrantResource(g.resource),
        permissions: sortPermissions(g.permissions),
        grantable: sortPermissions(g.grantable),
        notAfter: g.notAfter,
        // no list and an empty list lift nothing alike
        liftsGuardrails: g.liftsGuardrails === undefined || g.liftsGuardrails.length === 0 ? undefined : uniqueSorted(g.liftsGuardrails),
        description: g.description,
      });
    }
    case 'guardrail': {
      const g = e as Guardrail;
      return compact<Guardrail>({
        name: g.name,
        description: g.description,
        principals: g.principals === undefined ? undefined : sortPrincipals(g.principals),
        // An empty except list excepts nobody, exactly like no list.
        except: g.except === undefined || g.except.length === 0 ? undefined : sortPrincipals(g.except),
        actions: sortPermissions(g.actions),
        catalog: g.catalog,
        resources: canonicalExpression(g.resources),
        // false and absent mean the same: not liftable
        liftable: g.liftable === true ? true : undefined,
        residency: g.residency === undefined ? undefined : { regions: uniqueSorted(g.residency.regions), mode: g.residency.mode },
      });
    }
    default: {
      const never: never = kind;
      return never;
    }
  }
}

/** The world field that holds a managed kind's entities. */
export function managedField(kind: ManagedKind): keyof ManagedWorld {
  return WORLD_FIELD[kind] as keyof ManagedWorld;
}

function canonicalList<K extends ManagedKind>(kind: K, list: readonly EntityTypes[K][]): EntityTypes[K][] {
  return list
    .map((e) => canonicalEntity(kind, e))
    .sort((a, b) => {
      const ka = entityKey(kind, a);
      const kb = entityKey(kind, b);
      return ka < kb ? -1 : ka > kb ? 1 : 0;
    });
}

/** The managed parts of a world, canonical and sorted by entity key. */
export function canonicalManagedWorld(w: ManagedWorld): ManagedWorld {
  return {
    users: canonicalList('user', w.users),
    groups: canonicalList('group', w.groups),
    memberships: canonicalList('membership', w.memberships),
    idpMappings: canonicalList('idpMapping', w.idpMappings),
    tagKeys: canonicalList('tagKey', w.tagKeys),
    tagAssignments: canonicalList('tagAssignment', w.tagAssignments),
    filters: canonicalList('filter', w.filters),
    grants: canonicalList('grant', w.grants),
    guardrails: canonicalList('guardrail', w.guardrails),
  };
}

/**
 * Grants with this id prefix belong to just-in-time access (docs/access.md):
 * they come and go with approved requests, so policy files neither export nor
 * remove them, and may not declare them.
 */
export const RUNTIME_GRANT_PREFIX = 'jit-';

/** Only the managed fields of a world (a full `PolicyWorld` is accepted), without runtime grants. */
export function managedPart(w: ManagedWorld): ManagedWorld {
  const out: Record<string, unknown> = {};
  for (const kind of MANAGED_KINDS) out[managedField(kind)] = w[managedField(kind)];
  out['grants'] = w.grants.filter((g) => !g.id.startsWith(RUNTIME_GRANT_PREFIX));
  return out as unknown as ManagedWorld;
}

/**
 * The world as policy files see it: without a running experiment's guardrail, tag key and tags, which the run owns.
 * Files neither export nor remove them, so applying files written before a run started does not lift its deny.
 * (The guardrail API still sees them: an admin may delete one, and the experiments' sweep puts it back.)
 */
export function withoutExperimentRuns<W extends ManagedWorld>(w: W): W {
  const runs = new Set(w.guardrails.flatMap((g) => experimentMeta(g)?.id ?? []));
  if (runs.size === 0) return w;
  const keys = new Set([...runs].map(tagKeyOf));
  return {
    ...w,
    guardrails: w.guardrails.filter((g) => experimentMeta(g) === null),
    tagKeys: w.tagKeys.filter((k) => !keys.has(k.key)),
    tagAssignments: w.tagAssignments.filter((a) => !keys.has(a.key)),
  };
}

/**
 * The world as policy files see it, without what shares own: each share's principal (`user:share.<name>`), its
 * grants and its data filters (`src/sharing/producer.ts`), which the sharing API creates and revokes. Files
 * neither export them (their grant ids are not names a file may use) nor remove them.
 */
export function withoutShares<W extends ManagedWorld>(w: W, shares: readonly string[]): W {
  if (shares.length === 0) return w;
  const users = new Set(shares.map((n) => `share.${n}`));
  const principals = new Set(shares.map((n) => `user:share.${n}`));
  const filters = new Set(shares.map((n) => `share-${n}`));
  return {
    ...w,
    users: w.users.filter((u) => !users.has(u.name)),
    grants: w.grants.filter((g) => !principals.has(g.principal)),
    filters: w.filters.filter((f) => !filters.has(f.name)),
  };
}

// ---------------------------------------------------------------- grant ids

function splitTable(path: string): { catalog: string; database: string; table: string } {
  const [catalog = '', database = '', table = ''] = path.split('.');
  return { catalog, database, table };
}

export function toGrantResource(r: DocGrantResource): GrantResource {
  if (typeof r === 'string') {
    const ref = parseResource(r);
    switch (ref?.level) {
      case 'catalog':
        return { kind: 'catalog', catalog: ref.catalog };
      case 'database':
        return { kind: 'database', catalog: ref.catalog, database: ref.database };
      case 'table':
        return { kind: 'table', catalog: ref.catalog, database: ref.database, table: ref.table };
      default:
        // The schema admits only catalog, database and table paths here.
        throw new TypeError(`unexpected grant resource \`${r}\``);
    }
  }
  if ('table' in r) {
    const t = splitTable(r.table);
    if (r.filter !== undefined) return { kind: 'filter', ...t, filter: r.filter };
    if (r.columns !== undefined) return { kind: 'columns', ...t, columns: uniqueSorted(r.columns) };
    return { kind: 'columns', ...t, excludedColumns: uniqueSorted(r.excludedColumns ?? []) };
  }
  return { kind: 'tag', catalog: r.catalog, expression: canonicalExpression(r.tags) };
}

export function fromGrantResource(r: GrantResource): DocGrantResource {
  switch (r.kind) {
    case 'catalog':
      return r.catalog;
    case 'database':
      return `${r.catalog}.${r.database}`;
    case 'table':
      return `${r.catalog}.${r.database}.${r.table}`;
    case 'columns': {
      const table = `${r.catalog}.${r.database}.${r.table}`;
      return r.columns !== undefined ? { table, columns: uniqueSorted(r.columns) } : { table, excludedColumns: uniqueSorted(r.excludedColumns ?? []) };
    }
    case 'filter':
      return { table: `${r.catalog}.${r.database}.${r.table}`, filter: r.filter };
    case 'tag':
      return { catalog: r.catalog, tags: canonicalExpression(r.expression) };
    default: {
      const never: never = r;
      return never;
    }
  }
}

/**
 * The id of a grant written without one: readable, and stable as long as the
 * principal and the resource stay the same (changing permissions keeps the id,
 * so the plan shows a change rather than a replacement).
 *
 * @example derivedGrantId('group:analysts', { kind: 'table', catalog: 'lake', database: 'claims', table: 'patient_claims' })
 *   // 'analysts-patient_claims-1f0c9a2e'
 */
export function derivedGrantId(principal: PrincipalRef, resource: GrantResource): string {
  const r = canonicalGrantResource(resource);
  const hash = createHash('sha256').update(stableJson({ principal, resource: r })).digest('hex').slice(0, 8);
  const who = principal.slice(principal.indexOf(':') + 1);
  const what = r.kind === 'catalog' ? r.catalog : r.kind === 'database' ? r.database : r.kind === 'tag' ? 'tags' : r.table;
  const id = `${who.slice(0, 60)}-${what.slice(0, 50)}-${hash}`;
  return id.startsWith(RUNTIME_GRANT_PREFIX) ? `g-${id}` : id;
}

export function grantIdOf(g: Pick<DocGrant, 'id' | 'principal' | 'resource'>): string {
  return g.id ?? derivedGrantId(g.principal, toGrantResource(g.resource));
}

// -------------------------------------------------------------- doc -> world

class Problems {
  private readonly found: { detail: ErrorDetail; loc: SourceLocation | undefined }[] = [];
  constructor(private readonly locations: SourceLocations | undefined) {}

  add(kind: EntityKind, key: string, message: string): void {
    const loc = this.locations?.get(locationKey(kind, key));
    this.found.push({ detail: { path: loc === undefined ? `${kind} ${key}` : formatLocation(loc), message }, loc });
  }

  /** In file order, so authors can work down the file. */
  get details(): ErrorDetail[] {
    const rank = (l: SourceLocation | undefined): [string, number, number] => (l === undefined ? ['\uffff', 0, 0] : [l.file, l.line, l.column]);
    return this.found
      .map((f, i) => ({ ...f, i }))
      .sort((a, b) => {
        const [fa, la, ca] = rank(a.loc);
        const [fb, lb, cb] = rank(b.loc);
        return fa < fb ? -1 : fa > fb ? 1 : la - lb || ca - cb || a.i - b.i;
      })
      .map((f) => f.detail);
  }
}

function filterFromDoc(table: string, name: string, f: DocFilter, parse: (sql: string) => Predicate, problems: Problems): DataFilter {
  const t = splitTable(table);
  const rowFilter = f.rowFilter ?? null;
  let predicate: Predicate | null = null;
  if (rowFilter !== null) {
    try {
      predicate = parse(rowFilter);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      problems.add('filter', `${table}/${name}`, `filter \`${name}\`: invalid row filter: ${why}`);
    }
  }
  return compact<DataFilter>({
    name,
    ...t,
    rowFilter,
    predicate,
    columns: f.columns === undefined ? undefined : uniqueSorted(f.columns),
    excludedColumns: f.excludedColumns === undefined ? undefined : uniqueSorted(f.excludedColumns),
  });
}

function guardrailFromDoc(name: string, g: DocGuardrail): Guardrail {
  return canonicalEntity(
    'guardrail',
    compact<Guardrail>({
      name,
      description: g.description,
      principals: g.principals,
      except: g.except,
      actions: g.actions ?? [],
      catalog: g.catalog,
      resources: g.resources,
      liftable: g.liftable,
      residency: g.residency,
    }),
  );
}

/**
 * The managed parts of a world that a policy document describes. Throws a
 * `STEWARD_E_VALIDATION` error listing every problem.
 *
 * @example toManagedWorld(loaded.document, { parsePredicate, locations: loaded.locations, catalog: world })
 */
export function toManagedWorld(doc: PolicyDocument, options: ConvertOptions): ManagedWorld {
  const problems = new Problems(options.locations);

  const tagKeys: TagKey[] = Object.entries(doc.tagKeys ?? {}).map(([key, t]) =>
    compact<TagKey>({ key, values: [...new Set(t.values)], description: t.description }),
  );
  const tagAssignments: TagAssignment[] = [];
  for (const [path, tags] of Object.entries(doc.tags ?? {})) {
    const resource = parseResource(path) as TaggableRef;
    for (const [key, value] of Object.entries(tags)) tagAssignments.push({ resource, key, value });
  }
  const users: User[] = Object.entries(doc.users ?? {}).map(([name, u]) => compact<User>({ name, displayName: u.displayName }));
  const groups: Group[] = Object.entries(doc.groups ?? {}).map(([name, g]) => compact<Group>({ name, description: g.description }));
  const memberships: Membership[] = [];
  for (const [group, g] of Object.entries(doc.groups ?? {})) {
    for (const member of new Set(g.members ?? [])) memberships.push({ group, member });
  }
  const idpMappings: IdpGroupMapping[] = (doc.idpMappings ?? []).map((m) => ({ provider: m.provider, externalGroup: m.externalGroup, group: m.group }));
  const filters: DataFilter[] = [];
  for (const [table, byName] of Object.entries(doc.filters ?? {})) {
    for (const [name, f] of Object.entries(byName)) filters.push(filterFromDoc(table, name, f, options.parsePredicate, problems));
  }
  const grants: Grant[] = (doc.grants ?? []).map((g) =>
    canonicalEntity(
      'grant',
      compact<Grant>({
        id: grantIdOf(g),
        principal: g.principal,
        resource: toGrantResource(g.resource),
        permissions: g.permissions,
        grantable: g.grantable ?? [],
        notAfter: g.notAfter,
        liftsGuardrails: g.liftsGuardrails,
        description: g.description,
      }),
    ),
  );
  const guardrails: Guardrail[] = Object.entries(doc.guardrails ?? {}).map(([name, g]) => guardrailFromDoc(name, g));

  for (const g of grants) {
    if (g.id.startsWith(RUNTIME_GRANT_PREFIX)) problems.add('grant', g.id, `grant ids starting with \`${RUNTIME_GRANT_PREFIX}\` are reserved for just-in-time access`);
  }
  const world = canonicalManagedWorld({ users, groups, memberships, idpMappings, tagKeys, tagAssignments, filters, grants, guardrails });
  checkReferences(world, problems, options.catalog);
  if (problems.details.length > 0) throw policyError('STEWARD_E_VALIDATION', problems.details);
  return world;
}

/** Cross-references inside the managed world, and into the catalog when one is given. */
function checkReferences(w: ManagedWorld, problems: Problems, catalog: CatalogWorld | undefined): void {
  const tagValues = new Map(w.tagKeys.map((t) => [t.key, new Set(t.values)]));
  const users = new Set(w.users.map((u) => u.name));
  const groups = new Set(w.groups.map((g) => g.name));
  const filterKeys = new Set(w.filters.map((f) => entityKey('filter', f)));

  const principalProblem = (p: PrincipalRef): string | null => {
    const [kind, name] = p.split(':') as ['user' | 'group', string];
    const known = kind === 'user' ? users.has(name) : groups.has(name);
    return known ? null : `unknown ${kind} \`${name}\``;
  };
  const expressionProblems = (e: TagExpression): string[] => {
    const out: string[] = [];
    for (const [key, values] of Object.entries(e)) {
      const allowed = tagValues.get(key);
      if (allowed === undefined) out.push(`unknown tag key \`${key}\``);
      else for (const v of values) if (!allowed.has(v)) out.push(`\`${v}\` is not a value of tag key \`${key}\``);
    }
    return out;
  };

  // Catalog lookups, only when a catalog is given.
  const catalogs = new Set(catalog?.catalogs.map((c) => c.name));
  const databases = new Set(catalog?.databases.map((d) => `${d.catalog}.${d.name}`));
  const tableColumns = new Map(catalog?.tables.map((t) => [`${t.catalog}.${t.database}.${t.name}`, new Set(t.columns.map((c) => c.name))]));
  const resourceProblem = (path: string): string | null => {
    if (catalog === undefined) return null;
    const r = parseResource(path);
    if (r === null) return `unknown resource \`${path}\``;
    switch (r.level) {
      case 'catalog':
        return catalogs.has(r.catalog) ? null : `unknown catalog \`${path}\``;
      case 'database':
        return databases.has(path) ? null : `unknown database \`${path}\``;
      case 'table':
        return tableColumns.has(path) ? null : `unknown table \`${path}\``;
      case 'column': {
        const cols = tableColumns.get(`${r.catalog}.${r.database}.${r.table}`);
        return cols?.has(r.column) === true ? null : `unknown column \`${path}\``;
      }
      default: {
        const never: never = r;
        return never;
      }
    }
  };
  const columnProblems = (table: string, columns: readonly string[] | undefined): string[] => {
    const known = tableColumns.get(table);
    if (catalog === undefined || known === undefined || columns === undefined) return [];
    return columns.filter((c) => !known.has(c)).map((c) => `unknown column \`${c}\` in \`${table}\``);
  };

  for (const a of w.tagAssignments) {
    const key = entityKey('tagAssignment', a);
    const allowed = tagValues.get(a.key);
    if (allowed === undefined) problems.add('tagAssignment', key, `unknown tag key \`${a.key}\``);
    else if (!allowed.has(a.value)) problems.add('tagAssignment', key, `\`${a.value}\` is not a value of tag key \`${a.key}\``);
    const rp = resourceProblem(resourceToString(a.resource));
    if (rp !== null) problems.add('tagAssignment', key, rp);
  }

  const groupMembers = new Map<string, string[]>();
  for (const m of w.memberships) {
    const p = principalProblem(m.member);
    if (p !== null) problems.add('membership', entityKey('membership', m), `group \`${m.group}\`: ${p}`);
    if (m.member.startsWith('group:')) groupMembers.set(m.group, [...(groupMembers.get(m.group) ?? []), m.member.slice(6)]);
  }
  for (const cycle of findCycles(groupMembers)) {
    problems.add('group', cycle[0] as string, `groups form a cycle: ${cycle.map((g) => `\`${g}\``).join(' -> ')}`);
  }

  for (const m of w.idpMappings) {
    if (!groups.has(m.group)) problems.add('idpMapping', entityKey('idpMapping', m), `unknown group \`${m.group}\``);
  }

  for (const f of w.filters) {
    const key = entityKey('filter', f);
    const table = `${f.catalog}.${f.database}.${f.table}`;
    const rp = resourceProblem(table);
    if (rp !== null) problems.add('filter', key, `filter \`${f.name}\`: ${rp}`);
    const cols = [...(f.columns ?? []), ...(f.excludedColumns ?? []), ...(f.predicate === null ? [] : columnsOf(f.predicate))];
    for (const p of columnProblems(table, uniqueSorted(cols))) problems.add('filter', key, `filter \`${f.name}\`: ${p}`);
  }

  for (const g of w.grants) {
    const say = (m: string): void => problems.add('grant', g.id, `grant \`${g.id}\`: ${m}`);
    const pp = principalProblem(g.principal);
    if (pp !== null) say(pp);
    const r = g.resource;
    const bad = g.permissions.filter((p) => !GRANTABLE_ON[r.kind].includes(p));
    if (bad.length > 0) say(`${bad.map((p) => `\`${p}\``).join(', ')} cannot be granted on ${r.kind === 'tag' ? 'a tag expression' : r.kind === 'columns' ? 'columns' : `a ${r.kind}`}`);
    switch (r.kind) {
      case 'catalog':
      case 'database':
      case 'table': {
        const rp = resourceProblem(fromGrantResource(r) as string);
        if (rp !== null) say(rp);
        break;
      }
      case 'columns': {
        const table = `${r.catalog}.${r.database}.${r.table}`;
        const rp = resourceProblem(table);
        if (rp !== null) say(rp);
        for (const p of columnProblems(table, r.columns ?? r.excludedColumns)) say(p);
        break;
      }
      case 'filter': {
        const table = `${r.catalog}.${r.database}.${r.table}`;
        if (!filterKeys.has(`${table}/${r.filter}`)) say(`unknown filter \`${r.filter}\` on \`${table}\``);
        break;
      }
      case 'tag': {
        const rp = resourceProblem(r.catalog);
        if (rp !== null) say(rp);
        for (const p of expressionProblems(r.expression)) say(p);
        break;
      }
      default: {
        const never: never = r;
        return never;
      }
    }
  }

  for (const g of w.guardrails) {
    const say = (m: string): void => problems.add('guardrail', g.name, `guardrail \`${g.name}\`: ${m}`);
    for (const p of [...(g.principals ?? []), ...(g.except ?? [])]) {
      const pp = principalProblem(p);
      if (pp !== null) say(pp);
    }
    if (g.catalog !== undefined) {
      const rp = resourceProblem(g.catalog);
      if (rp !== null) say(rp);
    }
    for (const p of expressionProblems(g.resources)) say(p);
  }
}

/** Each cycle once, as a path that returns to its start (`a -> b -> a`). */
function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const cycles: string[][] = [];
  const stack: string[] = [];
  const visit = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') cycles.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...edges.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

// -------------------------------------------------------------- world -> doc

const sortedEntries = <T>(list: readonly T[], key: (t: T) => string): T[] =>
  [...list].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));

/** The canonical document for the managed parts of a world (a full `PolicyWorld` is accepted). */
export function fromWorld(world: ManagedWorld): PolicyDocument {
  const w = canonicalManagedWorld(managedPart(world));
  const doc: Record<string, unknown> = { apiVersion: API_VERSION };

  if (w.tagKeys.length > 0) {
    doc.tagKeys = Object.fromEntries(w.tagKeys.map((t) => [t.key, compact({ values: [...t.values], description: t.description })]));
  }
  if (w.tagAssignments.length > 0) {
    const tags: Record<string, Record<string, string>> = {};
    for (const a of sortedEntries(w.tagAssignments, (x) => `${resourceToString(x.resource)}#${x.key}`)) {
      const path = resourceToString(a.resource);
      tags[path] = { ...tags[path], [a.key]: a.value };
    }
    doc.tags = tags;
  }
  if (w.users.length > 0) doc.users = Object.fromEntries(w.users.map((u) => [u.name, compact({ displayName: u.displayName })]));

  const members = new Map<string, PrincipalRef[]>();
  for (const m of w.memberships) members.set(m.group, [...(members.get(m.group) ?? []), m.member]);
  const groupNames = uniqueSorted([...w.groups.map((g) => g.name), ...members.keys()]);
  if (groupNames.length > 0) {
    const byName = new Map(w.groups.map((g) => [g.name, g]));
    doc.groups = Object.fromEntries(
      groupNames.map((name) => {
        const list = members.get(name);
        return [name, compact({ description: byName.get(name)?.description, members: list === undefined ? undefined : sortMembers(list) })];
      }),
    );
  }
  if (w.idpMappings.length > 0) doc.idpMappings = w.idpMappings.map((m) => ({ provider: m.provider, externalGroup: m.externalGroup, group: m.group }));
  if (w.filters.length > 0) {
    const filters: Record<string, Record<string, DocFilter>> = {};
    for (const f of w.filters) {
      const table = `${f.catalog}.${f.database}.${f.table}`;
      filters[table] = {
        ...filters[table],
        [f.name]: compact<DocFilter>({ rowFilter: f.rowFilter ?? undefined, columns: f.columns && [...f.columns], excludedColumns: f.excludedColumns && [...f.excludedColumns] }),
      };
    }
    doc.filters = filters;
  }
  if (w.grants.length > 0) {
    doc.grants = w.grants.map((g) =>
      compact<DocGrant>({
        id: g.id === derivedGrantId(g.principal, g.resource) ? undefined : g.id,
        principal: g.principal,
        resource: fromGrantResource(g.resource),
        permissions: [...g.permissions],
        grantable: g.grantable.length === 0 ? undefined : [...g.grantable],
        notAfter: g.notAfter,
        liftsGuardrails: g.liftsGuardrails === undefined || g.liftsGuardrails.length === 0 ? undefined : [...g.liftsGuardrails],
        description: g.description,
      }),
    );
  }
  if (w.guardrails.length > 0) {
    doc.guardrails = Object.fromEntries(
      w.guardrails.map((g) => [
        g.name,
        compact<DocGuardrail>({
          description: g.description,
          principals: g.principals && [...g.principals],
          except: g.except && [...g.except],
          // a residency guardrail denies no action: its file has no `actions`
          actions: g.residency !== undefined && g.actions.length === 0 ? undefined : [...g.actions],
          catalog: g.catalog,
          resources: canonicalExpression(g.resources),
          liftable: g.liftable === true ? true : undefined,
          residency: g.residency === undefined ? undefined : { regions: [...g.residency.regions], mode: g.residency.mode },
        }),
      ]),
    );
  }
  return doc as PolicyDocument;
}

/**
 * Parses every row filter of a document with an asynchronous parser (DuckDB's
 * is) and returns the synchronous `parsePredicate` that `toManagedWorld` takes.
 * A row filter that failed to parse throws its original error when asked for,
 * so `toManagedWorld` reports it at the filter's location.
 *
 * @example toManagedWorld(doc, { parsePredicate: await preparePredicates(doc, (sql) => parsePredicate(sql, db)) })
 */
export async function preparePredicates(
  doc: PolicyDocument,
  parse: (sql: string) => Promise<Predicate>,
): Promise<(sql: string) => Predicate> {
  const results = new Map<string, { ok: true; value: Predicate } | { ok: false; error: unknown }>();
  for (const byName of Object.values(doc.filters ?? {})) {
    for (const f of Object.values(byName)) {
      if (f.rowFilter === undefined || f.rowFilter === null || results.has(f.rowFilter)) continue;
      try {
        results.set(f.rowFilter, { ok: true, value: await parse(f.rowFilter) });
      } catch (error) {
        results.set(f.rowFilter, { ok: false, error });
      }
    }
  }
  return (sql) => {
    const r = results.get(sql);
    if (r === undefined) throw new Error(`row filter was not prepared`);
    if (!r.ok) throw r.error;
    return r.value;
  };
}
