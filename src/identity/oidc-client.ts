/**
 * The OpenID Provider as openid-client 6 sees it: discovery (once, retried
 * after a failure), the authorization URL (code flow, PKCE S256, state,
 * nonce), and the redemption of an authorization response into verified
 * ID-token claims. openid-client checks the issuer (of the discovery document,
 * of the `iss` response parameter and of the token), the state, the
 * signature against the provider's JWKS (so `alg: none` and unknown keys
 * fail), the audience, the expiry and the nonce.
 */
import type * as OpenIdClient from 'openid-client';

export interface OidcClientSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** `<public URL>/auth/oidc/callback`, as registered at the provider. */
  readonly redirectUri: string;
}

export interface AuthorizationChecks {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export interface OidcClient {
  authorizationUrl(checks: AuthorizationChecks): Promise<URL>;
  /** The verified ID-token claims of the authorization response whose query is `search`; throws when anything fails verification. */
  redeem(search: string, checks: AuthorizationChecks): Promise<Readonly<Record<string, unknown>>>;
}

const DISCOVERY_TIMEOUT_SECONDS = 10;

export function createOidcClient(settings: OidcClientSettings): OidcClient {
  let configuration: Promise<OpenIdClient.Configuration> | undefined;
  const configured = (): Promise<OpenIdClient.Configuration> =>
    (configuration ??= discover(settings).catch((e: unknown) => {
      configuration = undefined; // a provider that was down at the first sign-in is asked again at the next
      throw e;
    }));

  return {
    async authorizationUrl(checks) {
      const client = await openIdClient();
      return client.buildAuthorizationUrl(await configured(), {
        redirect_uri: settings.redirectUri,
        response_type: 'code',
        scope: 'openid profile email',
        state: checks.state,
        nonce: checks.nonce,
        code_challenge: await client.calculatePKCECodeChallenge(checks.codeVerifier),
        code_challenge_method: 'S256',
      });
    },

    async redeem(search, checks) {
      // The redirect URI sent to the token endpoint is this URL without its query: it must be the registered one, not whatever host the request named.
      const current = new URL(settings.redirectUri);
      current.search = search;
      const client = await openIdClient();
      const tokens = await client.authorizationCodeGrant(await configured(), current, {
        pkceCodeVerifier: checks.codeVerifier,
        expectedState: checks.state,
        expectedNonce: checks.nonce,
        idTokenExpected: true,
      });
      const claims = tokens.claims();
      if (claims === undefined) throw new Error('the provider returned no ID token');
      return claims;
    },
  };
}

/** Loaded at the first sign-in: a CLI command, which never signs in this way, does not pay for it. */
const openIdClient = (): Promise<typeof OpenIdClient> => import('openid-client');

async function discover(settings: OidcClientSettings): Promise<OpenIdClient.Configuration> {
  const client = await openIdClient();
  const issuer = new URL(settings.issuer);
  // Plain http only for a loopback issuer (src/config.ts refuses it elsewhere): a provider on the admin's own machine or in tests.
  const insecure = issuer.protocol === 'http:';
  const configuration = await client.discovery(issuer, settings.clientId, { redirect_uris: [settings.redirectUri], response_types: ['code'] }, client.ClientSecretBasic(settings.clientSecret), {
    timeout: DISCOVERY_TIMEOUT_SECONDS,
    ...(insecure ? { execute: [client.allowInsecureRequests] } : {}),
  });
  // Verify the ID token's signature against the provider's published keys even though it came from the token endpoint
  // (OIDC allows trusting TLS there): a forged, unsigned or foreign-key token must fail on its own, not on the transport.
  client.enableNonRepudiationChecks(configuration);
  return configuration;
}
