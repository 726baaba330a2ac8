/**
 * The gateway as a service: the query engine plus the workbench store, built
 * once in `src/workspace/open.ts`.
 */
import type { Db } from '../store/db.js';
import type { StateService } from '../workspace/state-service.js';
import { createGateway, type Gateway, type GatewayLimits, type RemoteTables } from './gateway.js';
import { createWorkbenchStore, type WorkbenchStore } from './workbench-store.js';

export interface GatewayService {
  readonly gateway: Gateway;
  readonly workbench: WorkbenchStore;
  close(): Promise<void>;
}

export async function createGatewayService(deps: {
  readonly db: Db;
  readonly state: Pick<StateService, 'snapshot' | 'log'>;
  readonly limits?: Partial<GatewayLimits>;
  readonly remote?: RemoteTables;
}): Promise<GatewayService> {
  const workbench = createWorkbenchStore(deps.db);
  const gateway = await createGateway({
    snapshot: () => deps.state.snapshot(),
    log: (entries) => deps.state.log(entries),
    recordHistory: (e) => workbench.recordHistory(e),
    ...(deps.limits === undefined ? {} : { limits: deps.limits }),
    ...(deps.remote === undefined ? {} : { remote: deps.remote }),
  });
  return { gateway, workbench, close: () => gateway.close() };
}
