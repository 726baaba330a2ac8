/**
 * Configuration: one schema, parsed once from the environment, frozen. A bad
 * value stops the process with every problem listed; there are no default
 * secrets.
 */
import path from 'node:path';
import { z } from 'zod';
import { StewardError } from './errors.js';

const ConfigSchema = z
  .object({
    home: z.string().min(1).max(4096),
    databaseUrl: z.string().max(4096).optional(),
    url: z.url().max(4096).optional(),
    token: z.string().max(512).optional(),
    host: z.string().max(255),
    port: z.coerce.number().int().min(0).max(65535),
    lakeDir: z.string().max(4096),
    /** Folders lake tables may be registered from (see src/catalog/lake-roots.ts). */
    lakeRoots: z.array(z.string().min(1).max(4096)).min(1).max(64),
  })
  .strict();

export type Config = Readonly<z.infer<typeof ConfigSchema>>;

/** Reads STEWARD_* variables. `overrides` wins (CLI flags). */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}): Config {
  const home = path.resolve(overrides.home ?? env['STEWARD_HOME'] ?? '.steward');
  const lakeDir = path.resolve(overrides.lakeDir ?? env['STEWARD_LAKE_DIR'] ?? path.join(home, 'lake'));
  const raw = {
    home,
    databaseUrl: emptyToUndefined(overrides.databaseUrl ?? env['STEWARD_DATABASE_URL']),
    url: emptyToUndefined(overrides.url ?? env['STEWARD_URL']),
    token: emptyToUndefined(overrides.token ?? env['STEWARD_TOKEN']),
    host: overrides.host ?? env['STEWARD_HOST'] ?? '127.0.0.1',
    port: overrides.port ?? env['STEWARD_PORT'] ?? 8470,
    lakeDir,
    // The workspace's own lake folder (demo data, the security lake) is always a root.
    lakeRoots: [...new Set([lakeDir, ...(overrides.lakeRoots ?? lakeRootsFrom(env['STEWARD_LAKE_ROOTS']) ?? [])])],
  };
  const parsed = ConfigSchema.superRefine((c, ctx) => {
    const rel = path.relative(c.lakeDir, c.home);
    // The lake folder is served to granted users; the home holds the store and the local admin token.
    if (rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel))) {
      ctx.addIssue({ code: 'custom', path: ['lakeDir'], message: 'must not be the workspace folder (STEWARD_HOME) or contain it' });
    }
  }).safeParse(raw);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({
      path: `STEWARD_${i.path.map((p) => String(p).replace(/[A-Z]/g, (c) => `_${c}`)).join('_').toUpperCase()}`,
      message: i.message,
    }));
    throw new StewardError('STEWARD_E_CONFIG', `invalid configuration: ${details.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details });
  }
  return Object.freeze(parsed.data);
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

function emptyToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}
