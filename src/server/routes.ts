/**
 * The route table: every HTTP operation Steward offers, in one list that also
 * produces the OpenAPI document.
 */
import type { RouteDef } from './route.js';
import { catalogRoutes } from '../catalog/catalog-routes.js';
import { principalRoutes } from '../principals/principal-routes.js';
import { tagRoutes } from '../governance/tag-routes.js';
import { decisionRoutes } from '../governance/decision-routes.js';
import { tokenRoutes } from '../governance/token-routes.js';
import { policyRoutes } from '../governance/policy-routes.js';
import { codeRoutes } from '../code/code-routes.js';
import { demoRoutes } from '../demo/demo-routes.js';
import { syncRoutes } from '../sync/sync-routes.js';
import { accessRoutes } from '../access/access-routes.js';
import { auditRoutes } from '../audit/audit-routes.js';
import { gatewayRoutes } from '../gateway/gateway-routes.js';
import { experimentRoutes } from '../experiments/experiment-routes.js';
import { embedRoutes } from '../embed/embed-routes.js';
import { trinoRoutes } from '../trino/trino-routes.js';
import { residencyRoutes } from '../residency/residency-routes.js';
import { sharingRoutes } from '../sharing/sharing-routes.js';
import { cleanroomRoutes } from '../cleanroom/cleanroom-routes.js';

export const allRoutes: readonly RouteDef[] = [
  ...catalogRoutes,
  ...principalRoutes,
  ...tagRoutes,
  ...policyRoutes,
  ...decisionRoutes,
  ...codeRoutes,
  ...tokenRoutes,
  ...demoRoutes,
  ...syncRoutes,
  ...accessRoutes,
  ...auditRoutes,
  ...gatewayRoutes,
  ...experimentRoutes,
  ...embedRoutes,
  ...trinoRoutes,
  ...residencyRoutes,
  ...sharingRoutes,
  ...cleanroomRoutes,
];
