/**
 * Batches written on several lanes at once (parquet-writer.ts) through the
 * real flusher: each lane's files are recorded in the batch chain, verify
 * holds, the events read back are the decision log's, once each and in
 * order, and compaction merges lane files like any other.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { sourceDir } from '../../src/audit/parquet-writer.js';
import { openDuckDb } from '../../src/lake/duckdb.js';
import { insertSpooled } from '../../src/store/decision-log.js';
import { auditWorkspace, manualAudit } from './manual-audit.js';

const workspace = auditWorkspace('steward-lanes-');

describe('security lake on lanes', () => {
  it('records every lane\'s files, verifies, reads back each decision once in order, and compacts', async () => {
    const ws = workspace();
    // Threat: a lane's file left out of the batch record (verify reports a file no batch wrote, and
    // compaction never merges it), or a cut that drops, doubles or reorders decisions.
    const audit = await manualAudit(ws, { writer: { lanes: 3, minLaneBytes: 1 } });
    try {
      await audit.flush('steward');
      // Two days, so lanes write into two partitions and a closed day can be compacted.
      const days = [Date.UTC(2025, 4, 1, 12), Date.UTC(2025, 4, 2, 12)];
      for (const [d, at] of days.entries()) {
        const spooled = Array.from({ length: 30 }, (_, i) => ({
          key: `lanes-${d}-${i}`,
          at: new Date(at + i * 1000).toISOString(),
          entry: { actor: `user:u${i % 4}`, action: 'authorize.SELECT', resource: `lake.db.t${i}`, result: i % 3 === 0 ? ('deny' as const) : ('allow' as const), reason: `day ${d} #${i}` },
        }));
        assert.equal(await insertSpooled(spooled, ws.db), 30);
      }
      const [r] = await audit.flush('steward');
      assert.ok((r?.events ?? 0) >= 60, `wrote ${r?.events}`);
      const root = sourceDir(ws.services.config.lakeDir, 'steward');
      const files = (await fs.readdir(root, { recursive: true })).map(String).filter((f) => f.endsWith('.parquet'));
      assert.ok(files.some((f) => /-[12]\.parquet$/.test(f)), `lane files: ${files.join(', ')}`);
      const { rows: recorded } = await ws.db.query<{ file: string }>("SELECT f->>'file' AS file FROM steward.audit_batches, jsonb_array_elements(files) f WHERE source = 'steward'");
      assert.deepEqual(recorded.map((x) => x.file).sort(), files.map((f) => f.split(path.sep).join('/')).sort());
      const v = await audit.verify('steward');
      assert.equal(v.ok, true, JSON.stringify(v.problems));

      const duck = await openDuckDb();
      const read = await duck.all<{ seq: number; uid: string }>('SELECT seq, metadata.uid AS uid FROM read_parquet($1) ORDER BY seq', [path.join(root, '**', '*.parquet')]);
      const { rows: logged } = await ws.db.query<{ id: number }>('SELECT id FROM steward.decision_log WHERE audit_batch IS NOT NULL ORDER BY id');
      assert.deepEqual(read.map((x) => x.uid), logged.map((x) => `steward-${x.id}`));
      assert.deepEqual(read.map((x) => x.seq), read.map((_, i) => i + 1));
      duck.close();

      const compacted = await audit.compact('steward');
      assert.ok(compacted.some((c) => c.partitions.some((p) => p.endsWith('eventDay=20250501'))), JSON.stringify(compacted));
      const after = await audit.verify('steward');
      assert.equal(after.ok, true, JSON.stringify(after.problems));
    } finally {
      await audit.stop();
    }
  });
});
