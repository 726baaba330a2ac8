/**
 * The vocabulary of warehouse sync: targets, the privilege items that make up
 * a desired or actual warehouse state, plans and their statements.
 *
 * A warehouse state is a set of items, each with a stable text key. The
 * desired state comes from the policy engine (desired-state.ts), the actual one
 * from pg_catalog (actual-state.ts); the plan is their set difference, ordered
 * so that every prefix of it is safe to have applied (diff.ts). This module
 * imports nothing but types.
 */
import type { Predicate } from '../policy/predicate.js';

/** Privileges a managed role can hold on a table. Only the first three are ever granted; the rest are drift. */
export type TablePrivilege = 'SELECT' | 'INSERT' | 'DELETE' | 'UPDATE' | 'TRUNCATE' | 'REFERENCES' | 'TRIGGER' | 'MAINTAIN';
export const GRANTED_TABLE_PRIVILEGES: readonly TablePrivilege[] = ['SELECT', 'INSERT', 'DELETE'];

export type PolicyCommand = 'SELECT' | 'INSERT' | 'DELETE';

/** One fact about the warehouse. Identifiers are raw (unquoted) names. */
export type Item =
  /** A Steward-owned NOLOGIN role exists. */
  | { readonly k: 'role'; readonly role: string }
  /** `member` has the privileges of `role`. */
  | { readonly k: 'member'; readonly role: string; readonly member: string }
  | { readonly k: 'usage'; readonly role: string; readonly schema: string }
  /** A table-level privilege (all columns). */
  | { readonly k: 'table'; readonly role: string; readonly schema: string; readonly table: string; readonly priv: TablePrivilege }
  /** Column-level privileges of one role on one table, as one set (one GRANT/REVOKE statement). */
  | { readonly k: 'columns'; readonly role: string; readonly schema: string; readonly table: string; readonly priv: TablePrivilege; readonly columns: readonly string[] }
  | { readonly k: 'rls'; readonly schema: string; readonly table: string }
  | {
      readonly k: 'policy';
      readonly schema: string;
      readonly table: string;
      readonly name: string;
      readonly role: string;
      readonly cmd: PolicyCommand;
      /** SQL of USING (SELECT, DELETE) or WITH CHECK (INSERT), printed by `toSql` from a predicate tree. */
      readonly expr: string;
      /** The tree `expr` was printed from (desired items only), for other dialects. */
      readonly pred?: Predicate;
      /** `AS RESTRICTIVE` (narrows every permissive policy) rather than PERMISSIVE: the session-tag rule of an embed role. */
      readonly restrictive?: true;
    };

export type ItemKind = Item['k'];

/** Where a warehouse table comes from in the catalog. */
export interface MappedTable {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  readonly schema: string;
  readonly name: string;
}

/** How users reach the warehouse and how Steward names what it owns. */
export interface TargetSpec {
  readonly name: string;
  /** The Steward catalog this target mirrors. */
  readonly catalog: string;
  /** Prefix of every role and policy Steward creates (`stw_`). Roles are cluster-wide: one prefix per Steward target. */
  readonly rolePrefix: string;
  /** Login role of a Steward user: `{user}` is replaced by the user name. */
  readonly userRoleTemplate: string;
  /** Per-user overrides of the template. */
  readonly userRoles: Readonly<Record<string, string>>;
  /** Catalog database → warehouse schema, where not 1:1. */
  readonly schemaMap: Readonly<Record<string, string>>;
  /** `database.table` → `schema.table` in the warehouse, where not 1:1. */
  readonly tableMap: Readonly<Record<string, string>>;
  /** What to do with privileges nobody asked Steward for. */
  readonly drift: 'revoke' | 'report';
  /** Where the warehouse runs, for residency guardrails (docs/residency.md). */
  readonly region?: string;
  /**
   * The existing role an embedding application connects as (docs/embedding.md): Steward manages its
   * access to the catalog's tables, which is exactly what the dashboards' datasets read, narrowed per
   * connection by the session tags (`steward.tag.<key>` settings). Outside the role prefix.
   */
  readonly embedRole?: string;
}

export type WarningCode =
  | 'TABLE_MISSING'
  | 'LOGIN_ROLE_MISSING'
  /** A user's login role lies in Steward's role prefix (the name space of the roles Steward creates). */
  | 'LOGIN_ROLE_RESERVED'
  | 'CELL_LEVEL_NARROWED'
  | 'PERSONAL_ROLE'
  | 'NAME_SHORTENED'
  /** A dashboard dataset the embed role gets nothing from (its `runAs` may not read the table, or the role cannot be used). */
  | 'EMBED_SKIPPED'
  /** Something the dialect cannot express, so it is not in the script (Redshift: session-tag rules). */
  | 'NOT_EXPRESSIBLE';

export interface SyncWarning {
  readonly code: WarningCode;
  readonly message: string;
}

/** A privilege nobody asked Steward for: a hand-made grant. */
export interface DriftItem {
  readonly item: Item;
  readonly key: string;
  /** What the plan does about it: revoke (policy `revoke`, managed scope) or only report. */
  readonly action: 'revoke' | 'report';
  readonly message: string;
}

/** One statement of a plan, with what it changes (for the ledger and the summary). */
export interface Step {
  readonly op: 'grant' | 'revoke';
  readonly item: Item;
  readonly key: string;
  readonly sql: string;
}

export interface PlanSummary {
  readonly statements: number;
  readonly grants: number;
  readonly revokes: number;
  readonly byKind: Readonly<Record<string, { grant: number; revoke: number }>>;
  readonly drift: number;
  readonly warnings: number;
}

export interface Plan {
  readonly target: string;
  readonly dialect: 'postgres' | 'redshift';
  readonly scope: 'full' | 'tables';
  readonly steps: readonly Step[];
  readonly drift: readonly DriftItem[];
  readonly warnings: readonly SyncWarning[];
  readonly summary: PlanSummary;
}
