/**
 * Desired vs actual → an ordered list of statements. Pure.
 *
 * Order: every prefix of the plan is safe to have applied, because access
 * only shrinks before it grows — create roles; drop policies, revoke
 * memberships, column and table privileges and USAGE; enable row security;
 * then grant USAGE, table and column privileges, create policies, and only
 * then add memberships (a login role gains a role once the role is complete);
 * disabling row security, which widens access, comes last. A plan cut short
 * (a crash between batches) leaves the warehouse no more open than either end.
 *
 * What is not desired is sorted three ways:
 * - Steward granted it earlier (it is in the ledger): revoked, whatever the drift policy;
 * - a hand-made grant in the managed scope (a managed role, or row security of a
 *   managed table): drift, revoked under policy `revoke`, reported under `report`;
 * - a hand-made grant that touches an unmanaged role or object: drift, reported
 *   only. Steward never changes what it does not own.
 */
import type { DesiredState } from './desired-state.js';
import { itemKey, itemTable, qi, qname, tableKey } from './names.js';
import type { DriftItem, Item, Plan, PlanSummary, Step, SyncWarning, TargetSpec } from './sync-types.js';

export interface ActualState {
  /** Privilege items read from pg_catalog, in and around the managed scope. */
  readonly items: ReadonlyMap<string, Item>;
  /** Roles that exist (the managed ones and the login roles asked about). */
  readonly roles: ReadonlySet<string>;
  /** Managed tables that exist, by `tableKey`, with their columns. */
  readonly tables: ReadonlyMap<string, ReadonlySet<string>>;
  readonly schemas: ReadonlySet<string>;
  /** What Steward recorded as performed (`ledgerKeys`), from `steward_config.grants`. */
  readonly ledger: ReadonlySet<string>;
  /** Managed roles that own objects or hold privileges outside this database (PostgreSQL refuses to drop them). */
  readonly rolesInUse?: ReadonlySet<string>;
}

export const EMPTY_ACTUAL: ActualState = {
  items: new Map(),
  roles: new Set(),
  tables: new Map(),
  schemas: new Set(),
  ledger: new Set(),
};

/** Rank of each kind of step in a plan (see the module comment). */
const ORDER = {
  'grant:role': 0,
  'revoke:policy': 1,
  'revoke:member': 2,
  'revoke:columns': 3,
  'revoke:table': 4,
  'revoke:usage': 5,
  'grant:rls': 6,
  'grant:usage': 7,
  'grant:table': 8,
  'grant:columns': 9,
  'grant:policy': 10,
  'grant:member': 11,
  'revoke:rls': 12,
  'revoke:role': 13,
} as const;
type Kind = Item['k'];
/** ORDER by operation, then kind: looked up per step without building a `op:kind` text. */
const RANK: Readonly<Record<'grant' | 'revoke', Readonly<Record<Kind, number>>>> = {
  grant: { role: ORDER['grant:role'], member: ORDER['grant:member'], usage: ORDER['grant:usage'], table: ORDER['grant:table'], columns: ORDER['grant:columns'], rls: ORDER['grant:rls'], policy: ORDER['grant:policy'] },
  revoke: { role: ORDER['revoke:role'], member: ORDER['revoke:member'], usage: ORDER['revoke:usage'], table: ORDER['revoke:table'], columns: ORDER['revoke:columns'], rls: ORDER['revoke:rls'], policy: ORDER['revoke:policy'] },
};

/** Keys the ledger records: one per item, one per column for column privileges. */
export function ledgerKeys(it: Item): string[] {
  if (it.k === 'columns') return it.columns.map((c) => `column|${it.role}|${it.schema}|${it.table}|${it.priv}|${c}`);
  return [itemKey(it)];
}

/** PostgreSQL SQL for one step. */
export function postgresSql(op: 'grant' | 'revoke', it: Item): string {
  const g = op === 'grant';
  switch (it.k) {
    case 'role':
      return g ? `CREATE ROLE ${qi(it.role)} NOLOGIN` : dropRoleStatements(it.role).join('; ');
    case 'member':
      return g ? `GRANT ${qi(it.role)} TO ${qi(it.member)}` : `REVOKE ${qi(it.role)} FROM ${qi(it.member)}`;
    case 'usage':
      return g ? `GRANT USAGE ON SCHEMA ${qi(it.schema)} TO ${qi(it.role)}` : `REVOKE USAGE ON SCHEMA ${qi(it.schema)} FROM ${qi(it.role)}`;
    case 'table': {
      // the bulk of a plan: joined from parts into one flat string (a template of quoted names
      // leaves a tree of partial strings per statement for the garbage collector to copy)
      const p = [g ? 'GRANT ' : 'REVOKE ', it.priv, ' ON TABLE '];
      quoted(p, it.schema);
      p.push('.');
      quoted(p, it.table);
      p.push(g ? ' TO ' : ' FROM ');
      quoted(p, it.role);
      return p.join('');
    }
    case 'columns': {
      const cols = it.columns.map(qi).join(', ');
      return g
        ? `GRANT ${it.priv} (${cols}) ON TABLE ${qname(it.schema, it.table)} TO ${qi(it.role)}`
        : `REVOKE ${it.priv} (${cols}) ON TABLE ${qname(it.schema, it.table)} FROM ${qi(it.role)}`;
    }
    case 'rls':
      return `ALTER TABLE ${qname(it.schema, it.table)} ${g ? 'ENABLE' : 'DISABLE'} ROW LEVEL SECURITY`;
    case 'policy':
      if (!g) return `DROP POLICY IF EXISTS ${qi(it.name)} ON ${qname(it.schema, it.table)}`;
      return `CREATE POLICY ${qi(it.name)} ON ${qname(it.schema, it.table)} AS ${it.restrictive === true ? 'RESTRICTIVE' : 'PERMISSIVE'} FOR ${it.cmd} TO ${qi(it.role)} ${
        it.cmd === 'INSERT' ? 'WITH CHECK' : 'USING'
      } (${it.expr})`;
    default: {
      const never: never = it;
      return never;
    }
  }
}

/**
 * Dropping a Steward role: objects it owns go to the applying role (never
 * dropped); then its privileges in this database go, then the role with its
 * memberships. Run one by one, in one transaction (apply.ts).
 */
export function dropRoleStatements(role: string): string[] {
  return [`REASSIGN OWNED BY ${qi(role)} TO CURRENT_USER`, `DROP OWNED BY ${qi(role)}`, `DROP ROLE ${qi(role)}`];
}

/** Appends the quoted identifier to `parts`, as `qi` quotes it. */
function quoted(parts: string[], name: string): void {
  if (name.includes('"')) parts.push(qi(name));
  else parts.push('"', name, '"');
}

export interface DiffOptions {
  readonly target: Pick<TargetSpec, 'name' | 'rolePrefix' | 'drift' | 'embedRole'>;
}

/** Compares desired and actual and returns the plan. */
export function diffStates(desired: DesiredState, actual: ActualState, options: DiffOptions): Plan {
  const { target } = options;
  // the embed role's access to managed tables is Steward's too: a hand-made grant to it there is drift
  const managedRole = (r: string): boolean => r.startsWith(target.rolePrefix) || r === target.embedRole;
  let managedSet: Set<string> | undefined;
  const managedTables = { has: (k: string): boolean => (managedSet ??= new Set(desired.tables.map((t) => tableKey(t.schema, t.name)))).has(k) };
  const managedSchemas = new Set(desired.schemas);
  const warnings: SyncWarning[] = [...desired.warnings];
  const steps: Step[] = [];
  const drift: DriftItem[] = [];
  const step = (op: 'grant' | 'revoke', it: Item, key: string = itemKey(it)): void => {
    steps.push({ op, item: it, key, sql: postgresSql(op, it) });
  };

  // Desired items on tables or schemas the warehouse lacks are reported, not fatal.
  const missingTables = new Set<string>();
  for (const t of desired.tables) {
    if (!actual.tables.has(tableKey(t.schema, t.name))) {
      missingTables.add(tableKey(t.schema, t.name));
      warnings.push({ code: 'TABLE_MISSING', message: `table \`${t.schema}.${t.name}\` (\`${t.catalog}.${t.database}.${t.table}\`) does not exist in the warehouse; its grants are skipped` });
    }
  }
  const usable = (it: Item): boolean => {
    if (missingTables.size > 0) {
      const t = itemTable(it);
      if (t !== null && missingTables.has(t)) return false;
    }
    if (it.k === 'usage' && !actual.schemas.has(it.schema)) return false;
    if (it.k === 'member' && !actual.roles.has(it.member) && !managedRole(it.member)) return false;
    return true;
  };

  // ---- columns are compared per (role, table, privilege), column by column
  const colSets = (items: Iterable<Item>): Map<string, { it: Extract<Item, { k: 'columns' }>; cols: Set<string> }> => {
    const out = new Map<string, { it: Extract<Item, { k: 'columns' }>; cols: Set<string> }>();
    for (const it of items) {
      if (it.k !== 'columns') continue;
      const key = `${it.role}|${it.schema}|${it.table}|${it.priv}`;
      const e = out.get(key);
      if (e === undefined) out.set(key, { it, cols: new Set(it.columns) });
      else for (const c of it.columns) e.cols.add(c);
    }
    return out;
  };
  const wantCols = colSets(filtered(desired.list, (it) => it.k === 'columns' && usable(it)));
  const haveCols = colSets(actual.items.values());
  const ordered = (cols: Iterable<string>, schema: string, table: string): string[] => {
    const all = actual.tables.get(tableKey(schema, table));
    const set = new Set(cols);
    // ordinal order when the table is known, else by name
    return all === undefined ? [...set].sort() : [...all].filter((c) => set.has(c));
  };
  for (const [key, w] of wantCols) {
    const have = haveCols.get(key)?.cols ?? new Set<string>();
    const existing = actual.tables.get(tableKey(w.it.schema, w.it.table)) ?? new Set<string>();
    const missingCols = [...w.cols].filter((c) => !existing.has(c));
    if (missingCols.length > 0) {
      warnings.push({ code: 'TABLE_MISSING', message: `columns ${missingCols.map((c) => `\`${c}\``).join(', ')} of \`${w.it.schema}.${w.it.table}\` do not exist in the warehouse` });
    }
    const add = ordered([...w.cols].filter((c) => !have.has(c) && existing.has(c)), w.it.schema, w.it.table);
    if (add.length > 0) step('grant', { ...w.it, columns: add });
  }
  for (const [key, h] of haveCols) {
    const want = wantCols.get(key)?.cols ?? new Set<string>();
    const extra = ordered([...h.cols].filter((c) => !want.has(c)), h.it.schema, h.it.table);
    if (extra.length === 0) continue;
    const it = { ...h.it, columns: extra };
    const stale = extra.filter((c) => actual.ledger.has(ledgerKeys({ ...h.it, columns: [c] })[0] as string));
    const hand = extra.filter((c) => !stale.includes(c));
    if (stale.length > 0) step('revoke', { ...h.it, columns: stale });
    if (hand.length > 0) classify({ ...it, columns: hand });
  }

  // ---- everything else item by item
  // a warehouse without privilege items (a first sync) holds none of them: no key is hashed to find out
  const holds = actual.items.size > 0;
  // walk the desired list; desired keys are looked up (and desired.items built) only for what the warehouse holds
  for (let i = 0; i < desired.list.length; i++) {
    const it = desired.list[i] as Item;
    const key = desired.keys[i] as string;
    if (it.k === 'columns' || (holds && actual.items.has(key)) || !usable(it)) continue;
    if (it.k === 'role' && actual.roles.has(it.role)) continue;
    step('grant', it, key);
  }
  for (const [key, it] of actual.items) {
    if (it.k === 'columns' || desired.items.has(key)) continue;
    if (it.k === 'role') {
      dropRole(it, key);
      continue;
    }
    // a table-scoped run does not see the schema's other tables, which may be why the role holds USAGE
    if (it.k === 'usage' && desired.scope === 'tables') continue;
    if (actual.ledger.has(key)) step('revoke', it, key);
    else classify(it);
  }

  /**
   * A managed role the desired state no longer has (its group or user is gone, or a personal role
   * is no longer needed). Only a full plan sees every role, so only a full plan drops one; only a
   * role Steward created (it is in the ledger) is dropped, and only under drift policy `revoke`.
   */
  function dropRole(it: Extract<Item, { k: 'role' }>, key: string): void {
    if (desired.scope !== 'full') return;
    if (!actual.ledger.has(key)) {
      drift.push({ item: it, key, action: 'report', message: `role \`${it.role}\` has Steward's prefix but was not created by Steward: reported, never dropped` });
      return;
    }
    if (actual.rolesInUse?.has(it.role) === true) {
      drift.push({ item: it, key, action: 'report', message: `role \`${it.role}\` corresponds to no Steward principal, but it owns objects or holds privileges in another database: drop it by hand` });
      return;
    }
    if (target.drift === 'revoke') step('revoke', it, key);
    else drift.push({ item: it, key, action: 'report', message: `role \`${it.role}\` corresponds to no Steward principal any more; drift policy \`report\` leaves it in place` });
  }

  function classify(it: Item): void {
    const inScope = managedScope(it);
    const action = inScope && target.drift === 'revoke' ? 'revoke' : 'report';
    drift.push({ item: it, key: itemKey(it), action, message: driftMessage(it, inScope) });
    if (action === 'revoke') step('revoke', it);
  }

  /** May Steward change this item without touching an unmanaged role or object? */
  function managedScope(it: Item): boolean {
    switch (it.k) {
      case 'role':
        return false;
      case 'member':
        return managedRole(it.role) || managedRole(it.member);
      case 'usage':
        return managedRole(it.role) && managedSchemas.has(it.schema);
      case 'table':
      case 'columns':
        return managedRole(it.role) && managedTables.has(tableKey(it.schema, it.table));
      case 'rls':
        return managedTables.has(tableKey(it.schema, it.table));
      case 'policy':
        return it.name.startsWith(target.rolePrefix) && managedTables.has(tableKey(it.schema, it.table));
      default: {
        const never: never = it;
        return never;
      }
    }
  }

  sortSteps(steps);
  drift.sort((a, b) => (a.key < b.key ? -1 : 1));
  return { target: target.name, dialect: 'postgres', scope: desired.scope, steps, drift, warnings, summary: summarize(steps, drift, warnings) };
}

function driftMessage(it: Item, inScope: boolean): string {
  const tail = inScope ? '' : ' (outside what Steward manages: reported, never changed)';
  switch (it.k) {
    case 'role':
      return `role \`${it.role}\` was not created by this plan${tail}`;
    case 'member':
      return `\`${it.member}\` was made a member of \`${it.role}\` by hand${tail}`;
    case 'usage':
      return `USAGE on schema \`${it.schema}\` was granted to \`${it.role}\` by hand${tail}`;
    case 'table':
      return `${it.priv} on \`${it.schema}.${it.table}\` was granted to \`${it.role}\` by hand${tail}`;
    case 'columns':
      return `${it.priv} (${it.columns.join(', ')}) on \`${it.schema}.${it.table}\` was granted to \`${it.role}\` by hand${tail}`;
    case 'rls':
      return `row level security on \`${it.schema}.${it.table}\` was enabled by hand${tail}`;
    case 'policy':
      return `policy \`${it.name}\` on \`${it.schema}.${it.table}\` for \`${it.role}\` was created by hand${tail}`;
    default: {
      const never: never = it;
      return never;
    }
  }
}

/** Sorts steps by rank (see the module comment), then by SQL text, for a stable plan. */
function sortSteps(steps: Step[]): void {
  const buckets: Step[][] = Array.from({ length: Object.keys(ORDER).length }, () => []);
  for (const s of steps) (buckets[RANK[s.op][s.item.k]] as Step[]).push(s);
  let i = 0;
  for (const b of buckets) {
    // equal texts are rare: test for them second (a length check settles most)
    b.sort((x, y) => (x.sql < y.sql ? -1 : x.sql === y.sql ? 0 : 1));
    for (const s of b) steps[i++] = s;
  }
}

function* filtered<T>(items: Iterable<T>, keep: (x: T) => boolean): Iterable<T> {
  for (const x of items) if (keep(x)) yield x;
}

export function summarize(steps: readonly Step[], drift: readonly DriftItem[], warnings: readonly SyncWarning[]): PlanSummary {
  const byKind: Record<string, { grant: number; revoke: number }> = {};
  let grants = 0;
  for (const s of steps) {
    const e = (byKind[s.item.k] ??= { grant: 0, revoke: 0 });
    e[s.op]++;
    if (s.op === 'grant') grants++;
  }
  return {
    statements: steps.length,
    grants,
    revokes: steps.length - grants,
    byKind,
    drift: drift.length,
    warnings: warnings.length,
  };
}
