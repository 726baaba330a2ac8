/**
 * A dashboard's rows for its visuals, in the console: the viewer's filter
 * choices applied, and a category's values summed. The same semantics as the
 * embedded page (src/embed/render.ts): a filter narrows only the datasets that
 * have its column; a range compares as text (ISO dates and months sort so).
 */

export interface DatasetData {
  readonly columns: readonly string[];
  readonly rows: readonly (readonly unknown[])[];
  readonly truncated: boolean;
}

export interface ViewFilter {
  readonly id: string;
  readonly title?: string;
  readonly type: 'range' | 'select' | string;
  readonly column: string;
}

/** A range's bounds, or a select's value; empty means no narrowing. */
export type FilterChoice = { readonly from: string; readonly to: string } | string;

export type Row = Readonly<Record<string, unknown>>;

export function rowsOf(ds: DatasetData, filters: readonly ViewFilter[], choices: Readonly<Record<string, FilterChoice>>): Row[] {
  const active = filters.filter((f) => ds.columns.includes(f.column));
  return ds.rows
    .map((r) => Object.fromEntries(ds.columns.map((c, i) => [c, r[i]])) as Row)
    .filter((o) => active.every((f) => admits(f, choices[f.id], String(o[f.column] ?? ''))));
}

function admits(f: ViewFilter, choice: FilterChoice | undefined, value: string): boolean {
  if (choice === undefined || choice === '') return true;
  if (typeof choice === 'string') return value === choice;
  return (choice.from === '' || value >= choice.from) && (choice.to === '' || value <= choice.to);
}

/** Sum of `y` per distinct `x`, in category order. */
export function sumBy(rows: readonly Row[], x: string, y: string): [string, number][] {
  const m = new Map<string, number>();
  for (const r of rows) m.set(String(r[x]), (m.get(String(r[x])) ?? 0) + Number(r[y] ?? 0));
  return [...m.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
}

export function total(rows: readonly Row[], y: string): number {
  return rows.reduce((s, r) => s + Number(r[y] ?? 0), 0);
}

/** Distinct values of a select filter's column over every dataset that has it. */
export function choicesOf(data: Readonly<Record<string, DatasetData>>, column: string): string[] {
  const out = new Set<string>();
  for (const ds of Object.values(data)) {
    const i = ds.columns.indexOf(column);
    if (i >= 0) for (const r of ds.rows) out.add(String(r[i] ?? ''));
  }
  return [...out].sort();
}
