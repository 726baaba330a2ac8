/**
 * Random row rules, session tags and rows for the embed property tests, and
 * the naive evaluator they are checked against: a direct reading of the
 * semantics in docs/embedding.md, written without the module's helpers.
 */
import fc from 'fast-check';
import type { RowRule, SessionTags, TagRule } from '../../src/embed/tag-rules.js';

/** Values that break naive quoting: quotes, backslashes, delimiters, unicode, SQL. */
export const HOSTILE_VALUES = ["O'Brien", 'a\\', "\\'; DROP TABLE t; --", 'Nord,Süd', '北', '🏥', '*', ',', '"', '%', '_', ' x ', "''", '$1', 'E\'\\x\''];

const valueArb = fc.oneof(fc.constantFrom('A', 'B', 'C', 'North Hospital', ...HOSTILE_VALUES), fc.string({ maxLength: 4 }));
export const COLUMNS = ['c0', 'c1', 'c2', 'c3'] as const;
const DELIMS = [',', ';', '|', '||', ', '] as const;
const MATCH_ALL = ['*', 'ALL', '%'] as const;

export const ruleArb: fc.Arbitrary<RowRule> = fc
  .uniqueArray(fc.constantFrom('k0', 'k1', 'k2', 'k3'), { minLength: 1, maxLength: 4 })
  .chain((keys) =>
    fc.record({
      tagRules: fc.tuple(
        ...keys.map((k) =>
          fc.record({ tagKey: fc.constant(k), column: fc.constantFrom(...COLUMNS), multiValueDelimiter: fc.constantFrom(...DELIMS), matchAllValue: fc.constantFrom(...MATCH_ALL) }),
        ),
      ),
      configurations: fc.array(fc.uniqueArray(fc.constantFrom(...keys), { minLength: 1, maxLength: keys.length }), { minLength: 1, maxLength: 4 }),
    }),
  )
  .map((r) => {
    // Every tag rule must be in a group: add the unused ones as a group of their own.
    const used = new Set<string>(r.configurations.flat());
    const unused = r.tagRules.map((t: TagRule) => t.tagKey).filter((k) => !used.has(k));
    return unused.length === 0 ? r : { ...r, configurations: [...r.configurations, unused] };
  })
  // A match-all value containing its delimiter is invalid; keep only valid rules.
  .filter((r) => r.tagRules.every((t: TagRule) => !t.matchAllValue.includes(t.multiValueDelimiter)));

export const tagsArb: fc.Arbitrary<SessionTags> = fc.dictionary(
  fc.constantFrom('k0', 'k1', 'k2', 'k3'),
  fc.array(fc.oneof(valueArb, fc.constantFrom(...MATCH_ALL)), { maxLength: 3 }).chain((parts) => fc.constantFrom(...DELIMS).map((d) => parts.join(d))),
);

export const rowArb = fc.record(Object.fromEntries(COLUMNS.map((c) => [c, fc.option(valueArb, { nil: null, freq: 6 })])) as Record<(typeof COLUMNS)[number], fc.Arbitrary<string | null>>);

/** The naive evaluator: group by group, tag by tag, string by string. */
export function naiveAdmits(rule: RowRule, tags: SessionTags, row: Readonly<Record<string, string | null>>): boolean {
  for (const group of rule.configurations) {
    let all = true;
    for (const key of group) {
      const tr = rule.tagRules.find((t) => t.tagKey === key);
      const raw = Object.prototype.hasOwnProperty.call(tags, key) ? tags[key] : undefined;
      if (tr === undefined || raw === undefined) {
        all = false;
        break;
      }
      const parts: string[] = [];
      for (const p of raw.split(tr.multiValueDelimiter)) if (p !== '') parts.push(p);
      if (parts.length === 0) {
        all = false;
        break;
      }
      if (parts.indexOf(tr.matchAllValue) >= 0) continue;
      const v = row[tr.column];
      if (v === null || v === undefined || parts.indexOf(v) < 0) {
        all = false;
        break;
      }
    }
    if (all) return true;
  }
  return false;
}
