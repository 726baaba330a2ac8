/**
 * Everything a route handler may use, wired once in `src/workspace/open.ts`.
 * Handlers depend on this narrow surface, not on how it was built.
 */
import type { Config } from '../config.js';
import type { StateService } from '../workspace/state-service.js';
import type { TokenStore } from '../store/token-store.js';
import type { DecisionLog } from '../store/decision-log.js';
import type { LakeShell } from '../lake/lake-shell.js';
import type { SyncService } from '../sync/sync-service.js';
import type { AccessService } from '../access/access-service.js';
import type { AuditRuntime } from '../audit/runtime.js';
import type { GatewayService } from '../gateway/gateway-service.js';
import type { SessionStore } from '../identity/session-store.js';
import type { OidcSignIn } from '../identity/oidc-sign-in.js';
import type { ExperimentService } from '../experiments/experiment-service.js';
import type { EmbedService } from '../embed/embed-service.js';
import type { SharingService } from '../sharing/sharing-service.js';
import type { CleanroomService } from '../cleanroom/cleanroom-service.js';

export interface Services {
  readonly config: Config;
  readonly state: StateService;
  readonly tokens: TokenStore;
  readonly decisionLog: DecisionLog;
  readonly lake: LakeShell;
  /** Just-in-time access (src/access); optional so test doubles need not build it. */
  readonly access?: AccessService;
  /** Security lake and monitors (src/audit); optional like `access`. */
  readonly audit?: AuditRuntime;
  /** Governed lake queries and the workbench (src/gateway); optional so test doubles need not build it. */
  readonly gateway?: GatewayService;
  /** Warehouse sync (src/sync); optional like `access`. */
  readonly sync?: SyncService;
  /** The web console's cookie sessions (src/identity); optional like `access`: without them only bearer tokens sign in. */
  readonly sessions?: SessionStore;
  /** OpenID Connect sign-in, when STEWARD_OIDC_ISSUER is set. */
  readonly oidc?: OidcSignIn;
  /** Access experiments (src/experiments); optional like `access`. */
  readonly experiments?: ExperimentService;
  /** Embedded analytics (src/embed); optional like `access`. */
  readonly embed?: EmbedService;
  /** Sharing across workspaces (src/sharing); optional like `access`. */
  readonly sharing?: SharingService;
  /** Clean rooms (src/cleanroom); optional like `access`. */
  readonly cleanrooms?: CleanroomService;
}
