/**
 * Clean rooms (docs/cleanrooms.md): collaborations where members analyse each
 * other's tables together without seeing each other's rows.
 *
 * A collaboration is one document: its members, the tables they configured
 * (their own catalog tables, only the columns they chose) with one analysis
 * rule each, and the query templates. The store keeps it with a version so
 * concurrent changes cannot lose one another (`cleanroom-store.ts`).
 */
import type { PrincipalRef } from '../policy/model.js';

export const MEMBER_ABILITIES = ['query', 'receive'] as const;
export type MemberAbility = (typeof MEMBER_ABILITIES)[number];

/** invited → active (accept) → left; a member never comes back under the same name. */
export type MemberStatus = 'invited' | 'active' | 'left';

export interface Member {
  /** The organisation's name in the collaboration, e.g. `reporting`. */
  readonly name: string;
  /** Who acts for it: a Steward group, or one principal acting for the organisation. */
  readonly principal: PrincipalRef;
  readonly abilities: readonly MemberAbility[];
  readonly status: MemberStatus;
  readonly invitedAt: string;
  readonly joinedAt?: string;
  readonly leftAt?: string;
}

export const AGGREGATE_FUNCTIONS = ['SUM', 'SUM_DISTINCT', 'COUNT', 'COUNT_DISTINCT', 'AVG'] as const;
export type AggregateFunction = (typeof AGGREGATE_FUNCTIONS)[number];

export const JOIN_OPERATORS = ['AND', 'OR'] as const;
export type JoinOperator = (typeof JOIN_OPERATORS)[number];

export interface AggregateColumn {
  readonly column: string;
  readonly functions: readonly AggregateFunction[];
}

/** "At least `minimum` distinct values of `column` in each output row." */
export interface OutputConstraint {
  readonly column: string;
  readonly minimum: number;
}

export interface AggregationRule {
  readonly type: 'aggregation';
  readonly aggregateColumns: readonly AggregateColumn[];
  readonly joinColumns: readonly string[];
  /** A query must join this table with a table of another member. */
  readonly joinRequired: boolean;
  readonly allowedJoinOperators: readonly JoinOperator[];
  /** May be selected, grouped by and filtered on. */
  readonly dimensionColumns: readonly string[];
  /** Lowercase DuckDB names from `SCALAR_FUNCTIONS` (`cleanroom-rules.ts`); none by default. */
  readonly scalarFunctions: readonly string[];
  readonly outputConstraints: readonly OutputConstraint[];
}

export interface ListRule {
  readonly type: 'list';
  readonly joinColumns: readonly string[];
  readonly allowedJoinOperators: readonly JoinOperator[];
  /** May be returned (and filtered on) for joined rows. */
  readonly listColumns: readonly string[];
  readonly scalarFunctions: readonly string[];
}

/** Only the named templates may read the table: listing a template is its owner's approval. */
export interface CustomRule {
  readonly type: 'custom';
  readonly templates: readonly string[];
}

export type AnalysisRule = AggregationRule | ListRule | CustomRule;

export interface ConfiguredTable {
  /** The name queries use inside the collaboration, e.g. `purchase`. */
  readonly name: string;
  /** The member that associated it (its owner). */
  readonly member: string;
  /** The catalog table, `catalog.database.table`. */
  readonly table: string;
  /** The columns allowed in the collaboration; the others do not exist inside it. */
  readonly columns: readonly string[];
  readonly rule?: AnalysisRule;
}

export interface TemplateParameter {
  readonly name: string;
  readonly type: 'string' | 'number';
}

/** A named query; its parameters are bound values, never SQL. */
export interface QueryTemplate {
  readonly name: string;
  readonly sql: string;
  readonly parameters: readonly TemplateParameter[];
  /** The member that wrote it. */
  readonly author: string;
  readonly createdAt: string;
}

/** Clamping bounds of one column, so one row moves a SUM by at most max(|min|, |max|). */
export interface Clamp {
  readonly table: string;
  readonly column: string;
  readonly min: number;
  readonly max: number;
}

/**
 * Differential privacy for aggregation queries: Laplace noise on SUM and COUNT,
 * `epsilonPerQuery` spent from the running member's `budget` by each query.
 */
export interface PrivacySettings {
  readonly budget: number;
  readonly epsilonPerQuery: number;
  readonly clamps: readonly Clamp[];
  /** Epsilon spent so far, by member name. */
  readonly spent: Readonly<Record<string, number>>;
}

export interface Collaboration {
  readonly name: string;
  readonly description: string;
  readonly status: 'active' | 'closed';
  /** The member that created it; it invites and closes. */
  readonly creator: string;
  readonly members: readonly Member[];
  readonly tables: readonly ConfiguredTable[];
  readonly templates: readonly QueryTemplate[];
  readonly createdAt: string;
  readonly closedAt?: string;
  /** Set when the collaboration turned differential privacy on. */
  readonly privacy?: PrivacySettings;
}

/** One entry of the query log every member can read. */
export interface RoomQueryLogEntry {
  readonly id: number;
  readonly at: string;
  readonly member: string;
  readonly runner: string;
  readonly sql: string;
  readonly template?: string;
  readonly outcome: 'allowed' | 'refused' | 'failed';
  /** The analysis rules the query was checked against, e.g. `purchase: aggregation`. */
  readonly rules: readonly string[];
  readonly rows: number;
  /** Output rows removed by output constraints. */
  readonly removed: number;
  readonly message: string;
}
