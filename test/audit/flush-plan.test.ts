/**
 * A flush reads its batch back by batch number. Without an index on it, the
 * first slice walked every decision ever logged, on the server's event loop:
 * ~75 ms once per 5 s flush after 150k decisions, the slowest 1% of requests
 * under steady load (bench/load.bench.ts). The plan must use the batch index.
 */
import assert from 'node:assert/strict';
import { STEWARD_SLICE_SQL } from '../../src/audit/flusher.js';
import { forEachStore } from '../support/stores.js';

forEachStore('a flush finds its batch through the batch index, not by walking the whole decision log', async ({ db }) => {
  await db.exec(`
    INSERT INTO steward.decision_log (actor, action, resource, result, reason, audit_batch)
    SELECT 'user:alice', 'authorize.SELECT', 'lake.claims.t' || i, 'allow', 'granted', CASE WHEN i <= 19500 THEN 1 + i / 500 END
    FROM generate_series(1, 20000) AS i;
    ANALYZE steward.decision_log;
    PREPARE slice(bigint, bigint, int) AS ${STEWARD_SLICE_SQL};
  `);
  const { rows } = await db.query<{ 'QUERY PLAN': unknown }>('EXPLAIN (FORMAT JSON) EXECUTE slice(39, 0, 100)');
  const plan = JSON.stringify(rows[0]?.['QUERY PLAN']);
  assert.match(plan, /"Index Name":"decision_log_audit_batch"/, plan);
  assert.doesNotMatch(plan, /"Node Type":"Seq Scan"/, plan);
  const { rows: got } = await db.query<{ n: number; last: number }>('EXECUTE slice(39, 0, 100)');
  assert.deepEqual([got[0]?.n, Number(got[0]?.last)], [100, 19099]);
  await db.exec('DEALLOCATE slice');
});
