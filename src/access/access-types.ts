/**
 * Just-in-time access: the configuration (permission sets, eligibility and
 * approval policies, personas, notifications) and the request record, as
 * plain data. Everything in this file is pure; the shells in this folder load
 * it from and store it into `steward.access_*` tables.
 */
import type { Permission, PrincipalRef, ResourceRef, TagExpression } from '../policy/model.js';

/** A named bundle of privileges, optionally narrowed to a data filter of the requested table. */
export interface PermissionSet {
  readonly name: string;
  readonly description?: string;
  readonly permissions: readonly Permission[];
  /** SELECT through this data filter (the request scope must be the filter's table). */
  readonly filter?: string;
  /**
   * Guardrails this set lifts while the request is active: the request's
   * time-bound grant lists them in `liftsGuardrails`, so the exception covers
   * that grant's scope only and ends at its `notAfter` in every decision, with
   * no scheduler involved. Only guardrails marked `liftable` are lifted.
   */
  readonly liftGuardrails?: readonly string[];
}

/** What a policy covers: the union of the listed catalogs, databases, tables and tag expression. */
export interface AccessScope {
  readonly catalogs?: readonly string[];
  /** `catalog.database` */
  readonly databases?: readonly string[];
  /** `catalog.database.table` */
  readonly tables?: readonly string[];
  /** Every database or table of `catalog` whose effective tags match. */
  readonly tags?: { readonly catalog: string; readonly expression: TagExpression };
}

export interface EligibilityPolicy {
  readonly name: string;
  /** `user:NAME` or `group:NAME`. */
  readonly principal: PrincipalRef;
  readonly scope: AccessScope;
  readonly permissionSets: readonly string[];
  readonly maxDurationSeconds: number;
  readonly approvalRequired: boolean;
  readonly ticketRequired: boolean;
}

export interface ApprovalPolicy {
  readonly name: string;
  readonly scope: AccessScope;
  /** Permission-set names, or `*` for all. */
  readonly permissionSets: readonly string[] | '*';
  readonly approverGroups: readonly string[];
  /** Distinct approvals needed; at least 1. */
  readonly minApprovals: number;
}

export interface WebhookTarget {
  readonly url: string;
}

export interface SmtpSettings {
  readonly host: string;
  readonly port: number;
  readonly secure?: boolean;
  readonly user?: string;
  /** Name of an environment variable holding the SMTP password; the password itself is never stored. */
  readonly passwordEnv?: string;
  readonly from: string;
  /** Skip TLS certificate checks (self-signed test servers only). */
  readonly insecureTls?: boolean;
}

export interface NotificationSettings {
  readonly smtp?: SmtpSettings;
  /** Addresses by user name; users without one get `<name>@<emailDomain>` when a domain is set. */
  readonly contacts?: Readonly<Record<string, string>>;
  readonly emailDomain?: string;
  readonly webhooks?: readonly WebhookTarget[];
}

export interface AccessSettings {
  /** Groups whose members are auditors: they see every request and its activity. */
  readonly auditorGroups: readonly string[];
  /** Groups whose members administer access (besides admin tokens). */
  readonly adminGroups: readonly string[];
  /** How long a request may wait for approval before it expires. */
  readonly pendingTimeoutSeconds: number;
  readonly notifications: NotificationSettings;
}

export interface AccessConfig {
  readonly permissionSets: readonly PermissionSet[];
  readonly eligibility: readonly EligibilityPolicy[];
  readonly approval: readonly ApprovalPolicy[];
  readonly settings: AccessSettings;
}

export const DEFAULT_SETTINGS: AccessSettings = Object.freeze({
  auditorGroups: [],
  adminGroups: [],
  pendingTimeoutSeconds: 24 * 3600,
  notifications: {},
});

export const EMPTY_ACCESS_CONFIG: AccessConfig = Object.freeze({ permissionSets: [], eligibility: [], approval: [], settings: DEFAULT_SETTINGS });

// ------------------------------------------------------------------ requests

export const REQUEST_STATUSES = ['pending', 'approved', 'scheduled', 'active', 'ended', 'revoked', 'rejected', 'cancelled', 'expired', 'error'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

export const TERMINAL_STATUSES: readonly RequestStatus[] = ['ended', 'revoked', 'rejected', 'cancelled', 'expired', 'error'];

export function isTerminal(s: RequestStatus): boolean {
  return TERMINAL_STATUSES.includes(s);
}

/** What was decided when the request was made; later configuration edits do not change an accepted request. */
export interface RequestRule {
  readonly eligibility: readonly string[];
  readonly maxDurationSeconds: number;
  readonly approvalRequired: boolean;
  readonly ticketRequired: boolean;
  readonly approvalPolicies: readonly string[];
  readonly approverGroups: readonly string[];
  readonly minApprovals: number;
  readonly permissionSet: PermissionSet;
}

export interface ApprovalRecord {
  readonly approver: PrincipalRef;
  readonly decision: 'approve' | 'reject';
  /** 0 for the request itself, 1.. for extensions. */
  readonly round: number;
  readonly comment?: string;
  readonly at: string;
}

export interface PendingExtension {
  readonly round: number;
  readonly seconds: number;
  readonly requestedBy: PrincipalRef;
  readonly justification?: string;
}

export interface AccessRequest {
  readonly id: string;
  readonly requester: PrincipalRef;
  /** `catalog`, `catalog.database` or `catalog.database.table`. */
  readonly scope: string;
  readonly permissionSet: string;
  readonly status: RequestStatus;
  /** ISO-8601 instants. */
  readonly startAt: string;
  readonly endAt: string;
  readonly durationSeconds: number;
  readonly ticket?: string;
  readonly justification: string;
  readonly rule: RequestRule;
  readonly approvals: readonly ApprovalRecord[];
  readonly extension?: PendingExtension;
  readonly error?: string;
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly pendingUntil: string;
}

/** The grant id that backs an active request: one grant per request, so ending one never touches another. */
export function grantIdFor(requestId: string): string {
  return `jit-${requestId}`;
}

export const JIT_GRANT_PREFIX = 'jit-';

export function requestIdOfGrant(grantId: string): string | null {
  return grantId.startsWith(JIT_GRANT_PREFIX) ? grantId.slice(JIT_GRANT_PREFIX.length) : null;
}

export type ScopeRef = Extract<ResourceRef, { level: 'catalog' | 'database' | 'table' }>;
