/**
 * Names in the warehouse: how Steward principals become role names, how
 * policies are named, and the one identifier-quoting function every emitter
 * uses. User text never reaches SQL except through `qi` (identifiers) and the
 * predicate printer's literal quoting.
 */
import { createHash } from 'node:crypto';
import { quoteIdent } from '../policy/predicate.js';
import type { Item, MappedTable, TargetSpec } from './sync-types.js';

/** PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1). */
export const MAX_IDENT_BYTES = 63;

/** Quotes one identifier. The only way a name enters generated SQL. */
export function qi(name: string): string {
  // the common name has no quote to double: skip the replace (a plan quotes ~3 names per statement)
  return name.includes('"') ? quoteIdent(name) : `"${name}"`;
}

/** `"schema"."table"`. */
export const qname = (schema: string, table: string): string => `${qi(schema)}.${qi(table)}`;

export function shortHash(text: string, length = 10): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Keeps a name within 63 bytes: long names keep a readable head and end in a hash of the whole. */
export function fitIdent(name: string): string {
  if (Buffer.byteLength(name) <= MAX_IDENT_BYTES) return name;
  return `${name.slice(0, MAX_IDENT_BYTES - 11)}~${shortHash(name)}`;
}

/** The Steward-owned role of a group: `stw_analysts`. */
export function groupRole(prefix: string, group: string): string {
  return fitIdent(`${prefix}${group}`);
}

/**
 * The personal role of a user whose access the group roles cannot express
 * exactly: `stw_user:alice`. `:` never occurs in group names, so the two
 * namespaces cannot collide.
 */
export function personalRole(prefix: string, user: string): string {
  return fitIdent(`${prefix}user:${user}`);
}

/** The existing login role a Steward user maps to. */
export function loginRole(target: Pick<TargetSpec, 'userRoleTemplate' | 'userRoles'>, user: string): string {
  return target.userRoles[user] ?? fitIdent(target.userRoleTemplate.replaceAll('{user}', user));
}

/** Row-security policy names are content-addressed: a changed predicate is a new policy. */
export function policyName(prefix: string, role: string, cmd: string, expr: string): string {
  return fitIdent(`${prefix}${cmd.toLowerCase()}_${shortHash(`${role}\u0000${cmd}\u0000${expr}`, 12)}`);
}

/** Where a catalog table lives in the warehouse (1:1 unless mapped). */
export function mapTable(target: Pick<TargetSpec, 'schemaMap' | 'tableMap'>, catalog: string, database: string, table: string): MappedTable {
  const explicit = target.tableMap[`${database}.${table}`];
  if (explicit !== undefined) {
    const dot = explicit.indexOf('.');
    return { catalog, database, table, schema: explicit.slice(0, dot), name: explicit.slice(dot + 1) };
  }
  return { catalog, database, table, schema: target.schemaMap[database] ?? database, name: table };
}

export function schemaOf(target: Pick<TargetSpec, 'schemaMap'>, database: string): string {
  return target.schemaMap[database] ?? database;
}

export const tableKey = (schema: string, table: string): string => `${schema}\u0001${table}`;

/** The stable key of an item; sets of items are compared by it. */
export function itemKey(it: Item): string {
  switch (it.k) {
    case 'role':
      return `role|${it.role}`;
    case 'member':
      return `member|${it.role}|${it.member}`;
    case 'usage':
      return `usage|${it.role}|${it.schema}`;
    case 'table':
      // joined, not a template: one flat string instead of a tree of partial strings (a plan keeps 100k of them)
      return ['table|', it.role, '|', it.schema, '|', it.table, '|', it.priv].join('');
    case 'columns':
      return `columns|${it.role}|${it.schema}|${it.table}|${it.priv}|${it.columns.join(',')}`;
    case 'rls':
      return `rls|${it.schema}|${it.table}`;
    case 'policy':
      // a restrictive policy re-created as permissive under the same name is another item (drift)
      return `policy|${it.schema}|${it.table}|${it.name}|${it.role}|${it.cmd}${it.restrictive === true ? '|restrictive' : ''}`;
    default: {
      const never: never = it;
      return never;
    }
  }
}

/** The table an item is about, if any. */
export function itemTable(it: Item): string | null {
  switch (it.k) {
    case 'table':
    case 'columns':
    case 'rls':
    case 'policy':
      return tableKey(it.schema, it.table);
    default:
      return null;
  }
}

/** The role an item grants something to, if any. */
export function itemRole(it: Item): string | null {
  return it.k === 'rls' ? null : it.role;
}
