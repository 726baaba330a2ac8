/**
 * A catalog table read from one Parquet file in catalog `lake`, for tests and
 * benchmarks that build a policy world by hand.
 */
import type { Table } from '../../src/policy/model.js';

export function parquetTable(database: string, name: string, location: string, columns: ReadonlyArray<readonly [string, string]>): Table {
  return {
    catalog: 'lake',
    database,
    name,
    source: { kind: 'lake', format: 'parquet', location, hivePartitioning: false },
    columns: columns.map(([column, type], ordinal) => ({ name: column, type, ordinal })),
  };
}
