/**
 * Running a planned clean-room query on the gateway's sandbox: every output
 * row is compared with the output constraints (its hidden last column, see
 * `cleanroom-plan.ts`) and either leaves without them,
 * noised when the privacy budget is on, or is dropped, values and all, and
 * counted.
 */
import type { DuckDBValue } from '@duckdb/node-api';
import type { Gateway, QueryRequest, ResultColumn } from '../gateway/types.js';
import { toPlainValue, type PlainValue } from '../lake/duckdb.js';
import type { RoomPlan } from './cleanroom-plan.js';
import { noised, type NoisedColumn } from './cleanroom-privacy.js';

export interface RoomRows {
  readonly columns: readonly ResultColumn[];
  readonly rows: PlainValue[][];
  readonly removed: number;
  readonly truncated: boolean;
}

export async function runRoomPlan(gateway: Pick<Gateway, 'openPlan'>, req: QueryRequest, planned: RoomPlan, noise: readonly NoisedColumn[] = []): Promise<RoomRows> {
  const hidden = planned.gated ? 1 : 0;
  const stream = await gateway.openPlan(req, planned.plan, { log: false });
  const visible = stream.columns.length - hidden;
  const rows: PlainValue[][] = [];
  let removed = 0;
  for await (const batch of stream.batches()) {
    for (const row of batch) {
      // A row leaves only if it meets every output constraint (the hidden column is exactly true).
      const ok = !planned.gated || row[visible] === true;
      if (ok) rows.push(noised(plainRow(row, visible), noise));
      else removed++;
    }
  }
  const summary = await stream.summary;
  return { columns: stream.columns.slice(0, visible), rows, removed, truncated: summary.truncated };
}

/**
 * The row's first `visible` values as plain values, converted in place: each
 * batch row is a fresh array the stream hands over, and a copy per row is
 * most of the garbage a 100k-row result makes.
 */
function plainRow(row: DuckDBValue[], visible: number): PlainValue[] {
  row.length = visible;
  const out = row as unknown as PlainValue[];
  for (let i = 0; i < visible; i++) out[i] = toPlainValue(row[i] ?? null);
  return out;
}
