/**
 * The part of the configuration that says where a command goes: the
 * workspace folder, a shared PostgreSQL store, or a server and its token.
 * Every CLI command reads it; only commands that open the workspace
 * themselves read the rest (`config.ts`, validated with zod). Kept apart and
 * free of dependencies so that a command answered by a server starts fast.
 */
import path from 'node:path';
import { StewardError } from './errors.js';
import { parseDuration } from './time.js';

export interface ClientConfig {
  readonly home: string;
  readonly databaseUrl?: string;
  readonly url?: string;
  readonly token?: string;
  /**
   * `STEWARD_DAEMON`: when set, a command that would open the embedded
   * workspace itself starts a background server on it instead (or reuses the
   * one running), which stops after this many idle seconds.
   */
  readonly daemonIdleSeconds?: number;
}

/** `STEWARD_DAEMON=1` (or `on`, `true`): the background server stops after this long idle. */
export const DEFAULT_DAEMON_IDLE_SECONDS = 600;

export interface ConfigIssue {
  /** The variable, e.g. `STEWARD_URL`. */
  readonly path: string;
  readonly message: string;
}

/** Reads the four variables; `overrides` (CLI flags) win. Problems are returned, not thrown, so they can join others. */
export function readClientConfig(env: NodeJS.ProcessEnv, overrides: Partial<ClientConfig> = {}): { config: ClientConfig; issues: ConfigIssue[] } {
  const issues: ConfigIssue[] = [];
  const check = (name: string, value: string | undefined, max: number, extra?: (v: string) => string | undefined): string | undefined => {
    if (value === undefined) return undefined;
    const problem = value.length > max ? `must be at most ${max} characters` : extra?.(value);
    if (problem !== undefined) issues.push({ path: name, message: problem });
    return value;
  };
  const home = path.resolve(overrides.home ?? env['STEWARD_HOME'] ?? '.steward');
  check('STEWARD_HOME', home, 4096);
  const databaseUrl = check('STEWARD_DATABASE_URL', emptyToUndefined(overrides.databaseUrl ?? env['STEWARD_DATABASE_URL']), 4096);
  const url = check('STEWARD_URL', emptyToUndefined(overrides.url ?? env['STEWARD_URL']), 4096, serverUrlProblem);
  const token = check('STEWARD_TOKEN', emptyToUndefined(overrides.token ?? env['STEWARD_TOKEN']), 512);
  const daemon = overrides.daemonIdleSeconds ?? daemonIdle(emptyToUndefined(env['STEWARD_DAEMON']), issues);
  const config: ClientConfig = {
    home,
    ...(databaseUrl === undefined ? {} : { databaseUrl }),
    ...(url === undefined ? {} : { url }),
    ...(token === undefined ? {} : { token }),
    ...(daemon === undefined ? {} : { daemonIdleSeconds: daemon }),
  };
  return { config, issues };
}

/** Like `readClientConfig`, but a problem stops the command. */
export function loadClientConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<ClientConfig> = {}): ClientConfig {
  const { config, issues } = readClientConfig(env, overrides);
  if (issues.length > 0) throw configError(issues);
  return Object.freeze(config);
}

export function configError(issues: readonly ConfigIssue[]): StewardError {
  return new StewardError('STEWARD_E_CONFIG', `invalid configuration: ${issues.map((d) => `${d.path}: ${d.message}`).join('; ')}`, { details: [...issues] });
}

function daemonIdle(value: string | undefined, issues: ConfigIssue[]): number | undefined {
  if (value === undefined) return undefined;
  const v = value.toLowerCase();
  if (['0', 'off', 'false', 'no'].includes(v)) return undefined;
  if (['1', 'on', 'true', 'yes'].includes(v)) return DEFAULT_DAEMON_IDLE_SECONDS;
  const seconds = parseDuration(v);
  if (seconds === null) issues.push({ path: 'STEWARD_DAEMON', message: 'must be `1` (stop after 10m idle), an idle time such as `30m`, or `0`' });
  return seconds ?? undefined;
}

function serverUrlProblem(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be a URL such as `http://127.0.0.1:8470`';
  }
  return url.protocol === 'http:' || url.protocol === 'https:' ? undefined : 'must be an http or https URL';
}

export function emptyToUndefined(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}
