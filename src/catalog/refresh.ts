/**
 * Refreshing a table re-inspects its source and compares the new columns with
 * the registered ones. Pure functions: the caller inspects, stores, audits.
 *
 * Columns are matched by name. A column whose name changed is one removal and
 * one addition (the source cannot tell a rename from a drop plus an add).
 * Moving a column without changing its type is not a change.
 */
import type { Column, DataFilter } from '../policy/model.js';
import { columnsOf } from '../policy/predicate.js';

export interface ColumnRetype {
  readonly name: string;
  readonly from: string;
  readonly to: string;
}

export interface ColumnDiff {
  /** In `after` order. */
  readonly added: readonly Column[];
  /** In `before` order. */
  readonly removed: readonly Column[];
  /** In `after` order. */
  readonly retyped: readonly ColumnRetype[];
}

export function diffColumns(before: readonly Column[], after: readonly Column[]): ColumnDiff {
  const old = new Map(before.map((c) => [c.name, c]));
  const now = new Map(after.map((c) => [c.name, c]));
  const added = after.filter((c) => !old.has(c.name));
  const removed = before.filter((c) => !now.has(c.name));
  const retyped: ColumnRetype[] = [];
  for (const c of after) {
    const prev = old.get(c.name);
    // Types compare case-insensitively: sources differ in how they spell them (`varchar`/`VARCHAR`).
    if (prev !== undefined && prev.type.toUpperCase() !== c.type.toUpperCase()) retyped.push({ name: c.name, from: prev.type, to: c.type });
  }
  return { added, removed, retyped };
}

export function isUnchanged(diff: ColumnDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.retyped.length === 0;
}

export interface TableRefresh {
  /** `catalog.database.table`. */
  readonly table: string;
  /** Absent when the refresh failed. */
  readonly diff?: ColumnDiff;
  /** Why the source could not be read; the table keeps its registered columns. */
  readonly error?: string;
}

export interface RefreshSummary {
  readonly tables: number;
  readonly unchanged: number;
  readonly changed: number;
  readonly failed: number;
  readonly added: number;
  readonly removed: number;
  readonly retyped: number;
  /** One line per changed or failed table, sorted by table, for the CLI and the audit log. */
  readonly lines: readonly string[];
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Describes one table's diff in a line: `+2 columns (a, b); -1 column (c); 1 retyped (d: INTEGER → BIGINT)`. */
export function describeDiff(diff: ColumnDiff): string {
  if (isUnchanged(diff)) return 'unchanged';
  const parts: string[] = [];
  if (diff.added.length > 0) parts.push(`+${plural(diff.added.length, 'column')} (${diff.added.map((c) => c.name).join(', ')})`);
  if (diff.removed.length > 0) parts.push(`-${plural(diff.removed.length, 'column')} (${diff.removed.map((c) => c.name).join(', ')})`);
  if (diff.retyped.length > 0) parts.push(`${diff.retyped.length} retyped (${diff.retyped.map((r) => `${r.name}: ${r.from} → ${r.to}`).join(', ')})`);
  return parts.join('; ');
}

export function summarizeRefresh(refreshes: readonly TableRefresh[]): RefreshSummary {
  let unchanged = 0;
  let changed = 0;
  let failed = 0;
  let added = 0;
  let removed = 0;
  let retyped = 0;
  const lines: string[] = [];
  for (const r of [...refreshes].sort((a, b) => (a.table < b.table ? -1 : a.table > b.table ? 1 : 0))) {
    if (r.diff === undefined) {
      failed += 1;
      lines.push(`${r.table}: failed: ${r.error ?? 'unknown error'}`);
      continue;
    }
    if (isUnchanged(r.diff)) {
      unchanged += 1;
      continue;
    }
    changed += 1;
    added += r.diff.added.length;
    removed += r.diff.removed.length;
    retyped += r.diff.retyped.length;
    lines.push(`${r.table}: ${describeDiff(r.diff)}`);
  }
  return { tables: refreshes.length, unchanged, changed, failed, added, removed, retyped, lines };
}

export interface DanglingReference {
  readonly filter: string;
  /** Removed columns the filter's predicate or column lists name. */
  readonly columns: readonly string[];
}

/**
 * Data filters of the refreshed table that name a removed column. Such a filter
 * can no longer be evaluated as written; the caller should warn (or refuse to
 * apply the refresh) rather than silently change what the filter admits.
 */
export function danglingReferences(diff: ColumnDiff, filters: readonly DataFilter[]): DanglingReference[] {
  const gone = new Set(diff.removed.map((c) => c.name));
  if (gone.size === 0) return [];
  const out: DanglingReference[] = [];
  for (const f of filters) {
    const named = new Set<string>([...(f.predicate === null ? [] : columnsOf(f.predicate)), ...(f.columns ?? []), ...(f.excludedColumns ?? [])]);
    const hit = [...named].filter((c) => gone.has(c)).sort();
    if (hit.length > 0) out.push({ filter: f.name, columns: hit });
  }
  return out;
}
