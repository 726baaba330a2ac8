/**
 * An audit service over a workspace's store that flushes only when told (no
 * timers), for tests that drive the flusher by hand with its hooks and knobs.
 */
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

/** A workspace opened (as the CLI opens it) on a copy of the migrated store in a fresh temporary home; `close` removes both. */
export async function auditWorkspace(prefix: string): Promise<{ readonly ws: Workspace; close(): Promise<void> }> {
  const home = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  await seedMigratedStore(home);
  const ws = await openWorkspace(loadConfig({}, { home }), { purpose: 'cli' });
  return {
    ws,
    async close() {
      await ws.close();
      await fs.rm(home, { recursive: true, force: true });
    },
  };
}
