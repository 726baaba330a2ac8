import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { Column, DataFilter } from '../policy/model.js';
import { danglingReferences, describeDiff, diffColumns, isUnchanged, summarizeRefresh } from './refresh.js';

const cols = (...spec: [string, string][]): Column[] => spec.map(([name, type], ordinal) => ({ name, type, ordinal }));

describe('diffColumns', () => {
  test('finds added, removed and retyped columns by name', () => {
    const before = cols(['id', 'BIGINT'], ['name', 'VARCHAR'], ['amount', 'DECIMAL(12,2)'], ['ssn', 'VARCHAR']);
    const after = cols(['id', 'BIGINT'], ['amount', 'DECIMAL(14,2)'], ['name', 'VARCHAR'], ['region', 'VARCHAR'], ['state', 'VARCHAR']);
    const diff = diffColumns(before, after);
    assert.deepEqual(
      diff.added.map((c) => c.name),
      ['region', 'state'],
    );
    assert.deepEqual(
      diff.removed.map((c) => c.name),
      ['ssn'],
    );
    assert.deepEqual(diff.retyped, [{ name: 'amount', from: 'DECIMAL(12,2)', to: 'DECIMAL(14,2)' }]);
  });

  test('moving a column or changing the case of its type is not a change', () => {
    const diff = diffColumns(cols(['a', 'integer'], ['b', 'text']), cols(['b', 'TEXT'], ['a', 'INTEGER']));
    assert.ok(isUnchanged(diff));
    assert.equal(describeDiff(diff), 'unchanged');
  });

  test('a rename is a removal plus an addition', () => {
    const diff = diffColumns(cols(['patient', 'VARCHAR']), cols(['patient_name', 'VARCHAR']));
    assert.equal(describeDiff(diff), '+1 column (patient_name); -1 column (patient)');
  });

  test('property: applying the diff to `before` gives the names and types of `after`', () => {
    const column = fc.tuple(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'), fc.constantFrom('INTEGER', 'VARCHAR', 'DATE'));
    const columns = fc.uniqueArray(column, { selector: ([n]) => n, maxLength: 6 }).map((spec) => cols(...spec));
    fc.assert(
      fc.property(columns, columns, (before, after) => {
        const diff = diffColumns(before, after);
        const result = new Map(before.map((c) => [c.name, c.type]));
        for (const c of diff.removed) result.delete(c.name);
        for (const c of diff.added) result.set(c.name, c.type);
        for (const r of diff.retyped) result.set(r.name, r.to);
        assert.deepEqual(new Map([...result].sort()), new Map(after.map((c): [string, string] => [c.name, c.type]).sort()));
        assert.equal(isUnchanged(diffColumns(after, after)), true);
      }),
    );
  });
});

describe('summarizeRefresh', () => {
  test('counts and describes changed and failed tables, sorted by table', () => {
    const summary = summarizeRefresh([
      { table: 'lake.claims.patient_claims', diff: diffColumns(cols(['id', 'BIGINT']), cols(['id', 'VARCHAR'], ['x', 'DATE'])) },
      { table: 'lake.finance.revenue', diff: diffColumns(cols(['id', 'BIGINT']), cols(['id', 'BIGINT'])) },
      { table: 'lake.claims.archive', error: 'no files match `lake/archive/`' },
    ]);
    assert.deepEqual(summary, {
      tables: 3,
      unchanged: 1,
      changed: 1,
      failed: 1,
      added: 1,
      removed: 0,
      retyped: 1,
      lines: [
        'lake.claims.archive: failed: no files match `lake/archive/`',
        'lake.claims.patient_claims: +1 column (x); 1 retyped (id: BIGINT → VARCHAR)',
      ],
    });
  });

  test('an empty refresh', () => {
    assert.deepEqual(summarizeRefresh([]), { tables: 0, unchanged: 0, changed: 0, failed: 0, added: 0, removed: 0, retyped: 0, lines: [] });
  });
});

describe('danglingReferences', () => {
  test('lists filters whose predicate or column lists name a removed column', () => {
    const base = { catalog: 'lake', database: 'claims', table: 'patient_claims', rowFilter: null } as const;
    const filters: DataFilter[] = [
      { ...base, name: 'east', rowFilter: "region = 'East'", predicate: { k: 'cmp', op: '=', left: { k: 'col', name: 'region' }, right: { k: 'lit', value: 'East' } } },
      { ...base, name: 'no-ssn', predicate: null, excludedColumns: ['ssn'] },
      { ...base, name: 'all', predicate: null },
    ];
    const diff = diffColumns(cols(['region', 'VARCHAR'], ['ssn', 'VARCHAR'], ['id', 'BIGINT']), cols(['id', 'BIGINT']));
    assert.deepEqual(danglingReferences(diff, filters), [
      { filter: 'east', columns: ['region'] },
      { filter: 'no-ssn', columns: ['ssn'] },
    ]);
    assert.deepEqual(danglingReferences(diffColumns(cols(['id', 'BIGINT']), cols(['id', 'BIGINT'])), filters), []);
  });
});
