/**
 * The analysis-rule checker: is a clean-room query allowed by the rule of
 * every configured table it reads? Decided on DuckDB's statement tree
 * (`json_serialize_sql`, parsed by the gateway's parser), never on the text.
 *
 * Aggregation and list queries must have one plain shape, and anything else is
 * refused with the rule named:
 *
 *     SELECT <dimensions>, <SUM|COUNT|AVG>(<aggregate columns>) …
 *     FROM t1 JOIN t2 ON t1.<join col> = t2.<join col> [AND|OR …] …
 *     [WHERE <conditions on dimension columns>] [GROUP BY <dimensions>] [ORDER BY …] [LIMIT n]
 *
 * No subqueries, CTEs, set operations, window functions, HAVING, FILTER,
 * GROUPING SETS or parameters: each would let a query compute over rows before
 * the output constraints apply (or compare two near-identical results). The
 * output constraints themselves are returned for the runner to enforce.
 * Templates (custom rules) are checked for approval only: every table they
 * read must list them.
 *
 * Pure: no I/O.
 */
import { StewardError } from '../errors.js';
import { MAX_TREE_DEPTH, asciiLower, type Json } from '../gateway/analyze.js';
import type { AggregateFunction, AnalysisRule, ConfiguredTable, JoinOperator } from './cleanroom-types.js';
import { ruleLabel } from './cleanroom-rules.js';

/** What the checker needs of a configured table. */
export type RoomTable = Pick<ConfiguredTable, 'name' | 'member' | 'columns' | 'rule'>;

/** One reference to a configured table in the query. */
export interface TableRef {
  readonly table: RoomTable;
  /** The name the query uses for it (its alias, or its name), lowercase. */
  readonly alias: string;
  /** The BASE_TABLE node of the tree. */
  readonly node: Json;
}

export interface ConstraintCheck {
  readonly alias: string;
  readonly table: string;
  readonly column: string;
  readonly minimum: number;
}

export interface CheckedQuery {
  readonly kind: AnalysisRule['type'];
  readonly refs: readonly TableRef[];
  /** Labels of the rules checked, e.g. `aggregation rule of \`purchase\``, one per table. */
  readonly rules: readonly string[];
  /** Output constraints to enforce, one per table reference and constraint. */
  readonly constraints: readonly ConstraintCheck[];
  /**
   * Pairs of columns (`alias.column`) compared with `=` in an ON condition and
   * equal (by `=`) on every row the joins produce: each pair is an AND-ed
   * conjunct of the ON condition, and every join of the query is INNER. Empty
   * when any join is an outer join.
   */
  readonly equalColumns: readonly (readonly [string, string])[];
}

export interface CheckInput {
  /** The statement (`{ node, named_param_map }`). */
  readonly statement: Json;
  /** Configured tables by name. */
  readonly tables: ReadonlyMap<string, RoomTable>;
  /** Set when the query is a template run. */
  readonly template?: string;
}

const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const arr = (o: Json, k: string): unknown[] => (Array.isArray(o[k]) ? (o[k] as unknown[]) : []);

function refuse(label: string, why: string, path = 'sql'): StewardError {
  return new StewardError('STEWARD_E_FORBIDDEN', `${label}: ${why}`, { details: [{ path, message: why }] });
}

/** Every BASE_TABLE node and every CTE name anywhere in the tree; table functions refused wherever they are. */
function scanTree(root: unknown): { bases: Json[]; ctes: string[]; parameters: boolean } {
  const bases: Json[] = [];
  const ctes: string[] = [];
  let parameters = false;
  const walk = (v: unknown, depth: number): void => {
    if (depth > MAX_TREE_DEPTH * 4) throw refuse('clean room', `the query is nested too deeply`);
    if (Array.isArray(v)) {
      for (const x of v) walk(x, depth + 1);
      return;
    }
    if (!isObj(v)) return;
    if (v['type'] === 'BASE_TABLE' && 'table_name' in v) bases.push(v);
    if (v['type'] === 'TABLE_FUNCTION') throw refuse('clean room', 'table functions are not allowed: queries read configured tables only');
    if (v['class'] === 'PARAMETER') parameters = true;
    if (isObj(v['cte_map'])) for (const e of arr(v['cte_map'], 'map')) if (isObj(e)) ctes.push(asciiLower(str(e['key'])));
    for (const x of Object.values(v)) walk(x, depth + 1);
  };
  walk(root, 0);
  return { bases, ctes, parameters };
}

/** The configured tables the tree references; refuses catalog names, unknown tables and tables without a rule. */
function configuredRefs(bases: readonly Json[], ctes: readonly string[], tables: ReadonlyMap<string, RoomTable>): TableRef[] {
  const refs: TableRef[] = [];
  for (const node of bases) {
    const written = [str(node['catalog_name']), str(node['schema_name']), str(node['table_name'])].filter((p) => p !== '').join('.');
    if (str(node['catalog_name']) !== '' || str(node['schema_name']) !== '') {
      throw refuse('clean room', `table \`${written}\` is written as a catalog table: a clean room reads only its configured tables, by their name in the collaboration`, 'table');
    }
    const name = asciiLower(str(node['table_name']));
    const table = tables.get(name);
    if (table === undefined) {
      if (ctes.includes(name)) continue;
      throw new StewardError('STEWARD_E_NOT_FOUND', `table \`${written}\` is not a configured table of this collaboration`, { details: [{ path: 'table', message: written }] });
    }
    if (ctes.includes(name)) throw refuse(ruleLabel(table), `a WITH clause may not reuse the name of configured table \`${name}\``);
    if (table.rule === undefined) throw refuse(`configured table \`${table.name}\``, 'it has no analysis rule yet, so it cannot be queried', 'table');
    if (node['at_clause'] !== null && node['at_clause'] !== undefined) throw refuse(ruleLabel(table), 'time travel (`AT (...)`) is not allowed');
    if (node['sample'] !== null && node['sample'] !== undefined) throw refuse(ruleLabel(table), 'TABLESAMPLE is not allowed');
    refs.push({ table, alias: asciiLower(str(node['alias']) || str(node['table_name'])), node });
  }
  return refs;
}

/** Checks `input.statement` against the rules of the tables it reads; throws the refusal naming the rule. */
export function checkRoomQuery(input: CheckInput): CheckedQuery {
  const scan = scanTree(input.statement);
  const refs = configuredRefs(scan.bases, scan.ctes, input.tables);
  if (refs.length === 0) throw refuse('clean room', 'the query reads no configured table');
  const distinct = [...new Map(refs.map((r) => [r.table.name, r.table])).values()];
  const rules = distinct.map(ruleLabel);
  if (input.template !== undefined) {
    for (const t of distinct) {
      const rule = t.rule as AnalysisRule;
      if (rule.type !== 'custom') throw refuse(ruleLabel(t), `template \`${input.template}\` cannot read it: templates read only tables under a custom rule that lists them`);
      if (!rule.templates.includes(input.template)) throw refuse(ruleLabel(t), `template \`${input.template}\` is not approved by member \`${t.member}\``);
    }
    return { kind: 'custom', refs, rules, constraints: [], equalColumns: [] };
  }
  const custom = distinct.find((t) => t.rule?.type === 'custom');
  if (custom !== undefined) throw refuse(ruleLabel(custom), 'only the templates it lists may read this table');
  const kinds = new Set(distinct.map((t) => t.rule?.type));
  if (kinds.size > 1) throw refuse(rules.join(', '), 'one query cannot read tables under both aggregation and list rules');
  if (scan.parameters) throw refuse(rules.join(', '), 'parameters are only for templates');
  if (scan.ctes.length > 0) throw refuse(rules.join(', '), 'WITH (common table expressions) is not allowed: it would compute over rows before the output constraints apply');
  const kind = distinct[0]?.rule?.type === 'list' ? 'list' : 'aggregation';
  const shape = new ShapeChecker(kind, refs, rules.join(', '));
  shape.check(input.statement);
  return { kind, refs, rules, constraints: kind === 'aggregation' ? constraintsOf(refs) : [], equalColumns: shape.equalColumns() };
}

function constraintsOf(refs: readonly TableRef[]): ConstraintCheck[] {
  const out: ConstraintCheck[] = [];
  for (const r of refs) {
    if (r.table.rule?.type !== 'aggregation') continue;
    for (const c of r.table.rule.outputConstraints) out.push({ alias: r.alias, table: r.table.name, column: c.column, minimum: c.minimum });
  }
  return out;
}

const SELECT_KEYS = new Set(['type', 'modifiers', 'cte_map', 'select_list', 'from_table', 'where_clause', 'group_expressions', 'group_sets', 'aggregate_handling', 'having', 'sample', 'qualify']);
const JOIN_KEYS = new Set(['type', 'alias', 'sample', 'query_location', 'left', 'right', 'condition', 'join_type', 'ref_type', 'using_columns', 'delim_flipped', 'duplicate_eliminated_columns']);
const AGGREGATES: Readonly<Record<string, readonly [AggregateFunction, AggregateFunction]>> = {
  sum: ['SUM', 'SUM_DISTINCT'],
  count: ['COUNT', 'COUNT_DISTINCT'],
  avg: ['AVG', 'AVG'],
};
/** Arithmetic combines aggregate columns inside an aggregate; it needs no scalar-function allowance. */
const ARITHMETIC = new Set(['+', '-', '*', '/']);
const FILTER_OPERATORS = new Set(['OPERATOR_NOT', 'OPERATOR_IS_NULL', 'OPERATOR_IS_NOT_NULL', 'COMPARE_IN', 'COMPARE_NOT_IN']);

type Context = { readonly at: 'select' | 'filter' | 'group' | 'order' } | { readonly at: 'aggregate'; readonly fn: AggregateFunction };

/** Strips what does not change meaning (aliases, positions), to compare a selected expression with a grouped one. */
function shapeOf(e: unknown): string {
  return JSON.stringify(e, (k, v: unknown) => (k === 'alias' || k === 'query_location' ? undefined : v));
}

/** The aggregation and list shapes: one SELECT over joined configured tables (see the module comment). */
class ShapeChecker {
  private readonly byAlias = new Map<string, TableRef>();
  private readonly edges: [TableRef, TableRef][] = [];
  private readonly equalities: [string, string][] = [];
  private outerJoin = false;

  constructor(
    private readonly kind: 'aggregation' | 'list',
    private readonly refs: readonly TableRef[],
    private readonly label: string,
  ) {}

  check(statement: Json): void {
    const node = statement['node'];
    if (!isObj(node) || node['type'] !== 'SELECT_NODE') {
      throw this.no(node !== null && isObj(node) && node['type'] === 'SET_OPERATION_NODE' ? 'UNION, INTERSECT and EXCEPT are not allowed: each side would escape the output constraints' : 'only a plain SELECT is allowed');
    }
    for (const k of Object.keys(node)) if (!SELECT_KEYS.has(k)) throw this.no(`the query uses \`${k}\`, which is not allowed`);
    if (node['qualify'] !== null && node['qualify'] !== undefined) throw this.no('QUALIFY is not allowed');
    if (node['sample'] !== null && node['sample'] !== undefined) throw this.no('USING SAMPLE is not allowed');
    if (node['having'] !== null && node['having'] !== undefined) throw this.no('HAVING is not allowed: filter on dimension columns in WHERE');
    if (node['aggregate_handling'] !== 'STANDARD_HANDLING') throw this.no('GROUP BY ALL is not allowed: name the dimension columns');
    this.from(node['from_table'], 0);
    this.joinsRequired();
    if (node['where_clause'] !== null && node['where_clause'] !== undefined) this.expr(node['where_clause'], { at: 'filter' }, 0);
    const groups = arr(node, 'group_expressions');
    this.groupSets(node, groups.length);
    for (const g of groups) this.expr(g, { at: 'group' }, 0);
    const grouped = new Set(groups.map(shapeOf));
    const aliases = new Set<string>();
    let aggregates = 0;
    for (const item of arr(node, 'select_list')) {
      if (isObj(item) && str(item['alias']) !== '') aliases.add(asciiLower(str(item['alias'])));
      if (this.selectItem(item, grouped)) aggregates++;
    }
    if (this.kind === 'aggregation' && aggregates === 0) throw this.no('the query must aggregate: select at least one SUM, COUNT or AVG of an aggregate column');
    this.modifiers(node, grouped, aliases);
  }

  private no(why: string): StewardError {
    return refuse(this.label, why);
  }

  private ruleOf(ref: TableRef): AnalysisRule {
    return ref.table.rule as AnalysisRule;
  }

  /** FROM: configured tables joined with JOIN … ON; nothing else. */
  private from(ref: unknown, depth: number): void {
    if (depth > MAX_TREE_DEPTH) throw this.no('the query is nested too deeply');
    if (!isObj(ref)) throw this.no('a FROM clause is required');
    switch (ref['type']) {
      case 'BASE_TABLE': {
        const r = this.refs.find((x) => x.node === ref);
        if (r === undefined) throw this.no('only configured tables may be read');
        if (this.byAlias.has(r.alias)) throw this.no(`\`${r.alias}\` is used twice: give each table its own alias`);
        if (arr(ref, 'column_name_alias').length > 0) throw this.no('column aliases on a table are not allowed');
        this.byAlias.set(r.alias, r);
        return;
      }
      case 'JOIN': {
        for (const k of Object.keys(ref)) if (!JOIN_KEYS.has(k)) throw this.no(`joins with \`${k}\` are not allowed`);
        if (ref['ref_type'] !== 'REGULAR') throw this.no(`${str(ref['ref_type']).toLowerCase()} joins (and comma-separated tables) are not allowed: join with JOIN … ON on join columns`);
        // DuckDB's parse tree names FULL [OUTER] JOIN `FULL`; SEMI, ANTI and the rest stay refused.
        if (!['INNER', 'LEFT', 'RIGHT', 'FULL'].includes(str(ref['join_type']))) throw this.no(`\`${str(ref['join_type'])}\` joins are not allowed`);
        if (arr(ref, 'using_columns').length > 0) throw this.no('JOIN … USING is not allowed: write the condition with ON');
        this.from(ref['left'], depth + 1);
        this.from(ref['right'], depth + 1);
        if (ref['condition'] === null || ref['condition'] === undefined) throw this.no('a join needs an ON condition on join columns');
        if (ref['join_type'] !== 'INNER') this.outerJoin = true;
        this.joinCondition(ref['condition'], depth + 1, true);
        return;
      }
      case 'SUBQUERY':
        throw this.no('subqueries are not allowed: they would compute over rows before the output constraints apply');
      default:
        throw this.no(`\`${str(ref['type'])}\` in FROM is not allowed`);
    }
  }

  /** See `CheckedQuery.equalColumns`. */
  equalColumns(): readonly (readonly [string, string])[] {
    return this.outerJoin ? [] : this.equalities;
  }

  /** `conjunct`: `e` is the ON condition or an AND-ed part of it, so the rows the join keeps satisfy it. */
  private joinCondition(e: unknown, depth: number, conjunct: boolean): void {
    if (depth > MAX_TREE_DEPTH) throw this.no('the query is nested too deeply');
    if (!isObj(e)) throw this.no('unsupported join condition');
    if (e['class'] === 'CONJUNCTION') {
      const op: JoinOperator = e['type'] === 'CONJUNCTION_OR' ? 'OR' : 'AND';
      for (const r of this.byAlias.values()) {
        const rule = this.ruleOf(r);
        if (rule.type !== 'custom' && !rule.allowedJoinOperators.includes(op)) throw refuse(ruleLabel(r.table), `the join operator ${op} is not allowed`);
      }
      for (const c of arr(e, 'children')) this.joinCondition(c, depth + 1, conjunct && op === 'AND');
      return;
    }
    if (e['class'] !== 'COMPARISON' || e['type'] !== 'COMPARE_EQUAL') throw this.no('a join condition compares join columns with = (combined with AND or OR)');
    const left = this.column(e['left'], 'join');
    const right = this.column(e['right'], 'join');
    if (left.ref === right.ref) throw this.no('a join condition compares columns of two different tables');
    for (const side of [left, right]) {
      const rule = this.ruleOf(side.ref);
      if (rule.type === 'custom' || !rule.joinColumns.includes(side.column)) throw refuse(ruleLabel(side.ref.table), `column \`${side.column}\` is not a join column`);
    }
    this.edges.push([left.ref, right.ref]);
    if (conjunct) this.equalities.push([`${left.ref.alias}.${left.column}`, `${right.ref.alias}.${right.column}`]);
  }

  /** A join-required table (and every list table) must be joined with a table of another member. */
  private joinsRequired(): void {
    for (const r of this.refs) {
      const rule = this.ruleOf(r);
      const required = rule.type === 'list' || (rule.type === 'aggregation' && rule.joinRequired);
      if (!required) continue;
      const joined = this.edges.some(([a, b]) => (a === r && b.table.member !== r.table.member) || (b === r && a.table.member !== r.table.member));
      if (!joined) throw refuse(ruleLabel(r.table), `a query must join \`${r.table.name}\` with another member's table on its join columns`);
    }
  }

  private groupSets(node: Json, count: number): void {
    const sets = arr(node, 'group_sets');
    // The tree holds lossless numbers: compared as text.
    const plain = count === 0 ? sets.length === 0 : sets.length === 1 && Array.isArray(sets[0]) && sets[0].map(String).join(',') === [...Array(count).keys()].join(',');
    if (!plain) throw this.no('ROLLUP, CUBE and GROUPING SETS are not allowed');
    if (count > 0 && this.kind === 'list') throw this.no('GROUP BY is not allowed under a list rule');
  }

  /** One item of the select list; true when it is an aggregate. */
  private selectItem(item: unknown, grouped: ReadonlySet<string>): boolean {
    if (!isObj(item)) throw this.no('unsupported select item');
    if (item['class'] === 'STAR') throw this.no('SELECT * is not allowed: name the columns');
    if (this.isAggregate(item)) {
      this.aggregate(item);
      return true;
    }
    this.expr(item, { at: 'select' }, 0);
    if (this.kind === 'aggregation' && item['class'] !== 'CONSTANT' && !grouped.has(shapeOf(item))) {
      throw this.no(`every selected dimension must be in GROUP BY`);
    }
    return false;
  }

  private isAggregate(e: Json): boolean {
    return e['class'] === 'FUNCTION' && (Object.hasOwn(AGGREGATES, asciiLower(str(e['function_name']))) || asciiLower(str(e['function_name'])) === 'count_star');
  }

  private aggregate(e: Json): void {
    const name = asciiLower(str(e['function_name']));
    if (this.kind === 'list') throw this.no('aggregates are not allowed under a list rule');
    if (name === 'count_star') throw this.no('COUNT(*) is not allowed: count an aggregate column');
    if (e['filter'] !== null && e['filter'] !== undefined) throw this.no('FILTER on an aggregate is not allowed: it filters on rows the rule does not let you filter on');
    if (isObj(e['order_bys']) && arr(e['order_bys'], 'orders').length > 0) throw this.no('ORDER BY inside an aggregate is not allowed');
    if (e['export_state'] === true) throw this.no('EXPORT_STATE is not allowed');
    const children = arr(e, 'children');
    if (children.length !== 1) throw this.no(`${name.toUpperCase()} takes one argument here`);
    const pair = AGGREGATES[name] as readonly [AggregateFunction, AggregateFunction];
    this.expr(children[0], { at: 'aggregate', fn: e['distinct'] === true ? pair[1] : pair[0] }, 0);
  }

  private modifiers(node: Json, grouped: ReadonlySet<string>, aliases: ReadonlySet<string>): void {
    for (const m of arr(node, 'modifiers')) {
      if (!isObj(m)) throw this.no('unsupported modifier');
      switch (m['type']) {
        case 'ORDER_MODIFIER':
          for (const o of arr(m, 'orders')) {
            const e = isObj(o) ? o['expression'] : undefined;
            if (!isObj(e)) throw this.no('unsupported ORDER BY');
            const names = arr(e, 'column_names');
            if (e['class'] === 'COLUMN_REF' && names.length === 1 && aliases.has(asciiLower(str(names[0])))) continue;
            // A position could point past the select list at the runner's hidden constraint counts.
            if (e['class'] === 'CONSTANT') throw this.no('ORDER BY takes output names or expressions, not positions');
            this.selectItem(e, grouped);
          }
          break;
        case 'LIMIT_MODIFIER':
          for (const k of ['limit', 'offset']) {
            const v = m[k];
            if (v !== null && v !== undefined && !(isObj(v) && v['class'] === 'CONSTANT')) throw this.no('LIMIT and OFFSET take numbers');
          }
          break;
        case 'DISTINCT_MODIFIER':
          if (arr(m, 'distinct_on_targets').length > 0) throw this.no('DISTINCT ON is not allowed');
          break;
        default:
          throw this.no(`\`${str(m['type'])}\` is not allowed`);
      }
    }
  }

  /** A column reference, resolved to its table reference; refuses columns outside the collaboration. */
  private column(e: unknown, at: string): { ref: TableRef; column: string } {
    if (!isObj(e) || e['class'] !== 'COLUMN_REF') throw this.no(`only columns may be compared in a ${at} condition`);
    const names = arr(e, 'column_names').map((n) => str(n));
    if (names.length === 2) {
      const ref = this.byAlias.get(asciiLower(names[0] as string));
      if (ref === undefined) throw this.no(`\`${names[0] ?? ''}\` is not a table of the query`);
      return { ref, column: this.configured(ref, names[1] as string) };
    }
    if (names.length !== 1) throw this.no(`\`${names.join('.')}\`: name columns as \`column\` or \`table.column\``);
    const wanted = asciiLower(names[0] as string);
    const owners = [...this.byAlias.values()].filter((r) => r.table.columns.some((c) => asciiLower(c) === wanted));
    if (owners.length > 1) throw this.no(`column \`${names[0] ?? ''}\` is ambiguous: qualify it with its table`);
    const owner = owners[0];
    if (owner === undefined) throw this.no(`column \`${names[0] ?? ''}\` is not in the collaboration (no table of the query has it configured)`);
    return { ref: owner, column: this.configured(owner, names[0] as string) };
  }

  private configured(ref: TableRef, column: string): string {
    const found = ref.table.columns.find((c) => asciiLower(c) === asciiLower(column));
    if (found === undefined) throw refuse(ruleLabel(ref.table), `column \`${column}\` is not in the collaboration (not a configured column of \`${ref.table.name}\`)`);
    return found;
  }

  /** What a column may be used for under its table's rule, in this context. */
  private use(e: Json, ctx: Context): void {
    const { ref, column } = this.column(e, 'where');
    const rule = this.ruleOf(ref);
    const label = ruleLabel(ref.table);
    if (rule.type === 'list') {
      if (!rule.listColumns.includes(column)) throw refuse(label, `column \`${column}\` is not a list column`);
      return;
    }
    if (rule.type !== 'aggregation') throw refuse(label, 'only its templates may read this table');
    if (ctx.at === 'aggregate') {
      const agg = rule.aggregateColumns.find((a) => a.column === column);
      if (agg === undefined) throw refuse(label, `column \`${column}\` is not an aggregate column`);
      if (!agg.functions.includes(ctx.fn)) throw refuse(label, `column \`${column}\` may not be aggregated with ${ctx.fn.replace('_', ' ')} (allowed: ${agg.functions.join(', ').replaceAll('_', ' ')})`);
      return;
    }
    if (rule.dimensionColumns.includes(column)) return;
    if (ctx.at === 'group' && rule.joinColumns.includes(column)) throw refuse(label, `grouping by join column \`${column}\` is not allowed: it is not a dimension column`);
    if (ctx.at === 'filter') throw refuse(label, `filtering on column \`${column}\` is not allowed: it is not a dimension column`);
    throw refuse(label, `column \`${column}\` is not a dimension column`);
  }

  /** A scalar function must be allowed by the rule of every table the query reads. */
  private scalar(name: string): void {
    for (const r of this.byAlias.values()) {
      const rule = this.ruleOf(r);
      if (rule.type === 'custom' || !rule.scalarFunctions.includes(name)) throw refuse(ruleLabel(r.table), `scalar function \`${name}\` is not allowed`);
    }
  }

  private expr(e: unknown, ctx: Context, depth: number): void {
    if (depth > MAX_TREE_DEPTH) throw this.no('the query is nested too deeply');
    if (!isObj(e)) throw this.no('unsupported expression');
    const next = (x: unknown, c: Context = ctx): void => this.expr(x, c, depth + 1);
    switch (e['class']) {
      case 'COLUMN_REF':
        this.use(e, ctx);
        return;
      case 'CONSTANT':
        return;
      case 'FUNCTION': {
        if (this.isAggregate(e)) throw this.no('aggregates are allowed only as items of the select list (or ORDER BY)');
        const name = asciiLower(str(e['function_name']));
        if (str(e['catalog']) !== '' || (str(e['schema']) !== '' && str(e['schema']) !== 'main')) throw this.no(`function \`${name}\` is not allowed`);
        if (e['filter'] !== null && e['filter'] !== undefined) throw this.no('FILTER is not allowed');
        if (!(ARITHMETIC.has(name) && ctx.at === 'aggregate')) this.scalar(name);
        for (const c of arr(e, 'children')) next(c);
        return;
      }
      case 'CAST':
        this.scalar('cast');
        next(e['child']);
        return;
      case 'COMPARISON':
      case 'CONJUNCTION':
      case 'BETWEEN':
      case 'OPERATOR': {
        if (ctx.at !== 'filter') throw this.no('conditions are allowed only in WHERE and in join conditions');
        if (e['class'] === 'OPERATOR' && !FILTER_OPERATORS.has(str(e['type']))) throw this.no(`\`${str(e['type'])}\` is not allowed`);
        if (e['class'] === 'BETWEEN') for (const k of ['input', 'lower', 'upper']) next(e[k]);
        else if (e['class'] === 'COMPARISON') for (const k of ['left', 'right']) next(e[k]);
        else for (const c of arr(e, 'children')) next(c);
        return;
      }
      case 'WINDOW':
        throw this.no('window functions are not allowed: they compute over rows before the output constraints apply');
      case 'SUBQUERY':
        throw this.no('subqueries are not allowed: they would compute over rows before the output constraints apply');
      case 'STAR':
        throw this.no('SELECT * is not allowed: name the columns');
      case 'CASE':
        throw this.no('CASE is not allowed: it could pick out single rows inside an aggregate');
      default:
        throw this.no(`\`${str(e['class']).toLowerCase()}\` expressions are not allowed`);
    }
  }
}
