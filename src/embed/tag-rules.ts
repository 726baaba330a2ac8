/**
 * Session-tag row rules (the QuickSight "RLS with OR tags" model), pure.
 *
 * A dataset's row rule has tag rules (a session tag key bound to a column,
 * with the delimiter that splits a tag's value into several and the value
 * that matches every row) and rule configurations: AND groups of tag keys,
 * ORed together. A row is visible when, for at least one group, every tag of
 * the group has a session value and the row's column is one of that tag's
 * values, or the tag holds the match-all value.
 *
 * Fail closed: a group with a tag the session does not carry (or carries
 * with no values) admits nothing, and a session with no complete group sees
 * no row. Session values are data: they become literals of a predicate tree
 * (`toPredicate`), printed by the one literal-quoting function, never spliced.
 *
 * @example
 *   rule: region(",", "*"), hospital(",", "*"); groups [[region, hospital], [payor, state]]
 *   tags {hospital: "North Hospital", region: "Central,East"}
 *   → (("region" IN ('Central', 'East')) AND ("hospital" IN ('North Hospital')))
 */
import { StewardError, type ErrorDetail } from '../errors.js';
import { FALSE, TRUE, type Predicate } from '../policy/predicate.js';

export interface TagRule {
  /** The session tag's key: lowercase, usable in a PostgreSQL setting name (`steward.tag.<key>`). */
  readonly tagKey: string;
  readonly column: string;
  /** Splits one tag value into several (`"Central,East"`). */
  readonly multiValueDelimiter: string;
  /** A tag value (or one of its parts) equal to this matches every row. */
  readonly matchAllValue: string;
}

export interface RowRule {
  readonly tagRules: readonly TagRule[];
  /** AND groups of tag keys, ORed together. */
  readonly configurations: readonly (readonly string[])[];
}

/** Session tags: key → raw value (before splitting on the rule's delimiter). */
export type SessionTags = Readonly<Record<string, string>>;

/** What one tag of a session admits: every row, or rows whose column is one of `values`. */
export type TagMatch = { readonly all: true } | { readonly all: false; readonly values: readonly string[] };

export const LIMITS = Object.freeze({
  rules: 32,
  groups: 32,
  keyLength: 63,
  columnLength: 128,
  delimiterLength: 8,
  matchAllLength: 64,
  tags: 32,
  valueLength: 4096,
  valuesPerTag: 1000,
});

const TAG_KEY = /^[a-z][a-z0-9_]*$/;
// Characters that cannot travel in a PostgreSQL setting or a JWT claim safely and mean nothing in a column value.
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/;

/**
 * Checks a row rule and returns it frozen; throws STEWARD_E_VALIDATION with
 * every problem, each naming its path (`tagRules[2].multiValueDelimiter`).
 * `columns`, when given, are the table's columns with their types: a rule's
 * column must exist and hold text.
 */
export function validateRowRule(input: RowRule, columns?: ReadonlyMap<string, string>, at = 'rowRule'): RowRule {
  const problems: ErrorDetail[] = [];
  const add = (path: string, message: string): void => {
    problems.push({ path: `${at}.${path}`, message });
  };
  if (input.tagRules.length === 0) add('tagRules', 'needs at least one tag rule');
  if (input.tagRules.length > LIMITS.rules) add('tagRules', `at most ${LIMITS.rules} tag rules`);
  const keys = new Set<string>();
  input.tagRules.forEach((r, i) => {
    const p = `tagRules[${i}]`;
    if (!TAG_KEY.test(r.tagKey) || r.tagKey.length > LIMITS.keyLength) {
      add(`${p}.tagKey`, `\`${r.tagKey}\` must be lowercase letters, digits and _ starting with a letter, at most ${LIMITS.keyLength} characters`);
    }
    if (keys.has(r.tagKey)) add(`${p}.tagKey`, `\`${r.tagKey}\` is already used by another tag rule`);
    keys.add(r.tagKey);
    if (r.column.length === 0 || r.column.length > LIMITS.columnLength) add(`${p}.column`, `must be 1 to ${LIMITS.columnLength} characters`);
    else if (columns !== undefined) {
      const type = columns.get(r.column);
      if (type === undefined) add(`${p}.column`, `\`${r.column}\` is not a column of the table`);
      else if (!/^(VARCHAR|TEXT|STRING|CHAR|CHARACTER VARYING)/i.test(type)) add(`${p}.column`, `\`${r.column}\` is ${type}; tag rules compare text columns only`);
    }
    for (const problem of delimiterProblems(r)) add(problem.path === '' ? p : `${p}.${problem.path}`, problem.message);
  });
  if (input.configurations.length === 0) add('configurations', 'needs at least one AND group of tag keys');
  if (input.configurations.length > LIMITS.groups) add('configurations', `at most ${LIMITS.groups} groups`);
  const used = new Set<string>();
  input.configurations.forEach((group, i) => {
    if (group.length === 0) add(`configurations[${i}]`, 'an empty AND group would match every row; list at least one tag key');
    const seen = new Set<string>();
    group.forEach((key, j) => {
      if (!keys.has(key)) add(`configurations[${i}][${j}]`, `\`${key}\` is not the tag key of any tag rule`);
      if (seen.has(key)) add(`configurations[${i}][${j}]`, `\`${key}\` is listed twice in the group`);
      seen.add(key);
      used.add(key);
    });
  });
  input.tagRules.forEach((r, i) => {
    if (keys.has(r.tagKey) && !used.has(r.tagKey)) add(`tagRules[${i}].tagKey`, `\`${r.tagKey}\` is in no rule configuration, so it would never filter anything`);
  });
  if (problems.length > 0) {
    const first = problems[0] as ErrorDetail;
    throw new StewardError('STEWARD_E_VALIDATION', `${first.path}: ${first.message}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`, { details: problems });
  }
  return Object.freeze({
    tagRules: Object.freeze(input.tagRules.map((r) => Object.freeze({ ...r }))),
    configurations: Object.freeze(input.configurations.map((g) => Object.freeze([...g]))),
  });
}

/**
 * The delimiter / match-all mistakes, including the reference article's payor
 * rule (`*` as delimiter, `,` as match-all): with it, `Medicaid,Medicare`
 * would be one value and a session sending `,` would see every row.
 */
function delimiterProblems(r: TagRule): { path: string; message: string }[] {
  const out: { path: string; message: string }[] = [];
  const d = r.multiValueDelimiter;
  const m = r.matchAllValue;
  if (d.length === 0 || d.length > LIMITS.delimiterLength) out.push({ path: 'multiValueDelimiter', message: `must be 1 to ${LIMITS.delimiterLength} characters` });
  if (m.length === 0 || m.length > LIMITS.matchAllLength) out.push({ path: 'matchAllValue', message: `must be 1 to ${LIMITS.matchAllLength} characters` });
  if (CONTROL.test(d) || CONTROL.test(m)) out.push({ path: '', message: 'the delimiter and match-all value may not hold control characters' });
  if (d === '*') {
    const hint = m === ',' ? ' (delimiter and match-all value look swapped: use `,` as delimiter and `*` as match-all value)' : '';
    out.push({ path: 'multiValueDelimiter', message: `\`*\` is the conventional match-all value, not a delimiter${hint}` });
  }
  if (d.length > 0 && m.length > 0 && (m === d || m.includes(d))) {
    out.push({ path: 'matchAllValue', message: `\`${m}\` contains the delimiter \`${d}\`, so splitting a tag value could never yield it` });
  }
  if (d.length > 0 && d.trim() === '') out.push({ path: 'multiValueDelimiter', message: 'a blank delimiter would split values such as `North Hospital`' });
  return out;
}

/**
 * What each tag key of the rule admits for a session: absent when the session
 * does not carry it or carries no values (empty parts are dropped, so `","`
 * means no value, never the empty string).
 */
export function tagMatches(rule: RowRule, tags: SessionTags): Map<string, TagMatch> {
  const out = new Map<string, TagMatch>();
  for (const r of rule.tagRules) {
    if (!Object.hasOwn(tags, r.tagKey)) continue;
    const raw = tags[r.tagKey] as string;
    const parts = raw.split(r.multiValueDelimiter).filter((v) => v.length > 0);
    if (parts.includes(r.matchAllValue)) out.set(r.tagKey, { all: true });
    else if (parts.length > 0) out.set(r.tagKey, { all: false, values: [...new Set(parts)].sort() });
  }
  return out;
}

/** The row predicate of a session: OR over complete groups of AND over their tags; FALSE when no group is complete. */
export function toPredicate(rule: RowRule, tags: SessionTags): Predicate {
  const matches = tagMatches(rule, tags);
  const columnOf = new Map(rule.tagRules.map((r) => [r.tagKey, r.column]));
  const groups: Predicate[] = [];
  for (const group of rule.configurations) {
    const parts: Predicate[] = [];
    let complete = true;
    for (const key of group) {
      const m = matches.get(key);
      if (m === undefined) {
        complete = false;
        break;
      }
      if (!m.all) parts.push({ k: 'in', arg: { k: 'col', name: columnOf.get(key) as string }, list: m.values.map((v) => ({ k: 'lit', value: v })), negated: false });
    }
    if (!complete) continue;
    // A group whose every tag matches all: the session sees every row.
    if (parts.length === 0) return TRUE;
    groups.push(parts.length === 1 ? (parts[0] as Predicate) : { k: 'and', args: parts });
  }
  if (groups.length === 0) return FALSE;
  return groups.length === 1 ? (groups[0] as Predicate) : { k: 'or', args: groups };
}

/** Does the rule admit `row` (column name → value) for the session? The reference for tests and the docs. */
export function admitsRow(rule: RowRule, tags: SessionTags, row: Readonly<Record<string, unknown>>): boolean {
  const matches = tagMatches(rule, tags);
  const columnOf = new Map(rule.tagRules.map((r) => [r.tagKey, r.column]));
  return rule.configurations.some((group) =>
    group.every((key) => {
      const m = matches.get(key);
      if (m === undefined) return false;
      if (m.all) return true;
      const v = row[columnOf.get(key) as string];
      return typeof v === 'string' && m.values.includes(v);
    }),
  );
}

/**
 * Checks session tags against the rules they will be matched by (at minting):
 * a key no rule names is refused, not ignored (a typo such as `hopsital`
 * would otherwise silently leave a group incomplete or, worse, look applied).
 */
export function validateSessionTags(tags: Readonly<Record<string, unknown>>, rules: readonly RowRule[], at = 'tags'): SessionTags {
  const known = new Set(rules.flatMap((r) => r.tagRules.map((t) => t.tagKey)));
  const entries = Object.entries(tags);
  if (entries.length > LIMITS.tags) throw new StewardError('STEWARD_E_VALIDATION', `${at}: at most ${LIMITS.tags} session tags`, { details: [{ path: at, message: `at most ${LIMITS.tags}` }] });
  const out: Record<string, string> = {};
  for (const [key, value] of entries) {
    const path = `${at}.${key}`;
    if (!known.has(key)) {
      throw new StewardError('STEWARD_E_UNKNOWN_TAG', `${path}: \`${key}\` is not the tag key of any tag rule of the dataset (known: ${[...known].sort().join(', ')})`, {
        details: [{ path, message: 'unknown tag key' }],
      });
    }
    if (typeof value !== 'string') throw new StewardError('STEWARD_E_VALIDATION', `${path}: must be a string`, { details: [{ path, message: 'must be a string' }] });
    if (value.length > LIMITS.valueLength) throw new StewardError('STEWARD_E_VALIDATION', `${path}: at most ${LIMITS.valueLength} characters`, { details: [{ path, message: 'too long' }] });
    if (CONTROL.test(value)) throw new StewardError('STEWARD_E_VALIDATION', `${path}: control characters are not allowed in a tag value`, { details: [{ path, message: 'control character' }] });
    for (const r of rules) {
      const tr = r.tagRules.find((t) => t.tagKey === key);
      if (tr !== undefined && value.split(tr.multiValueDelimiter).length > LIMITS.valuesPerTag) {
        throw new StewardError('STEWARD_E_TOO_MANY_VALUES', `${path}: at most ${LIMITS.valuesPerTag} values`, { details: [{ path, message: 'too many values' }] });
      }
    }
    out[key] = value;
  }
  return Object.freeze(out);
}
