/**
 * The little of oidc-provider 8 (which ships no types) that the tests use:
 * a real OpenID Provider started in-process (test/support/oidc.ts).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http';

  export interface AccountClaims {
    readonly sub: string;
    readonly [claim: string]: unknown;
  }
  export interface Account {
    readonly accountId: string;
    claims(use: string, scope: string): Promise<AccountClaims> | AccountClaims;
  }
  export interface ProviderConfiguration {
    readonly clients?: readonly Record<string, unknown>[];
    readonly findAccount?: (ctx: unknown, id: string) => Promise<Account | undefined> | Account | undefined;
    readonly claims?: Readonly<Record<string, readonly string[]>>;
    readonly conformIdTokenClaims?: boolean;
    readonly cookies?: { readonly keys?: readonly string[] };
    readonly features?: Readonly<Record<string, unknown>>;
    readonly pkce?: { readonly required?: () => boolean };
    readonly jwks?: { readonly keys: readonly Record<string, unknown>[] };
    readonly ttl?: Readonly<Record<string, number>>;
  }
  export default class Provider {
    constructor(issuer: string, configuration?: ProviderConfiguration);
    callback(): (req: IncomingMessage, res: ServerResponse) => void;
    on(event: string, listener: (...args: unknown[]) => void): this;
  }
}
