/**
 * Builds the security lake for a workspace: the audit service (outbox flusher,
 * ingest, retention) and the monitor scheduler. A server runs the schedules;
 * a one-shot CLI command does not (its events stay in the outbox until a
 * server runs or `steward audit flush`).
 */
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { StateService } from '../workspace/state-service.js';
import type { LakeShell } from '../lake/lake-shell.js';
import { createAuditService, type AuditService } from './audit-service.js';
import { createMonitorService, type MonitorService } from './monitors.js';

/** What routes use of the security lake: the audit service and the monitors. */
export interface AuditRuntime {
  readonly service: AuditService;
  readonly monitors: MonitorService;
}

export interface AuditRuntimeHandle extends AuditRuntime {
  stop(): Promise<void>;
}

export async function startAuditRuntime(deps: {
  db: Db;
  config: Config;
  state: StateService;
  lake: LakeShell;
  purpose: 'server' | 'cli';
}): Promise<AuditRuntimeHandle> {
  const scheduled = deps.purpose === 'server';
  const service = await createAuditService({
    db: deps.db,
    lakeDir: deps.config.lakeDir,
    state: deps.state,
    lake: deps.lake,
    flushIntervalMs: scheduled ? 5_000 : 0,
    retentionIntervalMs: scheduled ? 3_600_000 : 0,
    ...(deps.config.auditLanes === undefined ? {} : { writer: { lanes: deps.config.auditLanes } }),
  });
  const monitors = createMonitorService({
    db: deps.db,
    lakeDir: deps.config.lakeDir,
    sources: () => service.sourceNames(),
    tickMs: scheduled ? 5_000 : 0,
    log: (e) => deps.state.log([{ actor: 'system', ...e }]),
  });
  await service.start();
  monitors.start();
  return {
    service,
    monitors,
    stop: async () => {
      await monitors.stop();
      await service.stop();
    },
  };
}
