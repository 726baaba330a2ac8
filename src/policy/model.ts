/**
 * The policy model: everything the decision engine reasons about, as plain
 * immutable data. Stores load it, policy-as-code files describe it, the engine
 * indexes it. This module imports nothing (the policy core has no I/O).
 *
 * Names of catalogs, databases, tables, columns, tag keys, users and groups are
 * lowercase identifiers (see `NAME_PATTERN`); the shells lowercase input before
 * it reaches the core.
 */
import type { Predicate } from './predicate.js';

/**
 * Names no user may choose: the properties every plain JavaScript object
 * inherits (`__proto__`, `constructor`, `hasOwnProperty`, …), as written and
 * lowercased, plus `prototype`. A name is a key somewhere (a YAML mapping, a
 * JSON body, a result row), and one of these as a key reaches the prototype
 * instead of the data; refusing them in the name patterns below closes that
 * path in every validator that uses the patterns, at once.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(
  [...Object.getOwnPropertyNames(Object.prototype), 'prototype'].flatMap((n) => [n, n.toLowerCase()]),
);

/** Whether `name` is one of the `RESERVED_NAMES` (exactly or in any case). */
export function isReservedName(name: string): boolean {
  return RESERVED_NAMES.has(name) || RESERVED_NAMES.has(name.toLowerCase());
}

const notReserved = `(?!(?:${[...RESERVED_NAMES].join('|')})$)`;
const namePattern = (body: string): RegExp => new RegExp(`^${notReserved}${body}$`);

export const NAME_PATTERN = namePattern('[a-z_][a-z0-9_]{0,127}');
/** Catalogs name accounts or tenants, so dashes are allowed too (`acme-prod`). */
export const CATALOG_NAME_PATTERN = namePattern('[a-z_][a-z0-9_-]{0,127}');
/** Principals and objects that users name freely (filters, guardrails) may use dashes and dots. */
export const LABEL_PATTERN = namePattern('[a-z0-9_][a-z0-9_.-]{0,127}');
export const TAG_VALUE_PATTERN = namePattern('[A-Za-z0-9_][A-Za-z0-9_.:/@+-]{0,255}');
/** `user:NAME` or `group:NAME`, the name a `LABEL_PATTERN`. */
export const PRINCIPAL_PATTERN = new RegExp(`^(?:user|group):${notReserved}[a-z0-9_][a-z0-9_.-]{0,127}$`);
export const MAX_TAG_VALUES = 1000;

// ---------------------------------------------------------------- permissions

export const PERMISSIONS = ['DESCRIBE', 'SELECT', 'INSERT', 'DELETE', 'ALTER', 'DROP', 'CREATE_TABLE'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export type ResourceLevel = 'catalog' | 'database' | 'table' | 'column';

/**
 * What `authorize` can be asked at each level. Anything else is denied with
 * NOT_APPLICABLE (there is no SELECT on a database, only on its tables).
 */
export const ACTIONS_AT: Readonly<Record<ResourceLevel, readonly Permission[]>> = {
  catalog: ['DESCRIBE'],
  database: ['DESCRIBE', 'CREATE_TABLE', 'ALTER', 'DROP'],
  table: ['DESCRIBE', 'SELECT', 'INSERT', 'DELETE', 'ALTER', 'DROP'],
  column: ['SELECT'],
};

/**
 * What a grant may carry, by the kind of resource it names. Grants on
 * containers carry table permissions down to every table inside; tag grants
 * apply each permission where it is decidable and the tags match.
 */
export const GRANTABLE_ON: Readonly<Record<GrantResource['kind'], readonly Permission[]>> = {
  catalog: PERMISSIONS,
  database: PERMISSIONS,
  table: ['DESCRIBE', 'SELECT', 'INSERT', 'DELETE', 'ALTER', 'DROP'],
  columns: ['SELECT'],
  filter: ['SELECT'],
  tag: PERMISSIONS,
};

// ------------------------------------------------------------------- catalog

export interface Column {
  readonly name: string;
  /** The engine type as the source reports it (`VARCHAR`, `DECIMAL(12,2)`, `integer`). */
  readonly type: string;
  // INVARIANT: ordinals of a table's columns are 0..n-1 and columns are sorted by ordinal
  readonly ordinal: number;
}

export type TableSource =
  | { readonly kind: 'lake'; readonly format: 'parquet' | 'csv' | 'json'; readonly location: string; readonly hivePartitioning: boolean }
  | { readonly kind: 'postgres'; readonly schema: string; readonly table: string; readonly connection: string }
  | { readonly kind: 'virtual' };

export interface Table {
  readonly catalog: string;
  readonly database: string;
  readonly name: string;
  readonly columns: readonly Column[];
  readonly source: TableSource;
}

export interface Database {
  readonly catalog: string;
  readonly name: string;
  readonly description?: string;
}

export interface Catalog {
  readonly name: string;
  readonly description?: string;
}

// ---------------------------------------------------------------- principals

export interface User {
  readonly name: string;
  readonly displayName?: string;
}

export interface Group {
  readonly name: string;
  readonly description?: string;
}

/** `user:alice` or `group:analysts`. */
export type PrincipalRef = `user:${string}` | `group:${string}`;

export interface Membership {
  readonly group: string;
  readonly member: PrincipalRef;
}

/** Maps a group name as an identity provider sends it to a Steward group. */
export interface IdpGroupMapping {
  readonly provider: string;
  readonly externalGroup: string;
  readonly group: string;
}

// ----------------------------------------------------------------------- tags

export interface TagKey {
  readonly key: string;
  readonly values: readonly string[];
  readonly description?: string;
}

/** A resource that can carry tags: a database, a table or a column. */
export type TaggableRef =
  | { readonly level: 'database'; readonly catalog: string; readonly database: string }
  | { readonly level: 'table'; readonly catalog: string; readonly database: string; readonly table: string }
  | { readonly level: 'column'; readonly catalog: string; readonly database: string; readonly table: string; readonly column: string };

export interface TagAssignment {
  readonly resource: TaggableRef;
  readonly key: string;
  readonly value: string;
}

/**
 * A tag expression: every key must match (AND), and a key matches when the
 * resource's effective value for it is one of the listed values (OR).
 * `{ domain: ['claims'], confidentiality: ['public', 'internal'] }`.
 * An empty expression matches every resource.
 */
export type TagExpression = Readonly<Record<string, readonly string[]>>;

// --------------------------------------------------------------------- grants

export type GrantResource =
  | { readonly kind: 'catalog'; readonly catalog: string }
  | { readonly kind: 'database'; readonly catalog: string; readonly database: string }
  | { readonly kind: 'table'; readonly catalog: string; readonly database: string; readonly table: string }
  /** Exactly one of `columns` (include) or `excludedColumns` is set. */
  | {
      readonly kind: 'columns';
      readonly catalog: string;
      readonly database: string;
      readonly table: string;
      readonly columns?: readonly string[];
      readonly excludedColumns?: readonly string[];
    }
  /** SELECT through a named data filter of that table. */
  | { readonly kind: 'filter'; readonly catalog: string; readonly database: string; readonly table: string; readonly filter: string }
  /** Every database, table and column of the catalog whose effective tags match. */
  | { readonly kind: 'tag'; readonly catalog: string; readonly expression: TagExpression };

export interface Grant {
  /** Stable, unique; chosen by the author (policy files) or generated. */
  readonly id: string;
  readonly principal: PrincipalRef;
  readonly resource: GrantResource;
  readonly permissions: readonly Permission[];
  /** Subset of `permissions` that the holder may grant on. */
  readonly grantable: readonly Permission[];
  /** ISO-8601; the grant stops counting at this instant (time-bound access). */
  readonly notAfter?: string;
  /**
   * Names of guardrails this grant is exempt from. Only a live grant with a
   * `notAfter` lifts, and only guardrails marked `liftable`; the exemption
   * covers what this grant itself gives, nothing else (docs/policy.md).
   */
  readonly liftsGuardrails?: readonly string[];
  readonly description?: string;
}

/**
 * A named row/column restriction on one table. Granting SELECT through it gives
 * row-level (`rowFilter`), column-level (`columns`/`excludedColumns`) or
 * cell-level (both) access.
 */
export interface DataFilter {
  readonly name: string;
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  /** The predicate as the author wrote it; null means all rows. */
  readonly rowFilter: string | null;
  /** The parsed, validated predicate; null means all rows. Filled in by the shell (DuckDB's parser). */
  readonly predicate: Predicate | null;
  readonly columns?: readonly string[];
  readonly excludedColumns?: readonly string[];
}

// ----------------------------------------------------------------- guardrails

/**
 * An organization-wide deny rule. It applies to a principal when the principal
 * is in `principals` (everyone when omitted) and not in `except`. It denies
 * `actions` on every resource whose effective tags, or whose ancestors'
 * effective tags, match `resources` within `catalog` (all catalogs when omitted).
 */
export interface Guardrail {
  readonly name: string;
  readonly description?: string;
  readonly principals?: readonly PrincipalRef[];
  readonly except?: readonly PrincipalRef[];
  readonly actions: readonly Permission[];
  readonly catalog?: string;
  readonly resources: TagExpression;
  /**
   * Whether approved, time-bound grants may be exempted from this guardrail
   * (`Grant.liftsGuardrails`). Default false: no grant can ever exceed it.
   */
  readonly liftable?: boolean;
  /**
   * Makes this a residency guardrail (docs/residency.md): tables whose tags
   * (their own, their database's or a column's) match `resources` may live,
   * be synced and be served only in the listed regions. A residency guardrail
   * denies no action (`actions` is empty); it is checked where data lands.
   */
  readonly residency?: ResidencyRule;
}

export const RESIDENCY_MODES = ['enforce', 'report-only'] as const;
export type ResidencyMode = (typeof RESIDENCY_MODES)[number];

export interface ResidencyRule {
  /** Region patterns (`eu-*`, `eu-west-1`); `*` stands for any run of letters, digits and dashes. */
  readonly regions: readonly string[];
  /** `enforce` refuses a violation; `report-only` admits it and records it (detective before preventive). */
  readonly mode: ResidencyMode;
}

/** A region name: `eu-west-1`, `us-east-2`, `onprem-frankfurt`; lowercase. */
export const REGION_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** A region pattern: a region name in which `*` may stand for any run of letters, digits and dashes. */
export const REGION_GLOB_PATTERN = /^[a-z0-9*][a-z0-9*-]{0,62}$/;

// ---------------------------------------------------------------------- world

/** Everything the engine needs, as one snapshot. */
export interface PolicyWorld {
  readonly catalogs: readonly Catalog[];
  readonly databases: readonly Database[];
  readonly tables: readonly Table[];
  readonly users: readonly User[];
  readonly groups: readonly Group[];
  readonly memberships: readonly Membership[];
  readonly idpMappings: readonly IdpGroupMapping[];
  readonly tagKeys: readonly TagKey[];
  readonly tagAssignments: readonly TagAssignment[];
  readonly filters: readonly DataFilter[];
  readonly grants: readonly Grant[];
  readonly guardrails: readonly Guardrail[];
}

export const EMPTY_WORLD: PolicyWorld = Object.freeze({
  catalogs: [],
  databases: [],
  tables: [],
  users: [],
  groups: [],
  memberships: [],
  idpMappings: [],
  tagKeys: [],
  tagAssignments: [],
  filters: [],
  grants: [],
  guardrails: [],
});

// ------------------------------------------------------------------ resources

/** A resource a decision is about. */
export type ResourceRef =
  | { readonly level: 'catalog'; readonly catalog: string }
  | { readonly level: 'database'; readonly catalog: string; readonly database: string }
  | { readonly level: 'table'; readonly catalog: string; readonly database: string; readonly table: string }
  | { readonly level: 'column'; readonly catalog: string; readonly database: string; readonly table: string; readonly column: string };

/** The table a path names, by a linear scan: for code off the hot path (the engine has indexes). */
export function findTable(world: PolicyWorld, p: { readonly catalog: string; readonly database: string; readonly table: string }): Table | undefined {
  return world.tables.find((t) => t.catalog === p.catalog && t.database === p.database && t.name === p.table);
}

/** Whether the catalog, database, table or column a reference names exists in the world. */
export function resourceExists(world: PolicyWorld, r: ResourceRef): boolean {
  switch (r.level) {
    case 'catalog':
      return world.catalogs.some((c) => c.name === r.catalog);
    case 'database':
      return world.databases.some((d) => d.catalog === r.catalog && d.name === r.database);
    case 'table':
      return findTable(world, r) !== undefined;
    case 'column':
      return findTable(world, r)?.columns.some((c) => c.name === r.column) ?? false;
  }
}

export function resourceToString(r: ResourceRef | TaggableRef): string {
  switch (r.level) {
    case 'catalog':
      return r.catalog;
    case 'database':
      return `${r.catalog}.${r.database}`;
    case 'table':
      return `${r.catalog}.${r.database}.${r.table}`;
    case 'column':
      return `${r.catalog}.${r.database}.${r.table}.${r.column}`;
    default: {
      const never: never = r;
      return never;
    }
  }
}

/** Parses `catalog[.database[.table[.column]]]`; returns null when the shape is wrong. */
export function parseResource(text: string): ResourceRef | null {
  const parts = text.trim().toLowerCase().split('.');
  if (parts.some((p) => p.length === 0)) return null;
  const [catalog, database, table, column] = parts;
  if (catalog === undefined || parts.length > 4) return null;
  if (database === undefined) return { level: 'catalog', catalog };
  if (table === undefined) return { level: 'database', catalog, database };
  if (column === undefined) return { level: 'table', catalog, database, table };
  return { level: 'column', catalog, database, table, column };
}

export function principalRef(kind: 'user' | 'group', name: string): PrincipalRef {
  return `${kind}:${name}`;
}

/** Parses `user:alice`, `group:analysts`, or a bare name (a user). */
export function parsePrincipal(text: string): { kind: 'user' | 'group'; name: string } | null {
  const t = text.trim().toLowerCase();
  const m = /^(?:(user|group):)?(.+)$/.exec(t);
  if (!m || !m[2] || !LABEL_PATTERN.test(m[2])) return null;
  return { kind: (m[1] as 'user' | 'group' | undefined) ?? 'user', name: m[2] };
}
