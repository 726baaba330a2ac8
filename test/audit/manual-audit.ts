/**
 * An audit service over a workspace's store that flushes only when told (no
 * timers), for tests that drive the flusher by hand with its hooks and knobs.
 */
import { createAuditService, type AuditService, type AuditServiceOptions } from '../../src/audit/audit-service.js';
import type { Workspace } from '../../src/workspace/open.js';

export function manualAudit(ws: Workspace, extra: Partial<AuditServiceOptions> = {}): Promise<AuditService> {
  return createAuditService({ db: ws.db, lakeDir: ws.services.config.lakeDir, state: ws.services.state, lake: ws.services.lake, flushIntervalMs: 0, retentionIntervalMs: 0, ...extra });
}
