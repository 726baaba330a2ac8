/**
 * Residency guardrails at the places data lands (docs/residency.md): where a
 * lake table's files are, the warehouse a target syncs to, the Trino catalog
 * that reads it. One gate for all of them: a violation of an `enforce`
 * guardrail refuses the whole operation with STEWARD_E_RESIDENCY naming the
 * guardrail; a violation of a `report-only` one lets it pass and becomes a
 * `residency.violation` decision-log entry (hence a security-lake event).
 */
import type { Change } from '../policy/changes.js';
import type { PolicyWorld, Table } from '../policy/model.js';
import { resourceToString } from '../policy/model.js';
import { describeViolation, enforced, residencyGuardrails, violationsAt, type Place, type ResidencyViolation } from '../policy/residency.js';
import { regionsOfLocation, type LakeRegions } from '../catalog/lake-regions.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { StewardError } from '../errors.js';

/** Where a table's data is: its lake files' regions; a PostgreSQL or virtual table has none to judge. */
export function lakePlace(t: Table, regions: LakeRegions): Place | undefined {
  if (t.source.kind !== 'lake') return undefined;
  return { what: `location \`${t.source.location}\``, regions: regionsOfLocation(t.source.location, regions) };
}

/** Every table of the world whose files lie outside a residency guardrail covering it. */
export function lakeViolations(world: PolicyWorld, regions: LakeRegions, tables: readonly Table[] = world.tables, places = new Map<string, Place | undefined>()): ResidencyViolation[] {
  const atFiles = violationsAt(world, tables, (t) => {
    // one file-system walk per location, however many worlds are compared
    const key = t.source.kind === 'lake' ? t.source.location : `\u0000${t.source.kind}`;
    if (!places.has(key)) places.set(key, lakePlace(t, regions));
    return places.get(key);
  });
  // The workspace reads every table it catalogs (the gateway, loads): with a region of its own, that region must be allowed too.
  const workspace = regions.fallback;
  const here = workspace === null ? [] : violationsAt(world, tables, () => ({ what: 'this workspace', regions: [workspace] }));
  return [...atFiles, ...here];
}

/**
 * Refuses when an enforced violation is among `violations`; otherwise returns
 * the decision-log entries that record the report-only ones.
 */
export function gate(violations: readonly ResidencyViolation[], actor: string, action: string): DecisionLogEntry[] {
  const refused = enforced(violations);
  if (refused.length > 0) throw residencyError(refused);
  return violations.map((v) => reportEntry(v, actor, action));
}

export function residencyError(violations: readonly ResidencyViolation[]): StewardError {
  const first = violations[0] as ResidencyViolation;
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
  return new StewardError('STEWARD_E_RESIDENCY', `${describeViolation(first)}${more}`, {
    details: violations.slice(0, 100).map((v) => ({ path: v.table, message: describeViolation(v) })),
  });
}

function reportEntry(v: ResidencyViolation, actor: string, action: string): DecisionLogEntry {
  return {
    actor,
    action: 'residency.violation',
    resource: v.table,
    // report-only: the operation went ahead; the entry is the detective control
    result: 'allow',
    reason: `report-only: ${describeViolation(v)}`,
    details: { guardrail: v.guardrail, mode: v.mode, place: v.place, regions: v.regions, allowed: v.allowed, during: action },
  };
}

/**
 * The state service's admission rule for residency: the world after a change
 * may not hold an enforced violation the world before it did not. So
 * registering or moving a tagged table outside its regions, tagging a table
 * that lies outside, and creating (or switching to `enforce`) a guardrail that
 * existing tables break are refused; edits that leave old violations as they
 * were are not blocked by them (`steward residency check` lists those).
 * New report-only violations are returned as log entries for the change.
 */
export function admitResidency(
  changes: readonly Change[],
  { before, after, actor, action }: { readonly before: PolicyWorld; readonly after: PolicyWorld; readonly actor: string; readonly action: string },
  regions: LakeRegions,
): DecisionLogEntry[] {
  if (residencyGuardrails(after).length === 0) return [];
  const affected = affectedTables(changes, after);
  if (affected.length === 0) return [];
  // the place is part of the key: moving a table that already broke a rule to another place outside it is a new violation
  const key = (v: ResidencyViolation): string => `${v.table}\u0000${v.guardrail}\u0000${v.mode}\u0000${v.place}`;
  const places = new Map<string, Place | undefined>();
  const old = new Set(lakeViolations(before, regions, sameTables(before, affected), places).map(key));
  const fresh = lakeViolations(after, regions, affected, places).filter((v) => !old.has(key(v)));
  return gate(fresh, actor, action);
}

/**
 * Tables of `after` whose residency may have changed: all of them when a
 * residency guardrail is written (other guardrails, such as the ones access
 * experiments put, never make a violation, and neither does a deletion).
 */
function affectedTables(changes: readonly Change[], after: PolicyWorld): Table[] {
  if (changes.some((c) => c.kind === 'guardrail' && c.op === 'put' && c.entity.residency !== undefined)) return [...after.tables];
  const prefixes: string[] = [];
  const tables = new Set<string>();
  for (const c of changes) {
    if (c.kind === 'table' && c.op === 'put') tables.add(`${c.entity.catalog}.${c.entity.database}.${c.entity.name}`);
    if (c.kind === 'tagAssignment') prefixes.push(c.op === 'put' ? resourceToString(c.entity.resource) : (c.key.split('#')[0] as string));
  }
  return after.tables.filter((t) => {
    const k = `${t.catalog}.${t.database}.${t.name}`;
    return tables.has(k) || prefixes.some((p) => k === p || k.startsWith(`${p}.`) || p.startsWith(`${k}.`));
  });
}

function sameTables(world: PolicyWorld, tables: readonly Table[]): Table[] {
  const keys = new Set(tables.map((t) => `${t.catalog}.${t.database}.${t.name}`));
  return world.tables.filter((t) => keys.has(`${t.catalog}.${t.database}.${t.name}`));
}
