/**
 * Where lake tables may live. Registering a lake table makes DuckDB read the
 * path with the server's rights, and the gateway then opens it for whoever is
 * granted the table; so a location is accepted only under a configured root
 * (`STEWARD_LAKE_ROOTS`, default the workspace's lake folder), symlinks
 * resolved, and never inside the workspace's private folder (store, lock,
 * `server.json` with the local admin token) unless a root inside it admits it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { StewardError } from '../errors.js';
import type { Change } from '../policy/changes.js';

export interface LakeRoots {
  /** Absolute directories a location must lie in. */
  readonly roots: readonly string[];
  /** Absolute directories refused even under a broader root (the workspace home). */
  readonly private: readonly string[];
}

/** Why `location` may not be registered, or null when it may. */
export function lakeLocationProblem(location: string, policy: LakeRoots): string | null {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) return `location \`${location}\` is remote; only local paths under the lake roots may be registered`;
  const real = realLocation(location);
  const roots = policy.roots.map(realDir);
  const admitting = roots.filter((r) => inside(real, r));
  if (admitting.length === 0) return `location \`${location}\` is outside the lake roots (${policy.roots.join(', ')}); set STEWARD_LAKE_ROOTS to allow another folder`;
  for (const p of policy.private.map(realDir)) {
    // Only a root strictly inside the private folder (its `lake/`) admits what lies in it: a root equal to it would admit the store itself.
    if (inside(real, p) && !admitting.some((r) => r !== p && inside(r, p))) return `location \`${location}\` is inside the workspace's private folder`;
  }
  return null;
}

/** Throws STEWARD_E_SOURCE when `location` may not be registered. */
export function assertLakeLocation(location: string, policy: LakeRoots): void {
  const problem = lakeLocationProblem(location, policy);
  if (problem !== null) throw new StewardError('STEWARD_E_SOURCE', problem, { details: [{ path: 'location', message: problem }] });
}

/**
 * Every lake table a change writes must be readable under the roots: the
 * registration route inspects files, but policy files and the API can also
 * write a table with any location, and the gateway would then open it.
 */
export function admitLakeLocations(changes: readonly Change[], policy: LakeRoots): void {
  for (const c of changes) {
    if (c.op !== 'put' || c.kind !== 'table' || c.entity.source.kind !== 'lake') continue;
    const t = c.entity;
    const problem = lakeLocationProblem((t.source as Extract<typeof t.source, { kind: 'lake' }>).location, policy);
    if (problem !== null) {
      throw new StewardError('STEWARD_E_SOURCE', `table \`${t.catalog}.${t.database}.${t.name}\`: ${problem}`, {
        details: [{ path: `${t.catalog}.${t.database}.${t.name}.source.location`, message: problem }],
      });
    }
  }
}

/** Whether path `p` is `dir` or lies in it, by whole segments (`/lake/eu-copy` is not in `/lake/eu`). */
export function inside(p: string, dir: string): boolean {
  const rel = path.relative(dir, p);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

function realDir(dir: string): string {
  return realLocation(dir);
}

/**
 * The location with every symlink in its existing part resolved: the part
 * before the first glob character, walked up to the nearest folder that
 * exists. What follows is kept as written (it cannot hold a symlink yet).
 */
export function realLocation(location: string): string {
  const absolute = path.resolve(location);
  const globAt = absolute.search(/[*?[{]/);
  const fixed = globAt < 0 ? absolute : absolute.slice(0, absolute.lastIndexOf(path.sep, globAt) + 1);
  let existing = path.resolve(fixed);
  const rest: string[] = [];
  for (;;) {
    try {
      return path.join(fs.realpathSync(existing), ...rest.reverse());
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) return path.join(existing, ...rest.reverse());
      rest.push(path.basename(existing));
      existing = parent;
    }
  }
}
