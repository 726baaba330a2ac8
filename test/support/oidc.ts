/**
 * OpenID Providers for sign-in tests, on 127.0.0.1 ports of their own:
 *
 * - `startOpenIdProvider`: a real one (oidc-provider 8, in-memory adapter,
 *   its development login and consent pages driven over HTTP by `signInAt`).
 * - `startForgedProvider`: a tiny provider we control, which answers every
 *   authorization at once and mints whatever ID token a test asks for (bad
 *   issuer, audience, expiry, `alg: none`, unknown `kid`), since a real
 *   provider refuses to mint bad tokens.
 *
 * `Browser` is a fetch with one cookie jar per origin that never follows
 * redirects on its own.
 */
import http from 'node:http';
import { generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

export interface Account {
  readonly preferred_username?: string;
  readonly email?: string;
  readonly name?: string;
  groups?: string[];
}

export interface RunningProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  close(): Promise<void>;
}

async function listen(handler: http.RequestListener): Promise<{ server: http.Server; url: string }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

const closeServer = (server: http.Server): Promise<void> =>
  new Promise((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });

/** A real OpenID Provider whose accounts (by id) are `accounts`, mutable between sign-ins. */
export async function startOpenIdProvider(redirectUri: string, accounts: Map<string, Account>): Promise<RunningProvider> {
  let handler: http.RequestListener | undefined;
  const { server, url } = await listen((req, res) => (handler as http.RequestListener)(req, res));
  const clientId = 'steward';
  const clientSecret = randomBytes(24).toString('base64url');
  const provider = new Provider(url, {
    clients: [{ client_id: clientId, client_secret: clientSecret, redirect_uris: [redirectUri], response_types: ['code'], grant_types: ['authorization_code'] }],
    findAccount: (_ctx, id) => {
      const a = accounts.get(id);
      return a === undefined ? undefined : { accountId: id, claims: () => ({ sub: id, ...a }) };
    },
    claims: { openid: ['sub'], profile: ['preferred_username', 'name', 'groups'], email: ['email'] },
    // Claims in the ID token itself (Steward reads no userinfo).
    conformIdTokenClaims: false,
    cookies: { keys: [randomBytes(16).toString('hex')] },
    features: { devInteractions: { enabled: true } },
    pkce: { required: () => true },
  });
  handler = provider.callback();
  return { issuer: url, clientId, clientSecret, close: () => closeServer(server) };
}

export class Browser {
  private readonly jars = new Map<string, Map<string, string>>();

  async fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const origin = new URL(url).origin;
    const jar = this.jars.get(origin) ?? new Map<string, string>();
    this.jars.set(origin, jar);
    const headers = new Headers(init.headers);
    if (jar.size > 0) headers.set('cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  }

  cookie(origin: string, name: string): string | undefined {
    return this.jars.get(origin)?.get(name);
  }

  setCookie(origin: string, name: string, value: string): void {
    const jar = this.jars.get(origin) ?? new Map<string, string>();
    jar.set(name, value);
    this.jars.set(origin, jar);
  }

  forget(origin: string, name: string): void {
    this.jars.get(origin)?.delete(name);
  }
}

/**
 * Follows redirects from `start` through the provider, signing in as
 * `accountId` and consenting on its pages, until the provider redirects to
 * `callbackPrefix`; returns that callback URL (not fetched).
 */
export async function signInAt(browser: Browser, start: string, accountId: string, callbackPrefix: string): Promise<string> {
  let next = start;
  for (let hop = 0; hop < 20; hop++) {
    if (next.startsWith(callbackPrefix)) return next;
    const res = await browser.fetch(next);
    const location = res.headers.get('location');
    if (location !== null) {
      await res.arrayBuffer();
      next = new URL(location, next).href;
      continue;
    }
    const html = await res.text();
    if (res.status !== 200) throw new Error(`${next} answered ${res.status}: ${html.slice(0, 300)}`);
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    if (action === undefined || prompt === undefined) throw new Error(`no interaction form at ${next}: ${html.slice(0, 300)}`);
    const body = new URLSearchParams(prompt === 'login' ? { prompt, login: accountId, password: 'any' } : { prompt });
    const submitted = await browser.fetch(new URL(action, next).href, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body.toString() });
    await submitted.arrayBuffer();
    const after = submitted.headers.get('location');
    if (after === null) throw new Error(`interaction ${prompt} at ${action} answered ${submitted.status}`);
    next = new URL(after, next).href;
  }
  throw new Error('too many redirects');
}

// ------------------------------------------------------------ forged provider

export interface Forgery {
  /** Claims over the well-formed ones (`null` removes a claim). */
  claims?: Record<string, unknown>;
  /** `none`: unsigned; `RS256` (default). */
  alg?: 'none' | 'RS256';
  /** The `kid` in the header; default the published key's. */
  kid?: string;
  /** Sign with a key the provider never published. */
  foreignKey?: boolean;
  /** The `issuer` the discovery document states; default the real one. */
  discoveryIssuer?: string;
}

export interface ForgedProvider extends RunningProvider {
  /** What the next ID tokens look like. */
  forge(f: Forgery): void;
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

export async function startForgedProvider(): Promise<ForgedProvider> {
  const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const foreign = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = 'published-key';
  const clientId = 'steward';
  const clientSecret = randomBytes(24).toString('base64url');
  let forgery: Forgery = {};
  const nonces = new Map<string, { nonce: string; sub: string }>();
  let issuer = '';

  const idToken = (code: string): string => {
    const pending = nonces.get(code);
    const now = Math.floor(Date.now() / 1000);
    const claims: Record<string, unknown> = {
      iss: issuer,
      sub: 'forged-alice',
      aud: clientId,
      iat: now,
      exp: now + 300,
      nonce: pending?.nonce,
      preferred_username: 'alice',
      groups: ['engineering'],
    };
    for (const [k, v] of Object.entries(forgery.claims ?? {})) {
      if (v === null) delete claims[k];
      else claims[k] = v;
    }
    const alg = forgery.alg ?? 'RS256';
    const header = { alg, typ: 'JWT', ...(alg === 'none' ? {} : { kid: forgery.kid ?? kid }) };
    const input = `${b64(header)}.${b64(claims)}`;
    if (alg === 'none') return `${input}.`;
    const signer: KeyObject = forgery.foreignKey === true ? foreign.privateKey : key.privateKey;
    return `${input}.${sign('sha256', Buffer.from(input), signer).toString('base64url')}`;
  };

  const json = (res: http.ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(body));
  };

  const { server, url } = await listen((req, res) => {
    const u = new URL(req.url ?? '/', issuer);
    if (u.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer: forgery.discoveryIssuer ?? issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
      });
    }
    if (u.pathname === '/jwks') return json(res, 200, { keys: [{ ...key.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' }] });
    if (u.pathname === '/authorize') {
      const code = randomBytes(16).toString('base64url');
      nonces.set(code, { nonce: u.searchParams.get('nonce') ?? '', sub: 'forged-alice' });
      const back = new URL(u.searchParams.get('redirect_uri') ?? '');
      back.searchParams.set('code', code);
      back.searchParams.set('state', u.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.href });
      return res.end();
    }
    if (u.pathname === '/token' && req.method === 'POST') {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        const code = new URLSearchParams(body).get('code') ?? '';
        json(res, 200, { access_token: randomBytes(16).toString('base64url'), token_type: 'Bearer', expires_in: 300, id_token: idToken(code) });
      });
      return undefined;
    }
    return json(res, 404, { error: 'not_found' });
  });
  issuer = url;
  return {
    issuer,
    clientId,
    clientSecret,
    forge: (f) => {
      forgery = f;
    },
    close: () => closeServer(server),
  };
}
