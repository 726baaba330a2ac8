/**
 * Eligibility and approval matching, and the grant a request turns into. Pure.
 *
 * Eligibility, "most restrictive wins": among the eligibility policies that
 * name the requester (directly or through a group), cover the requested scope
 * and include the permission set, the request is judged against their
 * combination:
 *   - the maximum duration is the shortest of their maximums;
 *   - approval is required when any of them requires it;
 *   - a ticket is required when any of them requires one.
 * So adding a broad, lenient policy never loosens what a narrower, stricter
 * one already says about the same request.
 *
 * Approval: every approval policy whose scope covers the request and whose
 * permission sets include the requested one (or `*`) applies. A member of any
 * approver group of an applying policy may approve; the number of distinct
 * approvals needed is the largest `minApprovals` among them. Nobody approves
 * their own request, so the requester never counts as an approver. A request
 * that needs approval is refused when it is made if no policy applies, or if
 * fewer distinct people than the quorum could approve it.
 */
import type { PolicyWorld, PrincipalRef, Grant, GrantResource } from '../policy/model.js';
import { parseResource, resourceToString } from '../policy/model.js';
import { membershipGraph, principalSet, usersInGroup } from '../policy/principals.js';
import { effectiveTags, tagValues } from '../policy/tags.js';
import { matchesTagExpression } from '../policy/tag-expression.js';
import { StewardError } from '../errors.js';
import { endWithinRange, formatDuration } from '../time.js';
import type { AccessConfig, AccessScope, ApprovalPolicy, EligibilityPolicy, PermissionSet, RequestRule, ScopeRef } from './access-types.js';
import { grantIdFor } from './access-types.js';

// --------------------------------------------------------------------- scope

/** Parses a request scope: a catalog, database or table. */
export function parseScope(text: string): ScopeRef {
  const r = parseResource(text);
  if (r === null || r.level === 'column') {
    throw new StewardError('STEWARD_E_VALIDATION', `invalid scope \`${text}\`: must be \`catalog\`, \`catalog.database\` or \`catalog.database.table\``);
  }
  return r;
}

export function scopeExists(world: PolicyWorld, s: ScopeRef): boolean {
  switch (s.level) {
    case 'catalog':
      return world.catalogs.some((c) => c.name === s.catalog);
    case 'database':
      return world.databases.some((d) => d.catalog === s.catalog && d.name === s.database);
    case 'table':
      return world.tables.some((t) => t.catalog === s.catalog && t.database === s.database && t.name === s.table);
    default: {
      const never: never = s;
      return never;
    }
  }
}

/**
 * Whether a policy scope covers the requested scope: a listed catalog covers
 * everything in it, a database its tables; a tag expression covers a database
 * or table of its catalog whose effective tags match.
 */
export function scopeCovers(world: PolicyWorld, scope: AccessScope, s: ScopeRef): boolean {
  const text = resourceToString(s);
  if ((scope.catalogs ?? []).includes(s.catalog)) return true;
  if (s.level !== 'catalog' && (scope.databases ?? []).includes(`${s.catalog}.${s.database}`)) return true;
  if (s.level === 'table' && (scope.tables ?? []).includes(text)) return true;
  if (scope.tags !== undefined && s.level !== 'catalog' && scope.tags.catalog === s.catalog) {
    return matchesTagExpression(scope.tags.expression, tagValues(effectiveTags(world, s)));
  }
  return false;
}

// --------------------------------------------------------------- eligibility

export interface EligibilityVerdict {
  readonly policies: readonly EligibilityPolicy[];
  readonly maxDurationSeconds: number;
  readonly approvalRequired: boolean;
  readonly ticketRequired: boolean;
}

/**
 * The combined rule of every eligibility policy that lets `requester` ask for
 * `permissionSet` on `scope` (most restrictive wins), or null when none does.
 */
export function matchEligibility(
  world: PolicyWorld,
  config: Pick<AccessConfig, 'eligibility'>,
  requester: PrincipalRef,
  s: ScopeRef,
  permissionSet: string,
): EligibilityVerdict | null {
  const set = principalSet(membershipGraph(world), requester);
  const matching = config.eligibility.filter(
    (p) => set.has(p.principal) && p.permissionSets.includes(permissionSet) && scopeCovers(world, p.scope, s),
  );
  if (matching.length === 0) return null;
  return {
    policies: matching,
    maxDurationSeconds: Math.min(...matching.map((p) => p.maxDurationSeconds)),
    approvalRequired: matching.some((p) => p.approvalRequired),
    ticketRequired: matching.some((p) => p.ticketRequired),
  };
}

// ------------------------------------------------------------------ approval

export interface ApprovalVerdict {
  readonly policies: readonly ApprovalPolicy[];
  readonly approverGroups: readonly string[];
  readonly minApprovals: number;
  /** Users who may approve, requester excluded, sorted. */
  readonly approvers: readonly string[];
}

export function matchApproval(world: PolicyWorld, config: Pick<AccessConfig, 'approval'>, requester: PrincipalRef, s: ScopeRef, permissionSet: string): ApprovalVerdict {
  const policies = config.approval.filter(
    (p) => (p.permissionSets === '*' || p.permissionSets.includes(permissionSet)) && scopeCovers(world, p.scope, s),
  );
  const approverGroups = [...new Set(policies.flatMap((p) => p.approverGroups))].sort();
  const graph = membershipGraph(world);
  const self = requester.startsWith('user:') ? requester.slice(5) : '';
  const approvers = [...new Set(approverGroups.flatMap((g) => usersInGroup(graph, g)))].filter((u) => u !== self).sort();
  return { policies, approverGroups, minApprovals: Math.max(1, ...policies.map((p) => p.minApprovals)), approvers };
}

/** Whether `who` may approve a request with this rule: in an approver group, and not the requester. */
export function canApprove(world: PolicyWorld, rule: Pick<RequestRule, 'approverGroups'>, requester: PrincipalRef, who: PrincipalRef): boolean {
  if (who === requester) return false;
  const set = principalSet(membershipGraph(world), who);
  return rule.approverGroups.some((g) => set.has(`group:${g}`));
}

// ------------------------------------------------------------------ requests

export interface RequestInput {
  readonly requester: PrincipalRef;
  readonly scope: string;
  readonly permissionSet: string;
  /** Epoch ms; defaults to now. */
  readonly startAt?: number;
  readonly durationSeconds: number;
  readonly ticket?: string;
  readonly justification: string;
}

/** How far in the past a start time may be (clock skew between client and server). */
export const START_TOLERANCE_MS = 5 * 60_000;

/**
 * Validates a new request against the configuration and the world, and
 * returns the rule it is held to. Throws a StewardError naming the policy that
 * blocks it.
 */
export function evaluateRequest(world: PolicyWorld, config: AccessConfig, input: RequestInput, now: number): { rule: RequestRule; scope: ScopeRef; startAt: number } {
  const s = parseScope(input.scope);
  const set = config.permissionSets.find((p) => p.name === input.permissionSet);
  if (set === undefined) throw new StewardError('STEWARD_E_NOT_FOUND', `permission set \`${input.permissionSet}\` not found`);
  if (!world.users.some((u) => `user:${u.name}` === input.requester)) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `\`${input.requester}\` is not a known user; only users can request access`);
  }
  if (!scopeExists(world, s)) throw new StewardError('STEWARD_E_NOT_FOUND', `scope \`${resourceToString(s)}\` not found in the catalog`);
  if (set.filter !== undefined) {
    if (s.level !== 'table') throw new StewardError('STEWARD_E_VALIDATION', `permission set \`${set.name}\` is bound to data filter \`${set.filter}\`, so the scope must be a table`);
    if (!world.filters.some((f) => f.catalog === s.catalog && f.database === s.database && f.table === s.table && f.name === set.filter)) {
      throw new StewardError('STEWARD_E_VALIDATION', `permission set \`${set.name}\` needs data filter \`${set.filter}\`, which table \`${resourceToString(s)}\` does not have`);
    }
  }
  const elig = matchEligibility(world, config, input.requester, s, set.name);
  if (elig === null) {
    throw new StewardError(
      'STEWARD_E_FORBIDDEN',
      `no eligibility policy lets \`${input.requester}\` request \`${set.name}\` on \`${resourceToString(s)}\``,
    );
  }
  const strictest = (pick: (p: EligibilityPolicy) => boolean): string =>
    elig.policies
      .filter(pick)
      .map((p) => `\`${p.name}\``)
      .join(', ');
  if (input.durationSeconds > elig.maxDurationSeconds) {
    throw new StewardError(
      'STEWARD_E_VALIDATION',
      `duration ${formatDuration(input.durationSeconds)} exceeds the maximum of ${formatDuration(elig.maxDurationSeconds)} set by eligibility policy ${strictest((p) => p.maxDurationSeconds === elig.maxDurationSeconds)}`,
    );
  }
  if (elig.ticketRequired && (input.ticket === undefined || input.ticket.trim() === '')) {
    throw new StewardError('STEWARD_E_VALIDATION', `a ticket id is required by eligibility policy ${strictest((p) => p.ticketRequired)}`);
  }
  const startAt = input.startAt ?? now;
  if (startAt < now - START_TOLERANCE_MS) {
    throw new StewardError('STEWARD_E_VALIDATION', `start time \`${new Date(startAt).toISOString()}\` is in the past (more than ${START_TOLERANCE_MS / 60_000} minutes ago)`);
  }
  endWithinRange(Math.max(startAt, now), input.durationSeconds, 'duration');
  let approval: ApprovalVerdict = { policies: [], approverGroups: [], minApprovals: 0, approvers: [] };
  if (elig.approvalRequired) {
    approval = matchApproval(world, config, input.requester, s, set.name);
    if (approval.policies.length === 0) {
      throw new StewardError(
        'STEWARD_E_FORBIDDEN',
        `eligibility policy ${strictest((p) => p.approvalRequired)} requires approval, but no approval policy covers \`${set.name}\` on \`${resourceToString(s)}\`, so nobody could approve it`,
      );
    }
    if (approval.approvers.length < approval.minApprovals) {
      throw new StewardError(
        'STEWARD_E_FORBIDDEN',
        `approval policy ${approval.policies.map((p) => `\`${p.name}\``).join(', ')} needs ${approval.minApprovals} distinct approver(s) but its groups (${approval.approverGroups.join(', ') || 'none'}) have ${approval.approvers.length} member(s) other than the requester, so nobody could approve it`,
      );
    }
  }
  return {
    scope: s,
    startAt,
    rule: {
      eligibility: elig.policies.map((p) => p.name),
      maxDurationSeconds: elig.maxDurationSeconds,
      approvalRequired: elig.approvalRequired,
      ticketRequired: elig.ticketRequired,
      approvalPolicies: approval.policies.map((p) => p.name),
      approverGroups: approval.approverGroups,
      minApprovals: elig.approvalRequired ? approval.minApprovals : 0,
      permissionSet: set,
    },
  };
}

// -------------------------------------------------------------------- grants

/** The time-bound grant that backs an active request. */
/**
 * The request's `jit-<id>` grant. Guardrails the permission set lifts go on the
 * grant itself (`liftsGuardrails`), so the exception has the grant's scope and
 * ends at its `notAfter` in every decision; `canLift` keeps only those the
 * world lets a grant lift (existing and `liftable`).
 */
export function grantFor(
  req: { id: string; requester: PrincipalRef; scope: string; endAt: string; rule: Pick<RequestRule, 'permissionSet'> },
  canLift: (guardrail: string) => boolean = () => true,
): Grant {
  const s = parseScope(req.scope);
  const set: PermissionSet = req.rule.permissionSet;
  let resource: GrantResource;
  if (set.filter !== undefined && s.level === 'table') {
    resource = { kind: 'filter', catalog: s.catalog, database: s.database, table: s.table, filter: set.filter };
  } else if (s.level === 'catalog') resource = { kind: 'catalog', catalog: s.catalog };
  else if (s.level === 'database') resource = { kind: 'database', catalog: s.catalog, database: s.database };
  else resource = { kind: 'table', catalog: s.catalog, database: s.database, table: s.table };
  const permissions = resource.kind === 'filter' ? (['SELECT'] as const) : set.permissions;
  const lifts = [...new Set(set.liftGuardrails ?? [])].filter(canLift);
  return {
    id: grantIdFor(req.id),
    principal: req.requester,
    resource,
    permissions: [...permissions],
    grantable: [],
    notAfter: req.endAt,
    ...(lifts.length === 0 ? {} : { liftsGuardrails: lifts }),
    description: `just-in-time access request ${req.id} (${set.name})`,
  };
}
