/**
 * state.log through the group commit, against a real store: a burst of
 * concurrent decisions becomes a few INSERTs, rows land in call order, every
 * call resolves only after its row is committed, and closing the workspace
 * writes what is queued.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openPglite, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrations.js';
import { createDecisionLog, type DecisionLogEntry } from '../../src/store/decision-log.js';
import { createAuditBuffer } from '../../src/audit/audit-buffer.js';
import { loadConfig } from '../../src/config.js';
import { openWorkspace } from '../../src/workspace/open.js';
import { seedMigratedStore } from '../support/migrated-store.js';

const entry = (i: number): DecisionLogEntry => ({ actor: 'user:a', action: 'authorize.SELECT', resource: `t${i}`, result: i % 3 === 0 ? 'deny' : 'allow', reason: 'r' });

describe('group commit of decision-log rows (PGlite)', () => {
  let db: Db;
  before(async () => {
    db = await openPglite('memory');
    await migrate(db);
  });
  after(async () => db.close());

  it('a burst of 300 concurrent calls is a few INSERTs, in call order, each acknowledged after its commit', async () => {
    const log = createDecisionLog(db);
    let inserts = 0;
    const buf = createAuditBuffer(
      async (es) => {
        inserts += 1;
        await log.appendDecisions(es);
      },
      { maxDelayMs: 0 },
    );
    const acks = Array.from({ length: 300 }, (_, i) =>
      buf.recordAll([entry(i)]).then(async () => {
        const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM steward.decision_log WHERE resource = $1', [`t${i}`]);
        assert.equal(Number(rows[0]?.n), 1, `t${i} acknowledged before commit`);
      }),
    );
    await Promise.all(acks);
    assert.ok(inserts <= 5, `${inserts} INSERTs`);
    const { rows } = await db.query<{ resource: string }>("SELECT resource FROM steward.decision_log WHERE resource LIKE 't%' ORDER BY id");
    assert.deepEqual(rows.map((r) => r.resource), Array.from({ length: 300 }, (_, i) => `t${i}`));
    await buf.close();
  });
});

describe('the workspace routes state.log through the group commit', () => {
  let home: string;
  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), 'steward-group-commit-'));
    await seedMigratedStore(home);
  });
  after(async () => fs.rm(home, { recursive: true, force: true }));

  it('concurrent state.log calls all commit, and close leaves nothing behind', async () => {
    const ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
    let closed = false;
    try {
      await Promise.all(Array.from({ length: 100 }, (_, i) => ws.services.state.log([entry(i)])));
      // Not awaited: close must still write it.
      void ws.services.state.log([{ ...entry(1000), resource: 'last' }]);
      await ws.close();
      closed = true;
    } finally {
      if (!closed) await ws.close();
    }
    const again = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
    try {
      const { rows } = await again.db.query<{ n: number }>("SELECT count(*)::int AS n FROM steward.decision_log WHERE actor = 'user:a'");
      assert.equal(Number(rows[0]?.n), 101);
    } finally {
      await again.close();
    }
  });
});
