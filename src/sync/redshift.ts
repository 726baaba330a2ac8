/**
 * The Redshift dialect. Steward does not read Redshift's catalogs, so this
 * emits the whole desired state as a script, in the same safe order as a
 * PostgreSQL plan, using Redshift's forms:
 *
 * - roles: `CREATE ROLE r`, `GRANT ROLE r TO u` (users) / `TO ROLE r2`;
 * - privileges: `GRANT … ON TABLE s.t TO ROLE r`, column lists for column-level grants;
 * - row level security: `CREATE RLS POLICY p WITH (col type, …) USING (…)`,
 *   `ATTACH RLS POLICY p ON s.t TO ROLE r`, `ALTER TABLE s.t ROW LEVEL SECURITY ON`.
 *
 * Redshift RLS policies are database-wide objects applying to SELECT, so a
 * policy is named by the hash of its definition and shared by every table it
 * is attached to; INSERT and DELETE need no policy there.
 */
import type { PolicyWorld, Table } from '../policy/model.js';
import { columnsOf, toSql, type Predicate } from '../policy/predicate.js';
import type { Evaluator } from '../policy/decision.js';
import { desiredState } from './desired-state.js';
import { fitIdent, qi, qname, shortHash } from './names.js';
import type { Item, Plan, Step, TargetSpec } from './sync-types.js';
import { summarize } from './diff.js';

/** Redshift column type for a DuckDB type, for the WITH list of an RLS policy. */
export function redshiftType(duckType: string): string {
  const t = duckType.trim().toUpperCase();
  if (/^(DECIMAL|NUMERIC)\(\d{1,2},\s*\d{1,2}\)$/.test(t)) return t.replace(/\s+/g, '');
  const map: Record<string, string> = {
    VARCHAR: 'VARCHAR(65535)',
    TEXT: 'VARCHAR(65535)',
    BIGINT: 'BIGINT',
    INTEGER: 'INTEGER',
    SMALLINT: 'SMALLINT',
    TINYINT: 'SMALLINT',
    DOUBLE: 'DOUBLE PRECISION',
    FLOAT: 'REAL',
    REAL: 'REAL',
    BOOLEAN: 'BOOLEAN',
    DATE: 'DATE',
    TIMESTAMP: 'TIMESTAMP',
    'TIMESTAMP WITH TIME ZONE': 'TIMESTAMPTZ',
    TIMESTAMPTZ: 'TIMESTAMPTZ',
  };
  return map[t] ?? 'VARCHAR(65535)';
}

interface RlsPolicy {
  readonly name: string;
  readonly create: string;
}

/** Renders the full desired state as a Redshift script. */
export function redshiftPlan(input: { world: PolicyWorld; engine: Pick<Evaluator, 'authorize'>; target: TargetSpec; now: number }): Plan {
  const desired = desiredState({ world: input.world, engine: input.engine, target: input.target, now: input.now });
  const tables = new Map<string, Table>();
  for (const m of desired.tables) {
    const t = input.world.tables.find((x) => x.catalog === m.catalog && x.database === m.database && x.name === m.table);
    if (t !== undefined) tables.set(`${m.schema}.${m.name}`, t);
  }
  const steps: Step[] = [];
  const policies = new Map<string, RlsPolicy>();
  const push = (it: Item, sql: string): void => {
    steps.push({ op: 'grant', item: it, key: `${it.k}|${sql}`, sql });
  };
  const rank: Record<Item['k'], number> = { role: 0, rls: 1, usage: 2, table: 3, columns: 4, policy: 5, member: 6 };
  const items = [...desired.list].sort((a, b) => rank[a.k] - rank[b.k]);
  for (const it of items) {
    switch (it.k) {
      case 'role':
        push(it, `CREATE ROLE ${qi(it.role)}`);
        break;
      case 'member':
        push(it, it.member.startsWith(input.target.rolePrefix) ? `GRANT ROLE ${qi(it.role)} TO ROLE ${qi(it.member)}` : `GRANT ROLE ${qi(it.role)} TO ${qi(it.member)}`);
        break;
      case 'usage':
        push(it, `GRANT USAGE ON SCHEMA ${qi(it.schema)} TO ROLE ${qi(it.role)}`);
        break;
      case 'table':
        push(it, `GRANT ${it.priv} ON TABLE ${qname(it.schema, it.table)} TO ROLE ${qi(it.role)}`);
        break;
      case 'columns':
        push(it, `GRANT ${it.priv} (${it.columns.map(qi).join(', ')}) ON TABLE ${qname(it.schema, it.table)} TO ROLE ${qi(it.role)}`);
        break;
      case 'rls':
        push(it, `ALTER TABLE ${qname(it.schema, it.table)} ROW LEVEL SECURITY ON`);
        break;
      case 'policy': {
        if (it.cmd !== 'SELECT') break;
        const table = tables.get(`${it.schema}.${it.table}`);
        const pred = it.pred;
        const cols = pred === undefined ? [] : columnsOf(pred);
        const types = new Map((table?.columns ?? []).map((c) => [c.name, redshiftType(c.type)]));
        const withList = cols.map((c) => `${qi(c)} ${types.get(c) ?? 'VARCHAR(65535)'}`).join(', ');
        const using = pred === undefined ? it.expr : toRedshift(pred);
        const def = `${withList === '' ? '' : ` WITH (${withList})`} USING (${using})`;
        const name = fitIdent(`${input.target.rolePrefix}rls_${shortHash(def, 12)}`);
        if (!policies.has(name)) {
          const create = `CREATE RLS POLICY ${qi(name)}${def}`;
          policies.set(name, { name, create });
          push(it, create);
        }
        push(it, `ATTACH RLS POLICY ${qi(name)} ON ${qname(it.schema, it.table)} TO ROLE ${qi(it.role)}`);
        break;
      }
      default: {
        const never: never = it;
        return never;
      }
    }
  }
  // policies are created before any attach; keep the rest in rank order
  const creates = steps.filter((s) => s.sql.startsWith('CREATE RLS POLICY'));
  const rest = steps.filter((s) => !s.sql.startsWith('CREATE RLS POLICY'));
  const firstAttach = rest.findIndex((s) => s.sql.startsWith('ATTACH'));
  const ordered = firstAttach < 0 ? [...rest, ...creates] : [...rest.slice(0, firstAttach), ...creates, ...rest.slice(firstAttach)];
  return { target: input.target.name, dialect: 'redshift', scope: 'full', steps: ordered, drift: [], warnings: desired.warnings, summary: summarize(ordered, [], desired.warnings) };
}

const toRedshift = (p: Predicate): string => toSql(p, 'redshift');
