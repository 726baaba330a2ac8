/**
 * Access experiments: take permissions away on purpose, for a bounded time,
 * and see what breaks (docs/experiments.md). The template, the workspace's
 * experiment policy and the run record, as plain data. Pure.
 */
import type { Permission, PrincipalRef, TagExpression } from '../policy/model.js';

/**
 * What an experiment denies on: a catalog, a database, a table, some columns
 * of a table, or every resource of a catalog whose tags match an expression.
 */
export type ExperimentScope =
  | { readonly kind: 'catalog'; readonly catalog: string }
  | { readonly kind: 'database'; readonly catalog: string; readonly database: string }
  | { readonly kind: 'table'; readonly catalog: string; readonly database: string; readonly table: string }
  | { readonly kind: 'columns'; readonly catalog: string; readonly database: string; readonly table: string; readonly columns: readonly string[] }
  | { readonly kind: 'tags'; readonly catalog: string; readonly expression: TagExpression };

export interface ExperimentTemplate {
  readonly name: string;
  readonly description?: string;
  /** Users (service principals are users) and groups whose access is taken away. */
  readonly targets: readonly PrincipalRef[];
  readonly actions: readonly Permission[];
  readonly scope: ExperimentScope;
  /** Percent of the scope's tables denied, 1..100 (experiment-share.ts); 100 denies the whole scope. */
  readonly share: number;
  readonly durationSeconds: number;
  /** Security-lake monitors; any of them firing ends the experiment early. */
  readonly stopConditions: readonly string[];
  /** Principals the experiment may never target, on top of the workspace's. */
  readonly excluded: readonly PrincipalRef[];
  /** Starts without approval, but only where the workspace is not production. */
  readonly selfService: boolean;
  readonly approverGroups: readonly string[];
  readonly minApprovals: number;
}

/** The workspace's rules for every experiment. */
export interface ExperimentPolicy {
  readonly maxDurationSeconds: number;
  /** Principals no experiment may target (privacy officers, break-glass users). */
  readonly excluded: readonly PrincipalRef[];
  /** Production workspaces ignore `selfService`: every start needs approval. */
  readonly production: boolean;
}

export const DEFAULT_EXPERIMENT_POLICY: ExperimentPolicy = Object.freeze({ maxDurationSeconds: 3600, excluded: [], production: true });

export const EXPERIMENT_STATUSES = ['pending', 'running', 'ended', 'stopped', 'rejected'] as const;
export type ExperimentStatus = (typeof EXPERIMENT_STATUSES)[number];

export interface ExperimentApproval {
  readonly approver: PrincipalRef;
  readonly decision: 'approve' | 'reject';
  readonly at: string;
}

/** One run of a template. `spec` is the template as it was when the run was created. */
export interface Experiment {
  readonly id: string;
  readonly template: string;
  readonly spec: ExperimentTemplate;
  /** The workspace's excluded principals when the run was created: never denied by it. */
  readonly excluded: readonly PrincipalRef[];
  readonly status: ExperimentStatus;
  readonly durationSeconds: number;
  readonly startedBy: PrincipalRef;
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly endsAt?: string;
  readonly endedAt?: string;
  readonly endReason?: string;
  readonly approvals: readonly ExperimentApproval[];
}

/** Names of what an experiment puts into the policy world; one set per run, so ends never touch another run's. */
export const EXPERIMENT_GUARDRAIL_PREFIX = 'experiment-';

export function guardrailNameOf(id: string): string {
  return `${EXPERIMENT_GUARDRAIL_PREFIX}${id}`;
}

/** `ex-0a1b2c3d4e5f` → `exp_0a1b2c3d4e5f`: the tag key that marks the run's database, table or columns. */
export function tagKeyOf(id: string): string {
  return `exp_${id.replace(/^ex-/, '').replace(/[^a-z0-9_]/g, '_')}`;
}

export function experimentIdOfGuardrail(name: string): string | null {
  return name.startsWith(EXPERIMENT_GUARDRAIL_PREFIX) ? name.slice(EXPERIMENT_GUARDRAIL_PREFIX.length) : null;
}
