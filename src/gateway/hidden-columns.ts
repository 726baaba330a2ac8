/**
 * Does a query name a column the principal may not read, anywhere in it?
 *
 * Hidden columns are absent from the rewrite, so DuckDB would fail to bind
 * such a name, or, worse, bind it to a same-named column of an outer query
 * (`SELECT (SELECT ssn FROM t x LIMIT 1) FROM (SELECT 'a' AS ssn) o` would
 * silently answer `'a'`). So the name is resolved here, on the analyzed tree,
 * as DuckDB's binder would resolve it if every catalog table had all of its
 * columns: scope by scope, innermost first (correlated subqueries, lateral
 * joins), through aliases (an inner alias shadows an outer one), derived
 * tables, CTEs and `*` (which carries hidden columns into a derived table's
 * columns, so `WITH c AS (SELECT * FROM t) SELECT ssn FROM c` names the hidden
 * `ssn`). A name that resolves to a hidden column is refused, naming the column
 * and its table; one that resolves elsewhere, or that this walk cannot place
 * (a scope with `COLUMNS(…)`), is left to DuckDB's binder.
 *
 * Runs after `analyzeStatement` (which has validated every node and renamed
 * CTEs), before the rewrite. Pure: no I/O.
 */
import { asciiLower, type Json } from './analyze.js';

/** A catalog table reference of the analyzed tree, with its columns in the principal's view. */
export interface CatalogColumns {
  /** `catalog.database.table`. */
  readonly full: string;
  /** Visible columns, in table order (what `t(a, b)` renames). */
  readonly visible: readonly string[];
  readonly hidden: readonly string[];
}

/** A hidden column a query names: the column and its table (`catalog.database.table`). */
export interface HiddenReference {
  readonly column: string;
  readonly table: string;
}

/** Output columns of a table, subquery or CTE: each name with the table whose hidden column it is (null: not hidden). */
interface Columns {
  readonly names: ReadonlyMap<string, string | null>;
  /** True when there may be columns not listed (`COLUMNS(…)`, unpacked structs): names then may bind here. */
  readonly open: boolean;
}

interface Binding {
  readonly alias: string;
  readonly columns: Columns;
}

interface Scope {
  readonly bindings: Binding[];
  /** Select-list aliases of this SELECT: ORDER BY binds to them first. */
  readonly selectAliases: ReadonlySet<string>;
  /** Lambda parameters: they shadow columns inside the lambda. */
  readonly lambdas: ReadonlySet<string>;
  readonly parent: Scope | null;
}

const OPEN: Columns = { names: new Map(), open: true };
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Thrown inside the walk to stop at the first hidden reference. */
class Found {
  constructor(readonly ref: HiddenReference) {}
}

/**
 * The first hidden column the statement names, or null.
 *
 * @example
 *   findHiddenReference(analysis.statement, new Map([[node, { full: 'lake.claims.patient_claims', visible: ['claim_id'], hidden: ['ssn'] }]]));
 *   // `… WHERE EXISTS (SELECT 1 FROM claims.patient_claims q WHERE q.ssn = 'x')` → { column: 'ssn', table: 'lake.claims.patient_claims' }
 */
export function findHiddenReference(statement: Json, catalog: ReadonlyMap<Json, CatalogColumns>): HiddenReference | null {
  const walker = new Walker(catalog);
  try {
    walker.query(statement['node'], null);
    return null;
  } catch (e) {
    if (e instanceof Found) return e.ref;
    throw e;
  }
}

class Walker {
  /** Output columns of each CTE, by the name the analyzer generated for it (unique in the statement). */
  private readonly ctes = new Map<string, Columns>();

  constructor(private readonly catalog: ReadonlyMap<Json, CatalogColumns>) {}

  /** A query node's output columns, after checking every name in it. */
  query(node: unknown, outer: Scope | null): Columns {
    if (!isObj(node)) return OPEN;
    this.cteMap(node, outer);
    switch (node['type']) {
      case 'SELECT_NODE':
        return this.select(node, outer);
      case 'RECURSIVE_CTE_NODE': {
        const anchor = this.query(node['left'], outer);
        this.ctes.set(str(node['cte_name']), renamed(anchor, list(node['aliases'])));
        this.query(node['right'], outer);
        this.modifiers(node, { ...leaf(outer), bindings: [{ alias: '', columns: anchor }] });
        return anchor;
      }
      default: {
        // Set operations: every branch is checked; the result may carry any branch's names.
        const parts = [node['left'], node['right'], ...list(node['children'])].filter(isObj).map((c) => this.query(c, outer));
        const out = union(parts);
        this.modifiers(node, { ...leaf(outer), bindings: [{ alias: '', columns: out }] });
        return out;
      }
    }
  }

  private cteMap(node: Json, outer: Scope | null): void {
    const map = node['cte_map'];
    if (!isObj(map)) return;
    for (const entry of list(map['map'])) {
      if (!isObj(entry) || !isObj(entry['value'])) continue;
      const value = entry['value'];
      const query = isObj(value['query']) ? value['query']['node'] : undefined;
      const cols = this.query(query, outer);
      this.ctes.set(str(entry['key']), renamed(cols, list(value['aliases'])));
    }
  }

  private select(node: Json, outer: Scope | null): Columns {
    const selectAliases = new Set(list(node['select_list']).filter(isObj).map((e) => asciiLower(str(e['alias']))).filter((a) => a !== ''));
    const scope: Scope = { bindings: [], selectAliases, lambdas: new Set(), parent: outer };
    this.from(node['from_table'], scope);
    const names = new Map<string, string | null>();
    let open = false;
    for (const e of list(node['select_list'])) {
      if (!isObj(e)) continue;
      this.expr(e, scope, false);
      const alias = asciiLower(str(e['alias']));
      if (e['class'] === 'STAR' && alias === '') {
        const star = this.star(e, scope);
        for (const [k, v] of star.names) if (!names.has(k)) names.set(k, v);
        open ||= star.open;
      } else if (alias !== '') names.set(alias, null);
      else if (e['class'] === 'COLUMN_REF') names.set(asciiLower(str(list(e['column_names']).at(-1))), this.originOf(list(e['column_names']).map(str), scope));
    }
    for (const k of ['where_clause', 'having', 'qualify']) this.expr(node[k], scope, false);
    for (const g of list(node['group_expressions'])) this.expr(g, scope, false);
    this.modifiers(node, scope);
    return { names, open };
  }

  private modifiers(node: Json, scope: Scope): void {
    for (const m of list(node['modifiers'])) {
      if (!isObj(m)) continue;
      for (const o of list(m['orders'])) if (isObj(o)) this.expr(o['expression'], scope, true);
      for (const e of list(m['distinct_on_targets'])) this.expr(e, scope, true);
      this.expr(m['limit'], scope, false);
      this.expr(m['offset'], scope, false);
    }
  }

  /** Adds the bindings of a FROM clause to `scope`; a subquery in it sees the bindings to its left (DuckDB joins laterally on its own). */
  private from(ref: unknown, scope: Scope): void {
    if (!isObj(ref)) return;
    const alias = asciiLower(str(ref['alias']));
    const known = this.catalog.get(ref);
    if (known !== undefined) {
      scope.bindings.push({ alias, columns: catalogColumns(known, list(ref['column_name_alias'])) });
      return;
    }
    switch (ref['type']) {
      case 'JOIN': {
        const before = scope.bindings.length;
        this.from(ref['left'], scope);
        this.from(ref['right'], scope);
        // `USING (ssn)` names the column on both sides.
        for (const c of list(ref['using_columns'])) {
          for (const b of scope.bindings.slice(before)) hiddenIn(b.columns, asciiLower(str(c)));
        }
        this.expr(ref['condition'], scope, false);
        return;
      }
      case 'SUBQUERY': {
        const sub = isObj(ref['subquery']) ? ref['subquery']['node'] : undefined;
        scope.bindings.push({ alias, columns: renamed(this.query(sub, scope), list(ref['column_name_alias'])) });
        return;
      }
      case 'EXPRESSION_LIST': {
        const rows = list(ref['values']);
        for (const row of rows) for (const e of list(row)) this.expr(e, scope, false);
        const width = list(rows[0]).length;
        const names = new Map(Array.from({ length: width }, (_, i): [string, null] => [`col${i}`, null]));
        scope.bindings.push({ alias, columns: renamed({ names, open: false }, list(ref['column_name_alias'])) });
        return;
      }
      case 'BASE_TABLE': {
        // After the analyzer, only CTE references are left here.
        const cte = this.ctes.get(str(ref['table_name'])) ?? OPEN;
        scope.bindings.push({ alias, columns: renamed(cte, list(ref['column_name_alias'])) });
        return;
      }
      default:
        return;
    }
  }

  /** Checks every column name in an expression; `orderBy` lets bare names bind to select aliases first. */
  private expr(e: unknown, scope: Scope, orderBy: boolean): void {
    if (Array.isArray(e)) {
      for (const x of e) this.expr(x, scope, orderBy);
      return;
    }
    if (!isObj(e)) return;
    switch (e['class']) {
      case 'COLUMN_REF':
        this.originOf(list(e['column_names']).map(str), scope, orderBy);
        return;
      case 'SUBQUERY':
        this.query(isObj(e['subquery']) ? e['subquery']['node'] : undefined, scope);
        this.expr(e['child'], scope, orderBy);
        return;
      case 'LAMBDA': {
        const params = new Set<string>();
        collectNames(e['lhs'], params);
        this.expr(e['expr'], { ...leaf(scope), lambdas: params }, orderBy);
        return;
      }
      case 'STAR':
        this.star(e, scope);
        this.expr(e['expr'], scope, orderBy);
        for (const r of list(e['replace_list'])) if (isObj(r)) this.expr(r['value'], scope, orderBy);
        return;
      default:
        // Every other node kind (validated by the analyzer): its nested expressions, whatever the key.
        for (const v of Object.values(e)) if (typeof v === 'object' && v !== null) this.expr(v, scope, orderBy);
    }
  }

  /** The columns a `*` stands for, checking the names it excludes or renames (naming a hidden column there names it too). */
  private star(e: Json, scope: Scope): Columns {
    const relation = asciiLower(str(e['relation_name']));
    const from = relation === '' ? scope.bindings : scope.bindings.filter((b) => b.alias === relation);
    const all = union(from.map((b) => b.columns));
    const named = [
      ...list(e['exclude_list']).map(str),
      ...list(e['qualified_exclude_list']).map((q) => (isObj(q) ? str(q['column']) : '')),
      ...list(e['rename_list']).map((r) => (isObj(r) && isObj(r['key']) ? str(r['key']['column']) : '')),
    ].map(asciiLower);
    for (const n of named) hiddenIn(all, n);
    const names = new Map([...all.names].filter(([k]) => !named.includes(k)));
    const open = all.open || e['columns'] === true || e['unpacked'] === true || isObj(e['expr']);
    return { names, open };
  }

  /**
   * Resolves a column name as DuckDB's binder would with every column present;
   * throws `Found` for a hidden column and returns its origin otherwise.
   */
  private originOf(written: readonly string[], scope: Scope, orderBy = false): string | null {
    const names = written.map(asciiLower);
    if (names.length === 0) return null;
    if (names.length >= 2) {
      const [q = '', c = ''] = names;
      for (let s: Scope | null = scope; s !== null; s = s.parent) {
        if (s.lambdas.has(q)) return null;
        const b = s.bindings.find((x) => x.alias === q);
        if (b !== undefined) return hiddenIn(b.columns, c);
      }
      // No table of that name: `q.c` reads field `c` of column `q`.
    }
    const n = names[0] as string;
    for (let s: Scope | null = scope; s !== null; s = s.parent) {
      if (s.lambdas.has(n)) return null;
      if (orderBy && s === scope && s.selectAliases.has(n)) return null;
      const here = s.bindings.filter((b) => b.columns.names.has(n));
      for (const b of here) hiddenIn(b.columns, n);
      if (here.length > 0) return null;
      // A scope with columns this walk cannot list may hold the name: DuckDB decides.
      if (s.bindings.some((b) => b.columns.open)) return null;
    }
    return null;
  }
}

/** Throws `Found` when `name` is a hidden column of `columns`; its origin otherwise. */
function hiddenIn(columns: Columns, name: string): string | null {
  const table = columns.names.get(name);
  if (table !== undefined && table !== null) throw new Found({ column: name, table });
  return null;
}

/** A catalog table under the principal's view: `t(a, b)` renames the visible columns in order; hidden ones keep their names. */
function catalogColumns(t: CatalogColumns, aliases: readonly unknown[]): Columns {
  const names = new Map<string, string | null>();
  t.visible.forEach((c, i) => names.set(asciiLower(i < aliases.length ? str(aliases[i]) : c), null));
  for (const c of t.hidden) if (!names.has(asciiLower(c))) names.set(asciiLower(c), t.full);
  return { names, open: false };
}

/** Columns renamed in order by `AS x(a, b)` or `WITH c(a, b)`. */
function renamed(columns: Columns, aliases: readonly unknown[]): Columns {
  if (aliases.length === 0) return columns;
  const entries = [...columns.names];
  const names = new Map<string, string | null>();
  entries.forEach(([k, v], i) => names.set(i < aliases.length ? asciiLower(str(aliases[i])) : k, v));
  for (const a of aliases.slice(entries.length)) names.set(asciiLower(str(a)), null);
  return { names, open: columns.open };
}

function union(parts: readonly Columns[]): Columns {
  const names = new Map<string, string | null>();
  for (const p of parts) for (const [k, v] of p.names) if (!names.has(k) || v !== null) names.set(k, v);
  return { names, open: parts.some((p) => p.open) };
}

/** A scope with no bindings of its own under `parent` (lambda bodies, set-operation modifiers). */
function leaf(parent: Scope | null): Scope {
  return { bindings: [], selectAliases: new Set(), lambdas: new Set(), parent };
}

function collectNames(e: unknown, into: Set<string>): void {
  if (!isObj(e)) return;
  if (e['class'] === 'COLUMN_REF') {
    const names = list(e['column_names']);
    if (names.length === 1) into.add(asciiLower(str(names[0])));
    return;
  }
  for (const c of list(e['children'])) collectNames(c, into);
}
