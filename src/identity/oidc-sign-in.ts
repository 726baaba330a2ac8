/**
 * OpenID Connect sign-in, from the redirect to the provider to a Steward
 * principal whose IdP-managed groups follow the token's group claim.
 *
 * `begin` records a pending sign-in (src/identity/oidc-logins.ts) and returns
 * the provider's URL plus a secret for a browser-binding cookie. `finish`
 * consumes the pending sign-in named by `state` (once), checks that the same
 * browser came back, has openid-client verify the provider's answer, maps the
 * claims (src/identity/claims.ts), and commits user and membership changes
 * with a decision-log entry (`idp.sync`). The caller creates the session.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { StewardError } from '../errors.js';
import type { StateService } from '../workspace/state-service.js';
import type { PrincipalRef } from '../policy/model.js';
import { identityFromClaims, planSignIn, type IdentityClaims, type SignInPlan } from './claims.js';
import type { OidcClient } from './oidc-client.js';
import { sha256Hex, type CliTarget, type PendingLoginStore } from './oidc-logins.js';
import type { CliLoginStore } from './cli-logins.js';

export interface OidcSignInDeps {
  readonly client: OidcClient;
  readonly logins: PendingLoginStore;
  /** One-time codes for `steward login` (src/identity/cli-logins.ts). */
  readonly cliLogins: CliLoginStore;
  readonly state: Pick<StateService, 'snapshot' | 'change'>;
  readonly issuer: string;
  /** The `provider` of the `idp map` rules for this issuer. */
  readonly provider: string;
  readonly groupsClaim: string;
}

export type SignInOutcome =
  | { readonly ok: true; readonly principal: PrincipalRef; readonly returnTo: string; readonly plan: SignInPlan; readonly cli?: CliTarget }
  | { readonly ok: false; readonly status: 400 | 401 | 403; readonly reason: string };

export interface OidcSignIn {
  readonly issuer: string;
  readonly cliLogins: CliLoginStore;
  /** `cli`: the sign-in of `steward login`, which ends in a one-time code for its loopback listener instead of a session. */
  begin(returnTo: string, cli?: CliTarget): Promise<{ location: URL; browserSecret: string }>;
  /** `search` is the callback's query; `browserSecret` the binding cookie's value, if the browser sent it. */
  finish(search: string, browserSecret: string | undefined): Promise<SignInOutcome>;
}

export function createOidcSignIn(deps: OidcSignInDeps): OidcSignIn {
  return {
    issuer: deps.issuer,
    cliLogins: deps.cliLogins,

    async begin(returnTo, cli) {
      // 256 random bits each, base64url: what openid-client's own helpers make (RFC 7636 allows 43-128 characters).
      const codeVerifier = randomBytes(32).toString('base64url');
      const nonce = randomBytes(32).toString('base64url');
      const { state, browserSecret } = await deps.logins.start({ codeVerifier, nonce, returnTo, ...(cli === undefined ? {} : { cli }) });
      return { location: await deps.client.authorizationUrl({ state, nonce, codeVerifier }), browserSecret };
    },

    async finish(search, browserSecret) {
      const params = new URLSearchParams(search);
      const error = params.get('error');
      if (error !== null) return refuse(401, `the identity provider refused the sign-in: \`${error.slice(0, 100)}\``);
      const state = params.get('state');
      const pending = state === null ? null : await deps.logins.consume(state);
      if (state === null || pending === null) return refuse(400, 'unknown, already used or expired sign-in (`state`): start again');
      if (browserSecret === undefined || !sameHash(sha256Hex(browserSecret), pending.browserHash)) {
        return refuse(400, 'this sign-in was started in another browser: start again');
      }
      let claims: Readonly<Record<string, unknown>>;
      try {
        claims = await deps.client.redeem(search, { state, nonce: pending.nonce, codeVerifier: pending.codeVerifier });
      } catch (e) {
        return refuse(401, `the identity provider's answer failed verification: ${describe(e)}`);
      }
      const identity = identityFromClaims(claims, deps.groupsClaim);
      if (!identity.ok) return refuse(403, identity.reason);
      const plan = await commitPlan(deps, identity);
      if (!plan.ok) return refuse(403, plan.reason);
      return { ok: true, principal: plan.principal, returnTo: pending.returnTo, plan, ...(pending.cli === undefined ? {} : { cli: pending.cli }) };
    },
  };
}

/** Plans on a snapshot, then commits the same plan rebuilt on the world the change sees (a concurrent edit cannot slip between). */
async function commitPlan(deps: OidcSignInDeps, identity: IdentityClaims): Promise<SignInPlan | { ok: false; reason: string }> {
  const first = planSignIn((await deps.state.snapshot()).world, deps.provider, identity);
  if (!first.ok || first.changes.length === 0) return first;
  let committed: SignInPlan | undefined;
  try {
    await deps.state.change({
      actor: `idp:${deps.provider}`,
      action: 'idp.sync',
      resource: first.principal,
      details: { provider: deps.provider, subject: identity.subject, created: first.created, added: first.added, removed: first.removed },
      build: (world) => {
        const plan = planSignIn(world, deps.provider, identity);
        if (!plan.ok) throw new StewardError('STEWARD_E_FORBIDDEN', plan.reason);
        committed = plan;
        return [...plan.changes];
      },
    });
  } catch (e) {
    if (e instanceof StewardError && e.code === 'STEWARD_E_FORBIDDEN') return { ok: false, reason: e.message };
    throw e;
  }
  return committed ?? first;
}

/** The `claim` an oauth4webapi check names, somewhere down the cause chain (openid-client wraps its errors). */
function checkedClaim(e: unknown): unknown {
  let at: unknown = e;
  for (let depth = 0; depth < 4 && typeof at === 'object' && at !== null; depth++) {
    const claim = (at as { claim?: unknown }).claim;
    if (claim !== undefined) return claim;
    at = (at as { cause?: unknown }).cause;
  }
  return undefined;
}

function refuse(status: 400 | 401 | 403, reason: string): SignInOutcome {
  return { ok: false, status, reason };
}

function sameHash(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** openid-client's message, code and the claim it checked (`iss`, `aud`, `exp`, `nonce`); never the token or the expected values. */
function describe(e: unknown): string {
  if (!(e instanceof Error)) return 'unknown error';
  const code = (e as { code?: unknown }).code;
  const claim = checkedClaim(e);
  const notes = [typeof code === 'string' ? code : undefined, typeof claim === 'string' ? `claim \`${claim.slice(0, 40)}\`` : undefined].filter((n) => n !== undefined);
  return `${e.message.slice(0, 300)}${notes.length > 0 ? ` (${notes.join(', ')})` : ''}`;
}
