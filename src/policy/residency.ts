/**
 * Residency guardrails (docs/residency.md), the pure half: which tables a
 * residency guardrail covers, and whether a place — a set of regions where
 * a table's files lie, a warehouse target, a Trino catalog, another
 * workspace — is inside the regions it allows. The shells find the regions
 * (real paths, configuration) and decide what a violation stops.
 *
 * A table is covered when the guardrail's tag expression matches the
 * effective tags of the table (its own and its database's, by inheritance)
 * or of any of its columns: a column's data lives in the table's files.
 */
import type { Guardrail, PolicyWorld, ResidencyMode, ResidencyRule, Table, TaggableRef } from './model.js';
import { resourceToString } from './model.js';
import { matchesTagExpression } from './tag-expression.js';

export type ResidencyGuardrail = Guardrail & { readonly residency: ResidencyRule };

export interface TableRef {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
}

/**
 * Where a table would be, or is: `what` names it for people (`warehouse
 * target \`dw\``), `regions` are every region it spans. `null` is a place
 * whose region nobody configured: no rule allows it (fail closed).
 */
export interface Place {
  readonly what: string;
  readonly regions: readonly (string | null)[];
}

export interface ResidencyViolation {
  /** `catalog.database.table`. */
  readonly table: string;
  readonly guardrail: string;
  readonly mode: ResidencyMode;
  readonly allowed: readonly string[];
  readonly place: string;
  /** The regions of the place that the guardrail does not allow (`null`: not configured). */
  readonly regions: readonly (string | null)[];
}

export function isResidencyGuardrail(g: Guardrail): g is ResidencyGuardrail {
  return g.residency !== undefined;
}

export function residencyGuardrails(world: Pick<PolicyWorld, 'guardrails'>): ResidencyGuardrail[] {
  return world.guardrails.filter(isResidencyGuardrail);
}

/**
 * Whether `region` matches one of the patterns. Whole-name matches only: `eu-*`
 * admits `eu-west-1`, never `neu-1` or `eu` plus nothing; an unknown region
 * (`null`) matches nothing.
 */
export function regionAllowed(patterns: readonly string[], region: string | null): boolean {
  if (region === null) return false;
  return patterns.some((p) => globRegex(p).test(region));
}

function globRegex(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[^a-z0-9-]/g, (c) => `\\${c}`))
    .join('[a-z0-9-]*');
  return new RegExp(`^${body}$`);
}

/**
 * Tags by resource, built once per world: a check over thousands of tables
 * must not rescan every assignment per table (what `effectiveTags` does).
 */
export interface TagLookup {
  /** Effective values of the table and of each of its columns. */
  valuesOf(t: Table): ReadonlyMap<string, string>[];
}

export function tagLookup(world: Pick<PolicyWorld, 'tagAssignments'>): TagLookup {
  const own = new Map<string, Map<string, string>>();
  for (const a of world.tagAssignments) {
    const key = resourceToString(a.resource);
    let m = own.get(key);
    if (m === undefined) own.set(key, (m = new Map()));
    if (!m.has(a.key)) m.set(a.key, a.value);
  }
  const layer = (base: ReadonlyMap<string, string>, ref: TaggableRef): ReadonlyMap<string, string> => {
    const mine = own.get(resourceToString(ref));
    return mine === undefined ? base : new Map([...base, ...mine]);
  };
  return {
    valuesOf(t) {
      const db = layer(new Map(), { level: 'database', catalog: t.catalog, database: t.database });
      const table = layer(db, { level: 'table', catalog: t.catalog, database: t.database, table: t.name });
      return [table, ...t.columns.map((c) => layer(table, { level: 'column', catalog: t.catalog, database: t.database, table: t.name, column: c.name }))];
    },
  };
}

/** The residency guardrails covering `t`, sorted by name. */
export function guardrailsCovering(guardrails: readonly ResidencyGuardrail[], tags: TagLookup, t: Table): ResidencyGuardrail[] {
  if (guardrails.length === 0) return [];
  const values = tags.valuesOf(t);
  return guardrails
    .filter((g) => (g.catalog === undefined || g.catalog === t.catalog) && values.some((v) => matchesTagExpression(g.resources, v)))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Every (table, guardrail) pair where the table would be outside the regions
 * the guardrail allows, if it were at `placeOf(table)`. Tables not in the world
 * are skipped (the caller's own lookup reports them); `placeOf` returning
 * undefined means the table has no place to judge (a virtual table).
 */
export function violationsAt(world: PolicyWorld, tables: readonly Table[], placeOf: (t: Table) => Place | undefined): ResidencyViolation[] {
  const guardrails = residencyGuardrails(world);
  if (guardrails.length === 0) return [];
  const tags = tagLookup(world);
  const out: ResidencyViolation[] = [];
  for (const t of tables) {
    const covering = guardrailsCovering(guardrails, tags, t);
    if (covering.length === 0) continue;
    const place = placeOf(t);
    if (place === undefined) continue;
    for (const g of covering) {
      const outside = place.regions.filter((r) => !regionAllowed(g.residency.regions, r));
      if (place.regions.length === 0 || outside.length > 0) {
        out.push({
          table: `${t.catalog}.${t.database}.${t.name}`,
          guardrail: g.name,
          mode: g.residency.mode,
          allowed: g.residency.regions,
          place: place.what,
          regions: place.regions.length === 0 ? [null] : [...new Set(outside)],
        });
      }
    }
  }
  return out;
}

/**
 * The residency violations of sending `tables` to one region: a warehouse
 * target, a Trino catalog, another workspace (a share). `targetRegion` null
 * means the target has no region: every covering guardrail refuses it.
 *
 * @example residencyViolations(world, [{ catalog: 'lake', database: 'claims', table: 'members' }], 'us-east-1', 'workspace `acme-us`')
 */
export function residencyViolations(world: PolicyWorld, tableRefs: readonly TableRef[], targetRegion: string | null, what = `region \`${targetRegion ?? 'unset'}\``): ResidencyViolation[] {
  const wanted = new Set(tableRefs.map((r) => `${r.catalog}.${r.database}.${r.table}`));
  const tables = world.tables.filter((t) => wanted.has(`${t.catalog}.${t.database}.${t.name}`));
  return violationsAt(world, tables, () => ({ what, regions: [targetRegion] }));
}

/** One line per violation, for error messages and the CLI. */
export function describeViolation(v: ResidencyViolation): string {
  const where = v.regions.map((r) => (r === null ? 'no region' : `\`${r}\``)).join(', ');
  return `table \`${v.table}\` at ${v.place} (${where}) is outside residency guardrail \`${v.guardrail}\` (allowed: ${v.allowed.map((r) => `\`${r}\``).join(', ')})`;
}

/** Only the violations whose guardrail enforces; the rest are reported, not refused. */
export function enforced(violations: readonly ResidencyViolation[]): ResidencyViolation[] {
  return violations.filter((v) => v.mode === 'enforce');
}
