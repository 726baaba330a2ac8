/**
 * Configuration: one schema, parsed once from the environment, frozen. A bad
 * value stops the process with every problem listed; there are no default
 * secrets.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { StewardError } from './errors.js';
import { configError, emptyToUndefined, readClientConfig, type ClientConfig } from './client-config.js';
import { parseDuration } from './time.js';
import { CATALOG_NAME_PATTERN, PRINCIPAL_PATTERN, REGION_PATTERN } from './policy/model.js';

/** The longest a browser session may live (idle or absolute): 30 days. */
const MAX_SESSION_SECONDS = 30 * 86_400;

/** Seconds, from a number (CLI overrides) or a duration text such as `30m` or `12h` (the environment). */
const SessionDuration = z.union([z.number(), z.string()]).transform((value, ctx) => {
  const seconds = typeof value === 'number' ? value : parseDuration(value);
  if (seconds === null || !Number.isInteger(seconds) || seconds < 60 || seconds > MAX_SESSION_SECONDS) {
    ctx.addIssue({ code: 'custom', message: `\`${String(value).slice(0, 40)}\` is not a duration from 1m to 30d (e.g. \`30m\`, \`12h\`)` });
    return z.NEVER;
  }
  return seconds;
});

/** An http(s) origin; plain http only on a loopback host (tests, a console on the admin's own machine). */
const WebOrigin = z
  .url()
  .max(2048)
  .refine((u) => {
    const url = new URL(u);
    return url.username === '' && url.password === '' && url.search === '' && url.hash === '' && (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname)));
  }, 'must be an https URL (http only on 127.0.0.1, ::1 or localhost), without credentials, query or fragment');

/** A region name as configured (`eu-west-1`), lowercased before it gets here. */
const Region = z.string().regex(REGION_PATTERN, 'must be a region name (lowercase letters, digits and `-`, e.g. `eu-west-1`)');

const ConfigSchema = z
  .object({
    home: z.string(),
    host: z.string().max(255),
    port: z.coerce.number().int().min(0).max(65535),
    lakeDir: z.string().max(4096),
    /** Folders lake tables may be registered from (see src/catalog/lake-roots.ts). */
    lakeRoots: z.array(z.string().min(1).max(4096)).min(1).max(64),
    /** Where browsers reach this server (`https://steward.example.com`): the OIDC redirect URI, and cookies are `Secure` when https. */
    publicUrl: WebOrigin.refine((u) => new URL(u).pathname === '/', 'must be an origin without a path').optional(),
    /** Browser sessions: idle timeout and absolute lifetime, in seconds. */
    sessionIdle: SessionDuration,
    sessionMax: SessionDuration,
    /** OpenID Connect sign-in (src/identity/oidc.ts); all four or none. */
    oidcIssuer: WebOrigin.optional(),
    oidcClientId: z.string().min(1).max(512).optional(),
    oidcClientSecret: z.string().min(1).max(4096).optional(),
    /** The `provider` of `steward idp map` rules that apply to this issuer. */
    oidcProvider: z.string().regex(/^[a-z0-9][a-z0-9_.-]{0,127}$/, 'must be the provider name of your `steward idp map` rules (lowercase letters, digits, `_.-`)').optional(),
    oidcGroupsClaim: z.string().regex(/^[A-Za-z0-9_:.\/-]{1,128}$/, 'must be a claim name (letters, digits, `_:./-`)'),
    /** Principals whose user tokens may call the Trino OPA endpoints (docs/trino.md); admins always may. */
    /** Trino catalog name → Steward catalog name, for catalogs named differently in Trino (docs/trino.md). */
    trinoCatalogs: z.record(z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,127}$/, 'must map Trino catalog names (a letter, then letters, digits, `_-`)'), z.string().regex(CATALOG_NAME_PATTERN, 'must name a Steward catalog')),
    /** Where this workspace runs (docs/residency.md): the default region of its lake roots and of the Trino it answers. */
    region: Region.optional(),
    /** Folder → region (`STEWARD_LAKE_REGIONS`); the most specific folder containing a real path names its region. */
    lakeRegions: z.record(z.string().min(1).max(4096).refine((p) => path.isAbsolute(p), 'must map absolute folders to regions'), Region),
    /** Trino catalog → region (`STEWARD_TRINO_REGIONS`, `*` for every other catalog); default the workspace region. */
    trinoRegions: z.record(z.string().regex(/^(?:\*|[A-Za-z][A-Za-z0-9_-]{0,127})$/, 'must map Trino catalog names or `*` to regions'), Region),
    trinoPrincipals: z.array(z.string().refine((p) => PRINCIPAL_PATTERN.test(p) && p.startsWith('user:'), 'must list `user:NAME` principals separated by commas')).max(64),
    /** Lanes of the security lake's writer (docs/security-lake.md, "How ingest works"); its default (2, or 1 on one core) when unset. */
    auditLanes: z.coerce.number({ error: 'must be a whole number from 1 to 16' }).int('must be a whole number from 1 to 16').min(1, 'must be a whole number from 1 to 16').max(16, 'must be a whole number from 1 to 16').optional(),
  })
  .strict();

/** Everything a server or an embedded command needs; where commands go is `ClientConfig`, checked by client-config.ts. */
export type Config = Readonly<z.infer<typeof ConfigSchema>> & ClientConfig;

/** Reads STEWARD_* variables. `overrides` wins (CLI flags). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const client = readClientConfig(env, overrides);
  const home = client.config.home;
  const lakeDir = path.resolve(overrides.lakeDir ?? env['STEWARD_LAKE_DIR'] ?? path.join(home, 'lake'));
  const raw = {
    home,
    host: overrides.host ?? env['STEWARD_HOST'] ?? '127.0.0.1',
    port: overrides.port ?? env['STEWARD_PORT'] ?? 8470,
    lakeDir,
    // The workspace's own lake folder (demo data, the security lake) is always a root.
    lakeRoots: [...new Set([lakeDir, ...(overrides.lakeRoots ?? lakeRootsFrom(env['STEWARD_LAKE_ROOTS']) ?? [])])],
    publicUrl: emptyToUndefined(overrides.publicUrl ?? env['STEWARD_PUBLIC_URL']),
    sessionIdle: overrides.sessionIdle ?? emptyToUndefined(env['STEWARD_SESSION_IDLE']) ?? '30m',
    sessionMax: overrides.sessionMax ?? emptyToUndefined(env['STEWARD_SESSION_MAX']) ?? '12h',
    oidcIssuer: emptyToUndefined(overrides.oidcIssuer ?? env['STEWARD_OIDC_ISSUER']),
    oidcClientId: emptyToUndefined(overrides.oidcClientId ?? env['STEWARD_OIDC_CLIENT_ID']),
    oidcClientSecret: overrides.oidcClientSecret ?? clientSecretFrom(env),
    oidcProvider: overrides.oidcProvider ?? emptyToUndefined(env['STEWARD_OIDC_PROVIDER']) ?? hostOf(overrides.oidcIssuer ?? env['STEWARD_OIDC_ISSUER']),
    oidcGroupsClaim: overrides.oidcGroupsClaim ?? emptyToUndefined(env['STEWARD_OIDC_GROUPS_CLAIM']) ?? 'groups',
    region: overrides.region ?? emptyToUndefined(env['STEWARD_REGION'])?.trim().toLowerCase(),
    lakeRegions: overrides.lakeRegions ?? lakeRegionsFrom(env['STEWARD_LAKE_REGIONS']),
    trinoRegions: overrides.trinoRegions ?? lowercaseValues(pairsFrom(env['STEWARD_TRINO_REGIONS'], 'STEWARD_TRINO_REGIONS')),
    trinoPrincipals: overrides.trinoPrincipals ?? listFrom(env['STEWARD_TRINO_PRINCIPALS']),
    trinoCatalogs: overrides.trinoCatalogs ?? pairsFrom(env['STEWARD_TRINO_CATALOGS'], 'STEWARD_TRINO_CATALOGS'),
    auditLanes: emptyToUndefined(env['STEWARD_AUDIT_LANES']),
  };
  const parsed = ConfigSchema.superRefine((c, ctx) => {
    const rel = path.relative(c.lakeDir, c.home);
    // The lake folder is served to granted users; the home holds the store and the local admin token.
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
      ctx.addIssue({ code: 'custom', path: ['lakeDir'], message: 'must not be the workspace folder (STEWARD_HOME) or contain it' });
    }
    if (c.sessionIdle > c.sessionMax) ctx.addIssue({ code: 'custom', path: ['sessionIdle'], message: 'must not exceed STEWARD_SESSION_MAX' });
    checkOidc(c, ctx);
  }).safeParse(raw);
  const issues = [
    ...client.issues,
    ...(parsed.success
      ? []
      : parsed.error.issues.map((i) => ({
          path: `STEWARD_${i.path.map((p) => String(p).replace(/[A-Z]/g, (c) => `_${c}`)).join('_').toUpperCase()}`,
          message: i.message,
        }))),
  ];
  if (!parsed.success || issues.length > 0) throw configError(issues);
  return Object.freeze({ ...client.config, ...parsed.data });
}

/** OIDC is all or nothing: a half-configured provider must stop the start, not fail at the first sign-in. */
function checkOidc(c: { oidcIssuer?: string | undefined; oidcClientId?: string | undefined; oidcClientSecret?: string | undefined; publicUrl?: string | undefined }, ctx: z.RefinementCtx): void {
  const set = [c.oidcIssuer, c.oidcClientId, c.oidcClientSecret].some((v) => v !== undefined);
  if (!set) return;
  const need = { oidcIssuer: c.oidcIssuer, oidcClientId: c.oidcClientId, oidcClientSecret: c.oidcClientSecret, publicUrl: c.publicUrl };
  for (const [key, value] of Object.entries(need)) {
    if (value === undefined) ctx.addIssue({ code: 'custom', path: [key], message: 'is required when OIDC sign-in is configured (STEWARD_OIDC_ISSUER, _CLIENT_ID, _CLIENT_SECRET or _CLIENT_SECRET_FILE, STEWARD_PUBLIC_URL)' });
  }
}

/**
 * `STEWARD_OIDC_CLIENT_SECRET`, or the first line of the file named by
 * `STEWARD_OIDC_CLIENT_SECRET_FILE` (a mounted secret). Both at once is an
 * error: which one wins would be a guess.
 */
function clientSecretFrom(env: NodeJS.ProcessEnv): string | undefined {
  const inline = emptyToUndefined(env['STEWARD_OIDC_CLIENT_SECRET']);
  const file = emptyToUndefined(env['STEWARD_OIDC_CLIENT_SECRET_FILE']);
  if (file === undefined) return inline;
  if (inline !== undefined) {
    throw new StewardError('STEWARD_E_CONFIG', 'invalid configuration: set STEWARD_OIDC_CLIENT_SECRET or STEWARD_OIDC_CLIENT_SECRET_FILE, not both');
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StewardError('STEWARD_E_CONFIG', `invalid configuration: STEWARD_OIDC_CLIENT_SECRET_FILE: cannot read \`${file}\` (${(e as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const secret = text.split(/\r?\n/, 1)[0]?.trim() ?? '';
  if (secret === '') throw new StewardError('STEWARD_E_CONFIG', `invalid configuration: STEWARD_OIDC_CLIENT_SECRET_FILE: \`${file}\` is empty`);
  return secret;
}

/** The issuer's host name, the default provider name of its mapping rules (`login.example.com`). */
function hostOf(issuer: string | undefined): string | undefined {
  const v = emptyToUndefined(issuer);
  if (v === undefined) return undefined;
  try {
    return new URL(v).hostname.toLowerCase();
  } catch {
    return undefined; // the issuer's own check names the problem
  }
}

function isLoopbackHost(host: string): boolean {
  return host === '127.0.0.1' || host === '[::1]' || host === 'localhost';
}

/** A comma-separated list; empty or unset is none. */
function listFrom(value: string | undefined): string[] {
  return (emptyToUndefined(value) ?? '')
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== '');
}

/** `a=b,c=d` as a record; an entry without `=` maps to `''`, which the schema refuses by name. */
function pairsFrom(value: string | undefined, variable: string): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const entry of listFrom(value)) {
    const at = entry.indexOf('=');
    const key = (at === -1 ? entry : entry.slice(0, at)).trim();
    // zod drops a `__proto__` key without a word; a mapping that silently vanished would deny a whole catalog.
    if (key === '__proto__') throw configError([{ path: variable, message: '`__proto__` is not a catalog name' }]);
    out[key] = at === -1 ? '' : entry.slice(at + 1).trim();
  }
  return out;
}

/** `STEWARD_LAKE_ROOTS`: folders separated by the platform's path delimiter (`:` on Linux). */
function lakeRootsFrom(value: string | undefined): string[] | undefined {
  const v = emptyToUndefined(value);
  if (v === undefined) return undefined;
  return v
    .split(path.delimiter)
    .filter((r) => r.trim() !== '')
    .map((r) => path.resolve(r.trim()));
}

/** Region names are compared lowercased everywhere: `EU-West-1` in a file is `eu-west-1`. */
function lowercaseValues(pairs: Record<string, string>): Record<string, string> {
  for (const k of Object.keys(pairs)) pairs[k] = (pairs[k] as string).toLowerCase();
  return pairs;
}

/**
 * `STEWARD_LAKE_REGIONS`: `folder=region` entries separated by the platform's
 * path delimiter, like STEWARD_LAKE_ROOTS (`/data/eu=eu-west-1:/data/us=us-east-1`).
 * The folder is resolved (`..` and a trailing slash removed); symlinks are
 * resolved when a location is judged, since they may change.
 */
function lakeRegionsFrom(value: string | undefined): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const entry of (emptyToUndefined(value) ?? '').split(path.delimiter)) {
    if (entry.trim() === '') continue;
    const at = entry.lastIndexOf('=');
    // an entry without `=` maps to '' and the schema names it
    const folder = (at === -1 ? entry : entry.slice(0, at)).trim();
    out[folder === '' ? folder : path.resolve(folder)] = at === -1 ? '' : entry.slice(at + 1).trim().toLowerCase();
  }
  return out;
}
