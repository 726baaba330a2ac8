/**
 * A dataset's session-tag row rule (src/embed/tag-rules.ts) as PostgreSQL
 * row-level security, so an application that sets the session's tags on its
 * connection sees in the warehouse exactly the rows it would see through
 * Steward's gateway and dashboards:
 *
 *   SELECT set_config('steward.tag.hospital', $1, false), set_config('steward.tag.region', $2, false);
 *
 * The policy reads each tag with `current_setting('steward.tag.<key>', true)`
 * (NULL when unset) and splits it with `string_to_array`, so tag values are
 * only ever data compared with `= ANY(...)`: no SQL is built from them, and
 * whatever a value holds (quotes, backslashes, delimiters) it matches a row
 * only by equality. Only the rule's own parts (column, delimiter, match-all
 * value, tag key, all validated when the dashboard was applied) are quoted
 * into the text. A missing or empty setting makes its group false: fail
 * closed.
 *
 * Two uses. A warehouse sync target's embed role (`embedRole`) gets, per
 * dataset table, `embedUsing` (the datasets' runAs row filters AND their tag
 * rules, ORed) as a permissive and a restrictive policy, planned and diffed
 * like every synced item (desired-state.ts). Without a target,
 * `sessionTagPolicy` prints one RESTRICTIVE policy (`steward embed rls`) for
 * the operator to run: it narrows whatever the role's grants allow, never
 * widens it. That one is for the application's own role, not a role the sync
 * manages: the sync reads policies of its roles, or named in its prefix, as
 * its own.
 *
 * Redshift cannot express it: its RLS policies are attached per role or user
 * and cannot read a per-connection setting, so there is no place for the
 * session's tags; `redshiftSessionTagPlan` says so in the plan.
 */
import { quoteIdent, quoteLiteral, toSql, type Predicate } from '../policy/predicate.js';
import type { RowRule, TagRule } from '../embed/tag-rules.js';
import type { Dashboard } from '../embed/dashboard-spec.js';

/** The custom setting that carries a session tag (`steward.tag.hospital`). */
export function tagSetting(key: string): string {
  return `steward.tag.${key}`;
}

/** `array_remove(string_to_array(current_setting('steward.tag.<key>', true), <delimiter>), '')`: the tag's values, NULL when unset. */
function valuesSql(r: TagRule): string {
  return `array_remove(string_to_array(current_setting(${quoteLiteral(tagSetting(r.tagKey), 'postgres')}, true), ${quoteLiteral(r.multiValueDelimiter, 'postgres')}), '')`;
}

/** The USING expression: OR over groups of AND over tags of (match-all among the values, or the column among them). */
export function sessionTagUsing(rule: RowRule): string {
  const byKey = new Map(rule.tagRules.map((r) => [r.tagKey, r]));
  const groups = rule.configurations.map((group) => {
    const tags = group.map((key) => {
      const r = byKey.get(key) as TagRule;
      const values = valuesSql(r);
      // coalesce: an unset tag gives NULL, and NULL must mean "no", not "unknown", at every level.
      return `coalesce(${quoteLiteral(r.matchAllValue, 'postgres')} = ANY (${values}) OR ${quoteIdent(r.column)}::text = ANY (${values}), false)`;
    });
    return `(${tags.join(' AND ')})`;
  });
  return groups.length === 0 ? 'false' : `(${groups.join(' OR ')})`;
}

export interface SessionTagPolicy {
  readonly name: string;
  readonly statements: readonly string[];
}

/**
 * The statements that put the rule on `schema.table` for `role`: RLS enabled
 * and one restrictive SELECT policy (replaced when it exists).
 */
export function sessionTagPolicy(input: { readonly schema: string; readonly table: string; readonly role: string; readonly dataset: string; readonly rule: RowRule }): SessionTagPolicy {
  // Outside the sync's own name space (`stw_`): a warehouse sync reads a `stw_` policy it did not plan as drift and drops it.
  const name = `steward_tags_${input.dataset}`.slice(0, 63);
  const target = `${quoteIdent(input.schema)}.${quoteIdent(input.table)}`;
  return {
    name,
    statements: [
      `ALTER TABLE ${target} ENABLE ROW LEVEL SECURITY`,
      `DROP POLICY IF EXISTS ${quoteIdent(name)} ON ${target}`,
      `CREATE POLICY ${quoteIdent(name)} ON ${target} AS RESTRICTIVE FOR SELECT TO ${quoteIdent(input.role)} USING ${sessionTagUsing(input.rule)}`,
    ],
  };
}

/** What a Redshift plan says about a session-tag rule: it cannot be expressed there. */
export function redshiftSessionTagPlan(dataset: string, table: string): { readonly expressible: false; readonly message: string } {
  return {
    expressible: false,
    message: `session-tag rule of dataset \`${dataset}\` on \`${table}\` is not synced to redshift: redshift rls policies cannot read a per-connection setting, so the session's tags have nowhere to come from; query the dataset through the steward gateway instead`,
  };
}

/** One dashboard dataset as the warehouse sync sees it: a catalog table, the user it reads as, and its row rule. */
export interface EmbedDataset {
  readonly dashboard: string;
  readonly dataset: string;
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  /** The dashboard's `runAs` user name (without `user:`). */
  readonly runAs: string;
  readonly rule: RowRule;
}

/** The datasets of stored dashboards, in dashboard and dataset order. */
export function embedDatasets(dashboards: readonly { readonly id: string; readonly dashboard: Dashboard }[]): EmbedDataset[] {
  const out: EmbedDataset[] = [];
  for (const { id, dashboard } of [...dashboards].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    for (const [dataset, ds] of Object.entries(dashboard.datasets).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      const [catalog = '', database = '', table = ''] = ds.table.split('.');
      out.push({ dashboard: id, dataset, catalog, database, table, runAs: dashboard.runAs.slice('user:'.length), rule: ds.rowRule });
    }
  }
  return out;
}

/** What one dataset lets the embed role read of its table: rows its `runAs` reads (`filter`, null: all) that the session's tags admit. */
export interface EmbedPart {
  readonly rule: RowRule;
  readonly filter: Predicate | null;
}

/**
 * The USING expression of the embed role on one table: OR over the datasets
 * reading it of (the runAs user's row filter AND the dataset's session-tag
 * rule). Printed with `toSql(…, 'postgres')` and `sessionTagUsing`, so every
 * literal goes through the one quoting function; sorted, so the text (and the
 * policy name hashed from it) does not depend on dashboard order.
 */
export function embedUsing(parts: readonly EmbedPart[]): string {
  const each = new Set(parts.map((p) => (p.filter === null ? sessionTagUsing(p.rule) : `(${toSql(p.filter, 'postgres')} AND ${sessionTagUsing(p.rule)})`)));
  const list = [...each].sort();
  return list.length === 0 ? 'false' : list.length === 1 ? (list[0] as string) : `(${list.join(' OR ')})`;
}

/** What a Redshift plan says about every dataset of the target's catalog. */
export function redshiftEmbedWarnings(datasets: readonly EmbedDataset[], catalog: string): { readonly code: 'NOT_EXPRESSIBLE'; readonly message: string }[] {
  return datasets
    .filter((d) => d.catalog === catalog)
    .map((d) => ({ code: 'NOT_EXPRESSIBLE' as const, message: `dashboard \`${d.dashboard}\`: ${redshiftSessionTagPlan(d.dataset, `${d.database}.${d.table}`).message}; the embed role is granted nothing there` }));
}
