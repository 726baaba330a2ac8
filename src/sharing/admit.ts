/**
 * The rules a share and a replica must pass beyond validity.
 *
 * `admitShareTarget` is the one place where a share's target workspace is
 * admitted for the tables it would receive: every share creation goes
 * through it: data-residency guardrails refuse here, naming the guardrail,
 * when the workspace's declared region is outside theirs.
 *
 * `refuseReplicaEdits` keeps replicated catalogs read-only: only replication
 * itself (actions `share.pull…`) may change their catalogs, databases, tables
 * and tags. Local grants and data filters on shared tables stay allowed: the
 * consumer governs its own principals.
 */
import type { Change } from '../policy/changes.js';
import type { PolicyWorld, Table } from '../policy/model.js';
import { StewardError } from '../errors.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { describeViolation, enforced, residencyViolations, type ResidencyViolation } from '../policy/residency.js';
import { gate } from '../residency/residency-gate.js';

export interface ShareTarget {
  readonly peer: string;
  readonly publicKey: string;
  readonly url: string | null;
  /** The region its admin declared when trusting it; null refuses every table a residency guardrail covers. */
  readonly region: string | null;
}

/**
 * Refuses (STEWARD_E_RESIDENCY, naming the guardrail) sharing `tables` with a workspace outside the regions of an
 * enforced residency guardrail that covers them; returns the decision-log entries of report-only violations.
 */
export function admitShareTarget(target: ShareTarget, tables: readonly Table[], world: PolicyWorld, actor: string): DecisionLogEntry[] {
  const refs = tables.map((t) => ({ catalog: t.catalog, database: t.database, table: t.name }));
  return gate(residencyViolations(world, refs, target.region, `workspace \`${target.peer}\` (region \`${target.region ?? 'unset'}\`)`), actor, 'share.create');
}

/**
 * A share's tables judged again for its target, at every projection: a table
 * added to a shared database after the share was created, or tagged since,
 * meets the residency guardrails here rather than at `share create`. Tables of
 * an enforced violation are `withheld` (by `database.table`: the producer
 * leaves them out of the feed); report-only violations are only `reported`.
 */
export function screenShareTables(
  target: Pick<ShareTarget, 'peer' | 'region'>,
  world: PolicyWorld,
  catalog: string,
  tables: readonly { readonly database: string; readonly name: string }[],
): { withheld: Map<string, ResidencyViolation>; reported: ResidencyViolation[] } {
  const refs = tables.map((t) => ({ catalog, database: t.database, table: t.name }));
  const violations = residencyViolations(world, refs, target.region, `workspace \`${target.peer}\` (region \`${target.region ?? 'unset'}\`)`);
  const withheld = new Map<string, ResidencyViolation>();
  for (const v of enforced(violations)) if (!withheld.has(v.table)) withheld.set(v.table.slice(catalog.length + 1), v);
  return { withheld, reported: violations.filter((v) => v.mode !== 'enforce') };
}

/** The decision-log entry of a table a share withholds (denied) or publishes despite a report-only guardrail (allowed). */
export function shareResidencyEntry(v: ResidencyViolation, share: string, peer: string): DecisionLogEntry {
  const withheld = v.mode === 'enforce';
  return {
    actor: `share:${peer}`,
    action: 'residency.violation',
    resource: v.table,
    result: withheld ? 'deny' : 'allow',
    reason: `${withheld ? `withheld from share \`${share}\`` : `report-only, shared in \`${share}\``}: ${describeViolation(v)}`,
    details: { guardrail: v.guardrail, mode: v.mode, place: v.place, regions: v.regions, allowed: v.allowed, during: 'share.feed', share, peer },
  };
}

/** The actions of replication itself (src/sharing/consumer.ts), the only writers of a replicated catalog. */
export function isReplication(action: string): boolean {
  return action === 'share.pull' || action === 'share.pull.revoked';
}

/** The catalog a change touches when it is one replication owns (catalog, database, table or tag), else undefined. */
function catalogOf(c: Change): string | undefined {
  switch (c.kind) {
    case 'catalog':
      return c.op === 'put' ? c.entity.name : c.key;
    case 'database':
    case 'table':
    case 'tagAssignment':
      return c.op === 'put' ? ('resource' in c.entity ? c.entity.resource.catalog : c.entity.catalog) : c.key.split(/[.#]/)[0];
    default:
      return undefined;
  }
}

export function refuseReplicaEdits(changes: readonly Change[], action: string, replicaCatalogs: ReadonlySet<string>): void {
  if (isReplication(action) || replicaCatalogs.size === 0) return;
  for (const c of changes) {
    const catalog = catalogOf(c);
    if (catalog !== undefined && replicaCatalogs.has(catalog)) {
      throw new StewardError('STEWARD_E_FORBIDDEN', `catalog \`${catalog}\` is replicated from a share and is read-only here (grants and data filters on it are allowed)`, {
        details: [{ path: c.kind, message: 'read-only replica' }],
      });
    }
  }
}

/** Whether any change could touch a replicated catalog (so the caller need not read which catalogs are replicas). */
export function touchesCatalogs(changes: readonly Change[]): boolean {
  return changes.some((c) => catalogOf(c) !== undefined);
}
