/**
 * Every route of src/identity, for the app's table: cookie sessions, the
 * sign-in configuration, and `steward login`'s code exchange when OIDC is
 * configured. (The OIDC browser redirects are not JSON routes; see
 * `mountOidcRoutes`.)
 */
import type { RouteDef } from '../server/route.js';
import type { Services } from '../server/services.js';
import type { Actor } from '../server/actor.js';
import { sessionRoutes } from './session-routes.js';
import { authConfigRoute, cliLoginRoute } from './oidc-routes.js';

export function identityRoutes(services: Pick<Services, 'sessions' | 'oidc'>, verifyApiToken: (token: string, source: string) => Promise<Actor>): RouteDef[] {
  if (services.sessions === undefined) return [];
  return [
    ...sessionRoutes({ sessions: services.sessions, verifyApiToken }),
    authConfigRoute(services.oidc),
    ...(services.oidc === undefined ? [] : [cliLoginRoute(services.oidc)]),
  ];
}
