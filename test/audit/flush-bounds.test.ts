/**
 * A flush pass takes the rows waiting when it starts and stops: under steady
 * arrivals it must not chase them batch after batch, writing a file of a few
 * dozen rows every ~100 ms and keeping the server's event loop and DuckDB busy
 * without end (what the load bench's authorize tail was).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { auditWorkspace, manualAudit } from './manual-audit.js';

const workspace = auditWorkspace('steward-flush-bounds-');

const entries = (n: number, tag: string) =>
  Array.from({ length: n }, (_, i) => ({ actor: 'user:load', action: 'authorize.SELECT', resource: 'lake.claims.patient_claims', result: 'deny' as const, reason: `${tag} ${i}` }));

describe('flush bounds', () => {
  it('leaves rows that arrive while it writes to the next flush, and slices a large batch without changing it', async () => {
    const ws = workspace();
    let arrivals = 0;
    const audit = await manualAudit(ws, {
      sliceRows: 7,
      // Requests keep coming while each batch is written.
      afterWrite: async () => {
        arrivals += 10;
        await ws.services.state.log(entries(10, 'during'));
      },
    });
    try {
      await audit.flush('steward'); // whatever the workspace logged before
      const before = arrivals;
      await ws.services.state.log(entries(100, 'waiting'));
      const [r] = await audit.flush('steward');
      assert.equal(r?.batches, 1, 'one batch: the rows waiting at the start');
      assert.equal(arrivals - before, 10);
      const { rows } = await ws.db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log WHERE audit_batch IS NULL');
      assert.equal(Number(rows[0]?.n), 10, 'the arrivals wait for the next flush');
      assert.ok((r?.events ?? 0) >= 100, `wrote ${r?.events}`);
      const v = await audit.verify('steward');
      assert.equal(v.ok, true, JSON.stringify(v.problems));
    } finally {
      await audit.stop();
    }
  });
});
