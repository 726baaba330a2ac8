/**
 * Tag-rule semantics: validation (the reference article's swapped delimiter
 * and match-all), fail-closed sessions, and properties against the naive
 * evaluator, in JS and through DuckDB's evaluation of the printed predicate.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { admitsRow, toPredicate, validateRowRule, validateSessionTags, type RowRule } from '../../src/embed/tag-rules.js';
import { toSql } from '../../src/policy/predicate.js';
import { openDuckDb, type DuckDb } from '../../src/lake/duckdb.js';
import { isStewardError } from '../../src/errors.js';
import { ANYHEALTH_RULE as ANYHEALTH } from '../../src/demo/anyhealth.js';
import { COLUMNS, HOSTILE_VALUES, naiveAdmits, ruleArb, rowArb, tagsArb } from './arbitraries.js';

function validationPaths(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    assert.ok(isStewardError(e) && e.code === 'STEWARD_E_VALIDATION', String(e));
    return e.details.map((d) => `${d.path ?? ''}: ${d.message}`);
  }
  assert.fail('expected a validation error');
}

describe('tag rule validation', () => {
  it('refuses the reference article payor rule with its delimiter and match-all value swapped', () => {
    // Threat: with `*` as delimiter and `,` as match-all, a session sending `,` sees every payor's rows.
    const swapped = { ...ANYHEALTH, tagRules: ANYHEALTH.tagRules.map((r) => (r.tagKey === 'payor' ? { ...r, multiValueDelimiter: '*', matchAllValue: ',' } : r)) };
    const problems = validationPaths(() => validateRowRule(swapped));
    assert.ok(problems.some((p) => p.startsWith('rowRule.tagRules[2].multiValueDelimiter') && p.includes('look swapped')), problems.join('\n'));
  });

  it('refuses a match-all value that is the delimiter', () => {
    // Threat: a match-all that splitting can never produce silently disables the admin's "all" sessions, or (if compared unsplit) widens them.
    const problems = validationPaths(() => validateRowRule({ ...ANYHEALTH, tagRules: [{ tagKey: 'region', column: 'region', multiValueDelimiter: ';', matchAllValue: ';' }], configurations: [['region']] }));
    assert.ok(problems.some((p) => p.includes('matchAllValue') && p.includes('contains the delimiter')), problems.join('\n'));
  });

  it('refuses an empty AND group that would admit every row', () => {
    // Threat: `[]` in the configurations is vacuously true for every session.
    const problems = validationPaths(() => validateRowRule({ ...ANYHEALTH, configurations: [['region', 'hospital'], ['payor', 'state'], []] }));
    assert.ok(problems.some((p) => p.startsWith('rowRule.configurations[2]')), problems.join('\n'));
  });

  it('refuses a group naming an unknown tag key and a rule no group uses', () => {
    // Threat: a typo in a group would leave it incomplete for every session; an unused rule looks enforced but filters nothing.
    const problems = validationPaths(() => validateRowRule({ ...ANYHEALTH, configurations: [['region', 'hopsital']] }));
    assert.ok(problems.some((p) => p.startsWith('rowRule.configurations[0][1]') && p.includes('`hopsital`')), problems.join('\n'));
    assert.ok(problems.some((p) => p.startsWith('rowRule.tagRules[2].tagKey') && p.includes('no rule configuration')), problems.join('\n'));
  });

  it('refuses a tag key that could not name a postgres setting and a column that is not text', () => {
    // Threat: a key such as `a'b` would have to be spliced into `current_setting('steward.tag.<key>')`.
    const problems = validationPaths(() =>
      validateRowRule({ tagRules: [{ tagKey: "a'b", column: 'amount', multiValueDelimiter: ',', matchAllValue: '*' }], configurations: [["a'b"]] }, new Map([['amount', 'DOUBLE']])),
    );
    assert.ok(problems.some((p) => p.includes('tagKey')), problems.join('\n'));
    assert.ok(problems.some((p) => p.includes('column') && p.includes('DOUBLE')), problems.join('\n'));
  });

  it('accepts the corrected AnyHealth rule', () => {
    assert.equal(validateRowRule(ANYHEALTH).tagRules.length, 4);
  });
});

describe('session tags', () => {
  it('refuses a tag key that no rule names instead of ignoring it', () => {
    // Threat: `hopsital=*` minted silently would look like an admin session while filtering nothing as intended.
    assert.throws(() => validateSessionTags({ hopsital: '*' }, [ANYHEALTH]), (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_UNKNOWN_TAG' && e.message.includes('`hopsital`'));
  });

  it('refuses a control character in a tag value', () => {
    // Threat: NUL cannot be carried to a postgres setting; other controls smuggle log lines.
    assert.throws(() => validateSessionTags({ region: 'East\u0000' }, [ANYHEALTH]), (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_VALIDATION');
  });

  it('shows nothing to a session with no complete group', () => {
    // Threat: a session carrying only `hospital` (the region tag forgotten) must not fall back to "no filter".
    const p = toPredicate(ANYHEALTH, { hospital: 'North Hospital' });
    assert.equal(toSql(p), 'FALSE');
    assert.equal(toSql(toPredicate(ANYHEALTH, {})), 'FALSE');
    assert.equal(toSql(toPredicate(ANYHEALTH, { hospital: ',', region: '' })), 'FALSE');
  });

  it('matches the five AnyHealth users as the reference describes', () => {
    const row = (hospital: string, region: string, payor_segment: string, state: string) => ({ hospital, region, payor_segment, state });
    const northMedicaid = { hospital: 'North Hospital', region: 'Central,East', payor: 'Medicaid', state: 'NY' };
    assert.equal(admitsRow(ANYHEALTH, northMedicaid, row('North Hospital', 'East', 'Commercial', 'CA')), true);
    assert.equal(admitsRow(ANYHEALTH, northMedicaid, row('South Hospital', 'West', 'Medicaid', 'NY')), true);
    assert.equal(admitsRow(ANYHEALTH, northMedicaid, row('South Hospital', 'West', 'Medicaid', 'CA')), false);
    assert.equal(admitsRow(ANYHEALTH, northMedicaid, row('North Hospital', 'West', 'Medicare', 'NY')), false);
    const southMedicare = { hospital: 'South Hospital', region: 'South', payor: 'Medicare', state: '*' };
    assert.equal(admitsRow(ANYHEALTH, southMedicare, row('North Hospital', 'West', 'Medicare', 'TX')), true);
    assert.equal(admitsRow(ANYHEALTH, { hospital: 'North Hospital', region: '*' }, row('North Hospital', 'West', 'Medicare', 'TX')), true);
    assert.equal(admitsRow(ANYHEALTH, { hospital: 'North Hospital', region: '*' }, row('South Hospital', 'West', 'Medicare', 'TX')), false);
    assert.equal(toSql(toPredicate(ANYHEALTH, { hospital: '*', region: '*' })), 'TRUE');
  });
});

describe('properties against the naive evaluator', () => {
  let duck: DuckDb;
  before(async () => {
    duck = await openDuckDb({ config: { threads: '1' } });
  });
  after(() => duck.close());

  it('admitsRow agrees with the naive evaluator on random rules, sessions and rows', () => {
    fc.assert(
      fc.property(ruleArb, tagsArb, rowArb, (rule, tags, row) => {
        validateRowRule(rule);
        assert.equal(admitsRow(rule, tags, row), naiveAdmits(rule, tags, row));
      }),
      { numRuns: 2000, seed: 12 },
    );
  });

  it('the printed predicate keeps hostile session values as data in DuckDB and admits exactly the naive rows', async () => {
    // Threat: a value with a quote or backslash ends the literal and the rest of the tag becomes SQL.
    await fc.assert(
      fc.asyncProperty(ruleArb, tagsArb, fc.array(rowArb, { minLength: 1, maxLength: 12 }), async (rule, tags, rows) => {
        const binds = rows.flatMap((r) => COLUMNS.map((c) => r[c]));
        const values = rows.map((_, i) => `(${[i, ...COLUMNS.map((_c, j) => `$${i * COLUMNS.length + j + 1}::VARCHAR`)].join(', ')})`).join(', ');
        const sql = `SELECT i FROM (VALUES ${values}) AS t(i, ${COLUMNS.join(', ')}) WHERE ${toSql(toPredicate(rule, tags))} ORDER BY i`;
        const got = (await duck.all<{ i: number }>(sql, binds)).map((r) => r.i);
        const want = rows.flatMap((r, i) => (naiveAdmits(rule, tags, r) ? [i] : []));
        assert.deepEqual(got, want, sql);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it('every hostile value alone selects exactly its own row', async () => {
    // Threat: quoting that differs per value (backslash, quote, unicode) admits a neighbour's row.
    const rule: RowRule = { tagRules: [{ tagKey: 'k0', column: 'c0', multiValueDelimiter: '|', matchAllValue: '~all~' }], configurations: [['k0']] };
    const values = HOSTILE_VALUES.filter((v) => !v.includes('|'));
    for (const v of values) {
      const sql = `SELECT c0 FROM (VALUES ${values.map((_, i) => `($${i + 1}::VARCHAR)`).join(', ')}) AS t(c0) WHERE ${toSql(toPredicate(rule, { k0: v }))}`;
      assert.deepEqual((await duck.all<{ c0: string }>(sql, values)).map((r) => r.c0), [v]);
    }
  });
});
