/**
 * An audit service over a workspace's store that flushes only when told (no
 * timers), for tests that drive the flusher by hand with its hooks and knobs.
 */
import { after, before } from 'node:test';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createAuditService, type AuditService, type AuditServiceOptions } from '../../src/audit/audit-service.js';
import { loadConfig } from '../../src/config.js';
import { openWorkspace, type Workspace } from '../../src/workspace/open.js';
import { seedMigratedStore } from '../support/migrated-store.js';

export function manualAudit(ws: Workspace, extra: Partial<AuditServiceOptions> = {}): Promise<AuditService> {
  return createAuditService({ db: ws.db, lakeDir: ws.services.config.lakeDir, state: ws.services.state, lake: ws.services.lake, flushIntervalMs: 0, retentionIntervalMs: 0, ...extra });
}

/**
 * A workspace opened (as the CLI opens it) on a copy of the migrated store in a
 * fresh temporary home, for one test file: opened before its tests, closed and
 * removed after them. Returns the workspace's getter.
 */
export function auditWorkspace(prefix: string): () => Workspace {
  let home: string | undefined;
  let ws: Workspace | undefined;
  before(async () => {
    home = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
    await seedMigratedStore(home);
    ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
  });
  after(async () => {
    await ws?.close();
    if (home !== undefined) await fs.rm(home, { recursive: true, force: true });
  });
  return () => {
    if (ws === undefined) throw new Error('the workspace opens before the tests');
    return ws;
  };
}
