/**
 * Builds OIDC sign-in from the configuration (src/config.ts validated it:
 * issuer, client id and secret, and the public URL come together or not at
 * all). Nothing is fetched here: discovery happens at the first sign-in, so a
 * provider that is down does not stop Steward from starting.
 */
import type { Config } from '../config.js';
import type { Db } from '../store/db.js';
import type { StateService } from '../workspace/state-service.js';
import { createOidcClient } from './oidc-client.js';
import { createPendingLoginStore } from './oidc-logins.js';
import { createCliLoginStore } from './cli-logins.js';
import { createOidcSignIn, type OidcSignIn } from './oidc-sign-in.js';

export const OIDC_CALLBACK_PATH = '/auth/oidc/callback';

export function oidcFromConfig(config: Config, deps: { db: Db; state: Pick<StateService, 'snapshot' | 'change'> }): OidcSignIn | undefined {
  const { oidcIssuer: issuer, oidcClientId: clientId, oidcClientSecret: clientSecret, publicUrl, oidcProvider: provider } = config;
  if (issuer === undefined || clientId === undefined || clientSecret === undefined || publicUrl === undefined || provider === undefined) return undefined;
  return createOidcSignIn({
    client: createOidcClient({ issuer, clientId, clientSecret, redirectUri: new URL(OIDC_CALLBACK_PATH, publicUrl).href }),
    logins: createPendingLoginStore(deps.db),
    cliLogins: createCliLoginStore(deps.db),
    state: deps.state,
    issuer,
    provider,
    groupsClaim: config.oidcGroupsClaim,
  });
}
