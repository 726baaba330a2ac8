/**
 * Random policy worlds for property tests and the benchmark.
 *
 * `randomWorld(seed)` builds a small world that still exercises every rule:
 * 1-3 catalogs, a few databases, tables and columns, 2-4 tag keys assigned at
 * every level (so overrides happen), nested groups without cycles, every grant
 * kind (filters with predicates, time-bound grants already expired or not) and
 * guardrails with principals and exceptions, some liftable, and time-bound
 * grants lifting them (plus lifts that must be ignored: of a non-liftable or
 * unknown guardrail, or by a grant without `notAfter`). Everything is derived from the
 * seed, so a failing seed reproduces exactly.
 *
 * `generateLargeWorld` builds the benchmark world (100k tables, ~1M columns).
 */
import fc from 'fast-check';
import type {
  Catalog,
  Column,
  DataFilter,
  Database,
  Grant,
  GrantResource,
  Group,
  Guardrail,
  Membership,
  Permission,
  PolicyWorld,
  PrincipalRef,
  ResourceRef,
  Table,
  TagAssignment,
  TagExpression,
  TagKey,
  User,
} from '../../src/policy/model.js';
import { GRANTABLE_ON, PERMISSIONS } from '../../src/policy/model.js';
import type { Predicate } from '../../src/policy/predicate.js';
import type { AccessHolder, AuthorizeRequest, Decision, EffectivePermission } from '../../src/policy/decision.js';
import { toSql } from '../../src/policy/predicate.js';

/** The instant random worlds are evaluated at; time-bound grants expire around it. */
export const NOW = Date.UTC(2025, 0, 15, 12, 0, 0);

// ---------------------------------------------------------------- the PRNG

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  int(lo: number, hi: number): number;
  pick<T>(items: readonly T[]): T;
  chance(p: number): boolean;
  subset<T>(items: readonly T[], p: number): T[];
}

/** mulberry32: tiny, fast, good enough for test data. */
export function createRng(seed: number): Rng {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (lo: number, hi: number): number => lo + Math.floor(next() * (hi - lo + 1));
  return {
    next,
    int,
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T,
    chance: (p: number) => next() < p,
    subset: <T>(items: readonly T[], p: number): T[] => items.filter(() => next() < p),
  };
}

// ---------------------------------------------------------------- small worlds

const CATALOG_NAMES = ['lake', 'acme-prod', 'wh'];
const DB_NAMES = ['claims', 'sales', 'hr'];
const TABLE_NAMES = ['members', 'orders', 'events'];
const COLUMN_NAMES = ['id', 'region', 'ssn', 'amount'];
const TAG_KEYS: readonly TagKey[] = [
  { key: 'pii', values: ['true', 'false'] },
  { key: 'domain', values: ['claims', 'sales', 'hr'] },
  { key: 'conf', values: ['public', 'internal', 'secret'] },
  { key: 'region', values: ['eu', 'us'] },
];

function randomExpression(rng: Rng, keys: readonly TagKey[], maxKeys: number): TagExpression {
  const out: [string, string[]][] = [];
  for (const k of rng.subset(keys, 0.35).slice(0, maxKeys)) {
    const values = rng.subset(k.values, 0.5);
    if (values.length === 0) values.push(rng.pick(k.values));
    // sometimes a value no resource carries, which must simply never match
    if (rng.chance(0.05)) values.push('nowhere');
    out.push([k.key, values]);
  }
  return Object.fromEntries(out);
}

function randomPredicate(rng: Rng, columns: readonly Column[]): Predicate | null {
  if (rng.chance(0.2)) return null;
  const col = (): Predicate => ({ k: 'col', name: rng.pick(columns).name });
  const lit = (): Predicate => ({ k: 'lit', value: rng.pick(['East', 'West', 1, 42, 'x']) });
  const leaf = (): Predicate => {
    switch (rng.int(0, 4)) {
      case 0:
        return { k: 'cmp', op: rng.pick(['=', '<>', '<', '>=']), left: col(), right: lit() };
      case 1:
        return { k: 'in', arg: col(), list: [lit(), lit()], negated: rng.chance(0.3) };
      case 2:
        return { k: 'isnull', arg: col(), negated: rng.chance(0.5) };
      case 3:
        return { k: 'between', arg: col(), low: { k: 'lit', value: 1 }, high: { k: 'lit', value: 9 }, negated: false };
      default:
        return { k: 'like', arg: { k: 'fn', name: 'lower', args: [col()] }, pattern: { k: 'lit', value: 'e%' }, negated: false };
    }
  };
  // a small pool makes two filters with the same predicate likely, which tests de-duplication
  if (rng.chance(0.3)) return { k: 'cmp', op: '=', left: { k: 'col', name: columns[0]!.name }, right: { k: 'lit', value: rng.pick(['East', 'West']) } };
  return rng.chance(0.3) ? { k: rng.pick(['and', 'or'] as const), args: [leaf(), leaf()] } : leaf();
}

function nonEmptySubset<T>(rng: Rng, items: readonly T[], p: number): T[] {
  const s = rng.subset(items, p);
  return s.length > 0 ? s : [rng.pick(items)];
}

function randomNotAfter(rng: Rng): string | undefined {
  const r = rng.next();
  if (r < 0.75) return undefined;
  if (r < 0.87) return new Date(NOW - rng.int(1, 10) * 3_600_000).toISOString();
  if (r < 0.9) return new Date(NOW).toISOString();
  return new Date(NOW + rng.int(1, 10) * 3_600_000).toISOString();
}

/** A small random world that is valid except that grants may name unknown principals. */
export function randomWorld(seed: number): PolicyWorld {
  const rng = createRng(seed);
  const catalogs: Catalog[] = CATALOG_NAMES.slice(0, rng.int(1, 3)).map((name) => ({ name }));
  const databases: Database[] = [];
  const tables: Table[] = [];
  for (const c of catalogs) {
    for (const d of DB_NAMES.slice(0, rng.int(1, 3))) {
      databases.push({ catalog: c.name, name: d });
      for (const t of TABLE_NAMES.slice(0, rng.int(0, 3))) {
        const names = rng.subset(COLUMN_NAMES, 0.7);
        if (names.length === 0) names.push('id');
        tables.push({
          catalog: c.name,
          database: d,
          name: t,
          columns: names.map((name, ordinal) => ({ name, type: 'VARCHAR', ordinal })),
          source: { kind: 'virtual' },
        });
      }
    }
  }
  const tagKeys = TAG_KEYS.slice(0, rng.int(2, 4));
  const tagAssignments: TagAssignment[] = [];
  const assign = (resource: TagAssignment['resource'], p: number): void => {
    for (const k of tagKeys) if (rng.chance(p)) tagAssignments.push({ resource, key: k.key, value: rng.pick(k.values) });
  };
  for (const d of databases) assign({ level: 'database', catalog: d.catalog, database: d.name }, 0.5);
  for (const t of tables) {
    assign({ level: 'table', catalog: t.catalog, database: t.database, table: t.name }, 0.3);
    for (const c of t.columns) assign({ level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: c.name }, 0.25);
  }
  const users: User[] = Array.from({ length: rng.int(2, 5) }, (_, i) => ({ name: `u${i}` }));
  const groups: Group[] = Array.from({ length: rng.int(1, 4) }, (_, i) => ({ name: `g${i}` }));
  const memberships: Membership[] = [];
  for (const u of users) for (const g of rng.subset(groups, 0.35)) memberships.push({ group: g.name, member: `user:${u.name}` });
  // a group only contains groups with a higher number: nesting, never a cycle
  groups.forEach((g, i) => {
    for (const child of rng.subset(groups.slice(i + 1), 0.4)) memberships.push({ group: g.name, member: `group:${child.name}` });
  });
  const filters: DataFilter[] = [];
  for (let i = rng.int(0, 3); i > 0 && tables.length > 0; i--) {
    const t = rng.pick(tables);
    const predicate = randomPredicate(rng, t.columns);
    const shape = rng.int(0, 2);
    const cols = rng.subset(t.columns.map((c) => c.name), 0.5);
    filters.push({
      name: `f${i}`,
      catalog: t.catalog,
      database: t.database,
      table: t.name,
      rowFilter: predicate === null ? null : 'generated',
      predicate,
      ...(shape === 1 ? { columns: cols.length > 0 ? cols : [t.columns[0]!.name] } : shape === 2 ? { excludedColumns: cols } : {}),
    });
  }
  const principals: PrincipalRef[] = [...users.map((u): PrincipalRef => `user:${u.name}`), ...groups.map((g): PrincipalRef => `group:${g.name}`)];
  const grants: Grant[] = [];
  for (let i = 0, n = rng.int(2, 12); i < n; i++) {
    const resource = randomGrantResource(rng, catalogs, databases, tables, filters, tagKeys);
    if (resource === null) continue;
    const permissions = nonEmptySubset(rng, resource.kind === 'tag' || resource.kind === 'catalog' || resource.kind === 'database' ? weighted(rng) : GRANTABLE_ON[resource.kind], 0.5);
    const notAfter = randomNotAfter(rng);
    grants.push({
      id: `g-${String(i).padStart(2, '0')}`,
      principal: rng.chance(0.05) ? 'user:ghost' : rng.pick(principals),
      resource,
      permissions,
      grantable: rng.subset(permissions, 0.3),
      ...(notAfter === undefined ? {} : { notAfter }),
    });
  }
  const guardrails: Guardrail[] = [];
  for (let i = rng.int(0, 3); i > 0; i--) {
    const who = rng.subset(principals, 0.3);
    const except = rng.subset(principals, 0.2);
    const catalog = rng.chance(0.3) ? rng.pick(catalogs).name : undefined;
    guardrails.push({
      name: `gr${i}`,
      ...(rng.chance(0.5) && who.length > 0 ? { principals: who } : {}),
      ...(except.length > 0 ? { except } : {}),
      actions: nonEmptySubset(rng, ['SELECT', 'SELECT', 'DESCRIBE', 'INSERT', 'ALTER', 'CREATE_TABLE'] as Permission[], 0.35).filter((a, j, all) => all.indexOf(a) === j),
      ...(catalog === undefined ? {} : { catalog }),
      resources: randomExpression(rng, tagKeys, 2),
      ...(rng.chance(0.7) ? { liftable: true } : rng.chance(0.3) ? { liftable: false } : {}),
    });
  }
  // lifting grants: mostly time-bound and live, so lifts are exercised, sometimes not (they must then lift nothing)
  const liftNames = [...guardrails.map((g) => g.name), 'no-such-guardrail'];
  const lifted = grants.map((g): Grant => {
    if (guardrails.length === 0 || !rng.chance(0.5)) return g;
    const names = nonEmptySubset(rng, liftNames, 0.7);
    const notAfter = g.notAfter ?? (rng.chance(0.85) ? new Date(NOW + rng.int(1, 10) * 3_600_000).toISOString() : undefined);
    return { ...g, liftsGuardrails: names, ...(notAfter === undefined ? {} : { notAfter }) };
  });
  // a just-in-time style grant: broad, time-bound, lifting most guardrails (what the access service creates)
  if (guardrails.length > 0 && rng.chance(0.6)) {
    const gr = rng.pick(guardrails);
    lifted.push({
      id: 'jit-1',
      principal: rng.pick(principals),
      resource: rng.chance(0.5) ? { kind: 'catalog', catalog: gr.catalog ?? rng.pick(catalogs).name } : (randomGrantResource(rng, catalogs, databases, tables, filters, tagKeys) ?? { kind: 'catalog', catalog: rng.pick(catalogs).name }),
      permissions: rng.chance(0.7) ? ['SELECT', 'DESCRIBE'] : [...PERMISSIONS],
      grantable: [],
      notAfter: new Date(NOW + (rng.chance(0.8) ? 1 : -1) * rng.int(1, 10) * 3_600_000).toISOString(),
      liftsGuardrails: nonEmptySubset(rng, liftNames, 0.8),
    });
  }
  return { catalogs, databases, tables, users, groups, memberships, idpMappings: [], tagKeys, tagAssignments, filters, grants: lifted, guardrails };
}

/** SELECT and DESCRIBE are what most grants carry; the rest still show up. */
function weighted(rng: Rng): Permission[] {
  return rng.chance(0.6) ? ['SELECT', 'DESCRIBE'] : [...PERMISSIONS];
}

function randomGrantResource(
  rng: Rng,
  catalogs: readonly Catalog[],
  databases: readonly Database[],
  tables: readonly Table[],
  filters: readonly DataFilter[],
  tagKeys: readonly TagKey[],
): GrantResource | null {
  switch (rng.int(0, 6)) {
    case 0:
      return { kind: 'catalog', catalog: rng.pick(catalogs).name };
    case 1: {
      const d = rng.pick(databases);
      return { kind: 'database', catalog: d.catalog, database: d.name };
    }
    case 2: {
      if (tables.length === 0) return null;
      const t = rng.pick(tables);
      return { kind: 'table', catalog: t.catalog, database: t.database, table: t.name };
    }
    case 3: {
      if (tables.length === 0) return null;
      const t = rng.pick(tables);
      const cols = rng.subset(t.columns.map((c) => c.name), 0.5);
      return rng.chance(0.5)
        ? { kind: 'columns', catalog: t.catalog, database: t.database, table: t.name, columns: cols.length > 0 ? cols : [t.columns[0]!.name] }
        : { kind: 'columns', catalog: t.catalog, database: t.database, table: t.name, excludedColumns: cols };
    }
    case 4: {
      if (filters.length === 0) return null;
      const f = rng.pick(filters);
      return { kind: 'filter', catalog: f.catalog, database: f.database, table: f.table, filter: f.name };
    }
    default:
      return { kind: 'tag', catalog: rng.pick(catalogs).name, expression: randomExpression(rng, tagKeys, 2) };
  }
}

/** Every catalog, database, table and column of the world, plus a few that do not exist. */
export function resourcesOf(world: PolicyWorld): ResourceRef[] {
  const out: ResourceRef[] = [
    ...world.catalogs.map((c): ResourceRef => ({ level: 'catalog', catalog: c.name })),
    ...world.databases.map((d): ResourceRef => ({ level: 'database', catalog: d.catalog, database: d.name })),
  ];
  for (const t of world.tables) {
    out.push({ level: 'table', catalog: t.catalog, database: t.database, table: t.name });
    for (const c of t.columns) out.push({ level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: c.name });
  }
  out.push({ level: 'catalog', catalog: 'nope' }, { level: 'table', catalog: 'lake', database: 'claims', table: 'nope' });
  out.push({ level: 'column', catalog: 'lake', database: 'claims', table: 'members', column: 'nope' });
  return out;
}

export function principalsOf(world: PolicyWorld): PrincipalRef[] {
  return [...world.users.map((u): PrincipalRef => `user:${u.name}`), ...world.groups.map((g): PrincipalRef => `group:${g.name}`), 'user:ghost'];
}

/** Random requests against a world, biased towards tables and SELECT. */
export function randomRequests(world: PolicyWorld, rng: Rng, n: number): AuthorizeRequest[] {
  const resources = resourcesOf(world);
  const principals = principalsOf(world);
  const tables = resources.filter((r) => r.level === 'table');
  // holders of lifting grants are asked about more often, so lifts are exercised
  const lifters = world.grants.filter((g) => (g.liftsGuardrails ?? []).length > 0).map((g) => g.principal);
  return Array.from({ length: n }, (): AuthorizeRequest => ({
    principal: lifters.length > 0 && rng.chance(0.4) ? rng.pick(lifters) : rng.pick(principals),
    action: rng.chance(0.4) ? 'SELECT' : rng.pick(PERMISSIONS),
    resource: rng.chance(0.4) && tables.length > 0 ? rng.pick(tables) : rng.pick(resources),
    now: NOW,
  }));
}

/** fast-check: a seed, mapped to a small world (the seed is what a failure prints). */
export const arbWorldSeed = (): fc.Arbitrary<number> => fc.noShrink(fc.integer({ min: 0, max: 0x7fffffff }));

export const arbWorld = (): fc.Arbitrary<PolicyWorld> => arbWorldSeed().map(randomWorld);

// ---------------------------------------------------------------- the large world

export interface LargeWorldOptions {
  readonly tables: number;
  readonly columnsPerTable: number;
  readonly principals: number;
  readonly tagGrants: number;
  readonly guardrails: number;
  readonly seed: number;
}

const LARGE_KEYS: readonly TagKey[] = [
  { key: 'domain', values: Array.from({ length: 20 }, (_, i) => `d${i}`) },
  { key: 'confidentiality', values: ['public', 'internal', 'confidential', 'restricted'] },
  { key: 'pii', values: ['true', 'false'] },
  { key: 'region', values: ['eu', 'us', 'apac', 'latam', 'mea', 'global'] },
  { key: 'retention', values: ['30d', '90d', '1y', '7y', 'forever'] },
  { key: 'owner_team', values: Array.from({ length: 30 }, (_, i) => `team${i}`) },
  { key: 'quality', values: ['bronze', 'silver', 'gold'] },
  { key: 'cost_center', values: Array.from({ length: 50 }, (_, i) => `cc${i}`) },
];

/**
 * The benchmark world: 4 catalogs, 100 tables per database, tags on databases
 * (domain, confidentiality, owner), overrides on ~30% of tables and ~10% of
 * columns, a fifth of the principals are groups (nested up to 3 deep), and
 * grants of every kind with tag grants dominating, as in a tag-governed lake.
 */
export function generateLargeWorld(opts: LargeWorldOptions): PolicyWorld {
  const rng = createRng(opts.seed);
  const catalogs: Catalog[] = ['lake', 'warehouse', 'acme-prod', 'sandbox'].map((name) => ({ name }));
  const nDbs = Math.max(1, Math.ceil(opts.tables / 100));
  const databases: Database[] = Array.from({ length: nDbs }, (_, i) => ({ catalog: (catalogs[i % catalogs.length] as Catalog).name, name: `db${i}` }));
  const columnNames = Array.from({ length: opts.columnsPerTable }, (_, i) => (i === 0 ? 'id' : i === 1 ? 'region' : `c${i}`));
  const columns: Column[] = columnNames.map((name, ordinal) => ({ name, type: ordinal === 0 ? 'BIGINT' : 'VARCHAR', ordinal }));
  const tables: Table[] = Array.from({ length: opts.tables }, (_, i) => {
    const d = databases[i % nDbs] as Database;
    return { catalog: d.catalog, database: d.name, name: `t${i}`, columns, source: { kind: 'virtual' } };
  });
  const val = (k: number): string => rng.pick((LARGE_KEYS[k] as TagKey).values);
  const tagAssignments: TagAssignment[] = [];
  for (const d of databases) {
    const resource = { level: 'database', catalog: d.catalog, database: d.name } as const;
    tagAssignments.push({ resource, key: 'domain', value: val(0) }, { resource, key: 'confidentiality', value: val(1) }, { resource, key: 'owner_team', value: val(5) });
    if (rng.chance(0.5)) tagAssignments.push({ resource, key: 'region', value: val(3) });
  }
  for (const t of tables) {
    const resource = { level: 'table', catalog: t.catalog, database: t.database, table: t.name } as const;
    if (rng.chance(0.3)) tagAssignments.push({ resource, key: 'confidentiality', value: val(1) });
    if (rng.chance(0.2)) tagAssignments.push({ resource, key: 'retention', value: val(4) });
    if (rng.chance(0.1)) tagAssignments.push({ resource, key: 'quality', value: val(6) });
    for (const c of columns) {
      if (!rng.chance(0.1)) continue;
      const col = { level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: c.name } as const;
      tagAssignments.push(rng.chance(0.8) ? { resource: col, key: 'pii', value: 'true' } : { resource: col, key: 'confidentiality', value: val(1) });
    }
  }
  const nGroups = Math.max(1, Math.floor(opts.principals / 5));
  const nUsers = Math.max(1, opts.principals - nGroups);
  const users: User[] = Array.from({ length: nUsers }, (_, i) => ({ name: `user${i}` }));
  const groups: Group[] = Array.from({ length: nGroups }, (_, i) => ({ name: `group${i}` }));
  const memberships: Membership[] = [];
  for (const u of users) {
    for (let k = rng.int(1, 4); k > 0; k--) memberships.push({ group: rng.pick(groups).name, member: `user:${u.name}` });
  }
  for (let i = 0; i < nGroups; i++) {
    // nesting only towards higher numbers keeps the graph acyclic; depth stays small because few groups nest
    if (i + 1 < nGroups && rng.chance(0.2)) memberships.push({ group: `group${i}`, member: `group:group${rng.int(i + 1, Math.min(nGroups - 1, i + 20))}` });
  }
  const uniqueMemberships = [...new Map(memberships.map((m) => [`${m.group}<${m.member}`, m])).values()];
  const principal = (): PrincipalRef => (rng.chance(0.8) ? `group:${rng.pick(groups).name}` : `user:${rng.pick(users).name}`);
  const grants: Grant[] = [];
  let gid = 0;
  const add = (resource: GrantResource, permissions: Permission[], notAfter?: string): void => {
    grants.push({ id: `g${String(gid++).padStart(6, '0')}`, principal: principal(), resource, permissions, grantable: rng.chance(0.1) ? permissions : [], ...(notAfter === undefined ? {} : { notAfter }) });
  };
  for (let i = 0; i < opts.tagGrants; i++) {
    const expr: [string, string[]][] = [['domain', [val(0)]]];
    if (rng.chance(0.6)) expr.push(['confidentiality', rng.subset((LARGE_KEYS[1] as TagKey).values, 0.5).concat(['public'])]);
    if (rng.chance(0.2)) expr.push(['region', [val(3), val(3)]]);
    const perms: Permission[] = rng.chance(0.8) ? ['SELECT', 'DESCRIBE'] : ['SELECT', 'INSERT', 'DESCRIBE'];
    const notAfter = rng.chance(0.05) ? new Date(NOW + rng.int(-100, 100) * 3_600_000).toISOString() : undefined;
    add({ kind: 'tag', catalog: rng.pick(catalogs).name, expression: Object.fromEntries(expr.map(([k, v]) => [k, [...new Set(v)]])) }, perms, notAfter);
  }
  const pickTable = (): Table => rng.pick(tables);
  for (let i = 0; i < Math.ceil(opts.tables / 50); i++) {
    const t = pickTable();
    add({ kind: 'table', catalog: t.catalog, database: t.database, table: t.name }, rng.chance(0.7) ? ['SELECT'] : ['SELECT', 'INSERT', 'DELETE']);
  }
  for (let i = 0; i < Math.ceil(nDbs / 2); i++) {
    const d = rng.pick(databases);
    add({ kind: 'database', catalog: d.catalog, database: d.name }, ['DESCRIBE', 'SELECT']);
  }
  add({ kind: 'catalog', catalog: 'sandbox' }, [...PERMISSIONS]);
  for (let i = 0; i < Math.ceil(opts.tables / 200); i++) {
    const t = pickTable();
    add({ kind: 'columns', catalog: t.catalog, database: t.database, table: t.name, columns: columnNames.slice(0, 3) }, ['SELECT']);
  }
  const filters: DataFilter[] = [];
  for (let i = 0; i < Math.ceil(opts.tables / 300); i++) {
    const t = pickTable();
    const region = rng.pick(['East', 'West', 'North']);
    filters.push({
      name: `rf${i}`,
      catalog: t.catalog,
      database: t.database,
      table: t.name,
      rowFilter: `region = '${region}'`,
      predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'region' }, right: { k: 'lit', value: region } },
      ...(rng.chance(0.5) ? { excludedColumns: [columnNames[columnNames.length - 1] as string] } : {}),
    });
    add({ kind: 'filter', catalog: t.catalog, database: t.database, table: t.name, filter: `rf${i}` }, ['SELECT']);
  }
  const guardrails: Guardrail[] = [];
  for (let i = 0; i < opts.guardrails; i++) {
    const kind = i % 5;
    const resources: TagExpression =
      kind === 0 ? { pii: ['true'] } : kind === 1 ? { confidentiality: ['restricted'] } : kind === 2 ? { region: [val(3)], domain: [val(0)] } : kind === 3 ? { retention: ['forever'] } : { owner_team: [val(5)], confidentiality: ['confidential'] };
    guardrails.push({
      name: `guard${String(i).padStart(2, '0')}`,
      ...(rng.chance(0.5) ? { principals: [principal(), principal()] } : {}),
      except: [`group:${rng.pick(groups).name}`],
      actions: kind === 3 ? ['DELETE', 'DROP'] : rng.chance(0.2) ? ['SELECT', 'DESCRIBE'] : ['SELECT'],
      ...(rng.chance(0.3) ? { catalog: rng.pick(catalogs).name } : {}),
      resources,
    });
  }
  return {
    catalogs,
    databases,
    tables,
    users,
    groups,
    memberships: uniqueMemberships,
    idpMappings: [],
    tagKeys: LARGE_KEYS,
    tagAssignments,
    filters,
    grants,
    guardrails,
  };
}

// ---------------------------------------------------------------- comparing answers

const sql = (p: Predicate | null | undefined): string | null | undefined => (p === undefined ? undefined : p === null ? null : toSql(p));

/** A decision as plain JSON with predicates printed, so two evaluators' answers compare with deepStrictEqual. */
export function normalizeDecision(d: Decision): unknown {
  return JSON.parse(
    JSON.stringify({
      ...d,
      columns: d.columns?.map((c) => ({ name: c.name, rowFilter: sql(c.rowFilter) })),
      rowFilter: sql(d.rowFilter),
    }),
  );
}

export function normalizeEffective(list: readonly EffectivePermission[]): unknown {
  return JSON.parse(
    JSON.stringify(list.map((e) => ({ ...e, columns: e.columns?.map((c) => ({ name: c.name, rowFilter: sql(c.rowFilter) })), rowFilter: sql(e.rowFilter) }))),
  );
}

export function normalizeHolders(list: readonly AccessHolder[]): unknown {
  return list.map((h) => ({ principal: h.principal, decision: normalizeDecision(h.decision) }));
}
