/**
 * What applying policy files would change, before anything changes.
 *
 * A plan diffs only the managed kinds (`MANAGED_KINDS`): the catalog is
 * registered from the sources, so a policy folder that mentions no tables can
 * never delete one. Both sides are compared in canonical form, so a world that
 * means the same as the files (lists in another order) plans no changes.
 */
import { describeGrantResource } from '../policy/grant-option.js';
import type { Change, EntityTypes } from '../policy/changes.js';
import { diffWorlds, entityKey, stableJson } from '../policy/changes.js';
import type { Grant, GrantResource, PolicyWorld, TagExpression } from '../policy/model.js';
import type { ManagedKind, ManagedWorld } from './convert.js';
import { MANAGED_KINDS, canonicalManagedWorld, managedField, managedPart } from './convert.js';
import { expressionText } from './export.js';

export type PlanAction = 'add' | 'change' | 'remove';

export interface PlanEntry {
  readonly action: PlanAction;
  readonly kind: ManagedKind;
  /** The entity key (`entityKey`). */
  readonly key: string;
  /** For adds: what the entity is (`group:analysts SELECT on lake.claims`). Empty otherwise. */
  readonly detail: string;
  /** For changes: one line per changed field (`values +internal`). */
  readonly fields: readonly string[];
}

export type PlanSummary = Readonly<Record<ManagedKind, { readonly added: number; readonly changed: number; readonly removed: number }>>;

export interface Plan {
  /** In a safe apply order: deletes children first, then puts parents first. */
  readonly changes: readonly Change[];
  readonly summary: PlanSummary;
  /** One per change, sorted by kind then key, for people. */
  readonly entries: readonly PlanEntry[];
}

/**
 * The changes that turn the managed parts of `current` into `desired`.
 *
 * @example planPolicy(world, toManagedWorld(loaded.document, { parsePredicate }))
 */
export function planPolicy(current: PolicyWorld, desired: ManagedWorld): Plan {
  const before = { ...current, ...canonicalManagedWorld(managedPart(current)) };
  const after = { ...current, ...canonicalManagedWorld(managedPart(desired)) };
  const changes = diffWorlds(before, after, MANAGED_KINDS);

  const summary = Object.fromEntries(MANAGED_KINDS.map((k) => [k, { added: 0, changed: 0, removed: 0 }])) as Record<
    ManagedKind,
    { added: number; changed: number; removed: number }
  >;
  const entries: PlanEntry[] = [];
  for (const c of changes) {
    const kind = c.kind as ManagedKind;
    if (c.op === 'delete') {
      summary[kind].removed += 1;
      entries.push({ action: 'remove', kind, key: c.key, detail: '', fields: [] });
      continue;
    }
    const key = entityKey(kind, c.entity as EntityTypes[ManagedKind]);
    const old = findEntity(before, kind, key);
    if (old === undefined) {
      summary[kind].added += 1;
      entries.push({ action: 'add', kind, key, detail: describe(kind, c.entity as EntityTypes[ManagedKind]), fields: [] });
    } else {
      summary[kind].changed += 1;
      entries.push({ action: 'change', kind, key, detail: '', fields: fieldChanges(old, c.entity) });
    }
  }
  const kindOrder = (k: ManagedKind): number => MANAGED_KINDS.indexOf(k);
  entries.sort((a, b) => kindOrder(a.kind) - kindOrder(b.kind) || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return { changes, summary, entries };
}

function findEntity(world: ManagedWorld, kind: ManagedKind, key: string): EntityTypes[ManagedKind] | undefined {
  const list = world[managedField(kind)] as readonly EntityTypes[ManagedKind][];
  return list.find((e) => entityKey(kind, e) === key);
}

/** A grant's resource for people; one wording everywhere (the grant option uses it too). */
export const grantResourceLabel = describeGrantResource;

function describe(kind: ManagedKind, e: EntityTypes[ManagedKind]): string {
  switch (kind) {
    case 'grant': {
      const g = e as Grant;
      const grantable = g.grantable.length > 0 ? ` (grantable: ${g.grantable.join(', ')})` : '';
      const until = g.notAfter === undefined ? '' : ` until ${g.notAfter}`;
      return `${g.principal} ${g.permissions.join(', ')} on ${grantResourceLabel(g.resource)}${grantable}${until}`;
    }
    case 'guardrail': {
      const g = e as EntityTypes['guardrail'];
      if (g.residency !== undefined) {
        return `keep ${expressionText(g.resources)}${g.catalog === undefined ? '' : ` in ${g.catalog}`} in regions ${g.residency.regions.join(', ')} (${g.residency.mode})`;
      }
      const who = g.principals === undefined ? 'everyone' : g.principals.join(', ');
      const except = g.except === undefined ? '' : ` except ${g.except.join(', ')}`;
      return `deny ${g.actions.join(', ')} on ${expressionText(g.resources)}${g.catalog === undefined ? '' : ` in ${g.catalog}`} to ${who}${except}`;
    }
    case 'tagAssignment':
      return `= ${(e as EntityTypes['tagAssignment']).value}`;
    case 'tagKey':
      return `values ${(e as EntityTypes['tagKey']).values.join(', ')}`;
    case 'filter': {
      const f = e as EntityTypes['filter'];
      const cols = f.columns !== undefined ? `columns ${f.columns.join(', ')}` : f.excludedColumns !== undefined ? `all columns except ${f.excludedColumns.join(', ')}` : 'all columns';
      return `${cols}, rows ${f.rowFilter ?? 'all'}`;
    }
    case 'idpMapping':
      return `-> group ${(e as EntityTypes['idpMapping']).group}`;
    case 'user':
    case 'group':
    case 'membership':
      return '';
    default: {
      const never: never = kind;
      return never;
    }
  }
}

function show(field: string, v: unknown): string {
  if (v === undefined || v === null) return '(none)';
  if (field === 'resource' && typeof v === 'object' && 'kind' in v) return grantResourceLabel(v as GrantResource);
  if (field === 'resources' && typeof v === 'object') return expressionText(v as TagExpression);
  return typeof v === 'string' ? JSON.stringify(v) : stableJson(v);
}

/** One readable line per field that differs: lists as `+added -removed`, the rest as `old -> new`. */
function fieldChanges(before: object, after: object): string[] {
  const b = before as Record<string, unknown>;
  const a = after as Record<string, unknown>;
  const out: string[] = [];
  const fields = [...new Set([...Object.keys(b), ...Object.keys(a)])];
  for (const field of fields) {
    const x = b[field];
    const y = a[field];
    if (stableJson(x) === stableJson(y)) continue;
    // The parsed predicate follows the row filter; say so only when the text did not change.
    if (field === 'predicate') {
      if (stableJson(b.rowFilter) === stableJson(a.rowFilter)) out.push('predicate re-parsed');
      continue;
    }
    const isList = (v: unknown): v is readonly string[] => Array.isArray(v) && v.every((s) => typeof s === 'string');
    if (isList(x) && isList(y)) {
      const added = y.filter((s) => !x.includes(s));
      const removed = x.filter((s) => !y.includes(s));
      const parts = [...added.map((s) => `+${s}`), ...removed.map((s) => `-${s}`)];
      out.push(`${field} ${parts.length > 0 ? parts.join(' ') : 'reordered'}`);
    } else {
      out.push(`${field} ${show(field, x)} -> ${show(field, y)}`);
    }
  }
  return out;
}

const SIGN: Readonly<Record<PlanAction, string>> = { add: '+', change: '~', remove: '-' };

/** The text form, like Terraform's: `+ grant analysts-read-claims: ...`, `~ tagKey pii: values +internal`. */
export function renderPlan(plan: Plan, format: 'text' | 'json' = 'text'): string {
  if (format === 'json') return `${JSON.stringify(planToJson(plan), null, 2)}\n`;
  if (plan.entries.length === 0) return 'No changes. The workspace matches the policy files.\n';
  const lines: string[] = [];
  for (const e of plan.entries) {
    const head = `  ${SIGN[e.action]} ${e.kind} ${e.key}`;
    if (e.action === 'change') lines.push(`${head}: ${e.fields.join('; ')}`);
    else if (e.action === 'add' && e.detail !== '') lines.push(`${head}: ${e.detail}`);
    else lines.push(head);
  }
  const t = totals(plan);
  return `Steward will make these changes:\n\n${lines.join('\n')}\n\nPlan: ${t.added} to add, ${t.changed} to change, ${t.removed} to remove.\n`;
}

function totals(plan: Plan): { added: number; changed: number; removed: number } {
  const t = { added: 0, changed: 0, removed: 0 };
  for (const s of Object.values(plan.summary)) {
    t.added += s.added;
    t.changed += s.changed;
    t.removed += s.removed;
  }
  return t;
}

export interface PlanJson {
  readonly totals: { readonly added: number; readonly changed: number; readonly removed: number };
  readonly summary: PlanSummary;
  readonly entries: readonly PlanEntry[];
  readonly changes: readonly Change[];
}

/** The machine form: totals, per-kind summary, readable entries, and the change list `apply` executes. */
export function planToJson(plan: Plan): PlanJson {
  return { totals: totals(plan), summary: plan.summary, entries: plan.entries, changes: plan.changes };
}
