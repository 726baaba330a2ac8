/**
 * The indexed engine: the same answers as the reference evaluator, computed
 * from indexes built once per world.
 *
 * Build interns every distinct effective-tag vector as a "signature" (most
 * columns share their table's, most tables their database's), so matching a
 * tag expression is a few integer compares; indexes named grants by resource;
 * and caches, per requesting principal, its principal set as a bitmap with the
 * guardrails that apply to it and the tag grants it holds, by action.
 * `authorize` then only reads typed arrays and writes the result object.
 *
 * This module is the factory; the parts live in ./engine/: building the index
 * (catalog-index, tag-signatures, principal-sets, grant-index,
 * guardrail-index, tag-programs, world-index), deciding (authorize, resolve,
 * reach, coverage, select, describe), explaining (explain, listings) and the
 * memo.
 */
import type { Evaluator } from './decision.js';
import type { PolicyWorld, PrincipalRef } from './model.js';
import { authorizeWith } from './engine/authorize.js';
import { effectivePermissionsWith, whoCanAccessWith } from './engine/listings.js';
import { psetOf } from './engine/principal-sets.js';
import { buildIndex } from './engine/world-index.js';

export interface EngineStats {
  readonly buildMs: number;
  readonly catalogs: number;
  readonly databases: number;
  readonly tables: number;
  readonly columns: number;
  readonly users: number;
  readonly groups: number;
  readonly grants: number;
  readonly tagGrants: number;
  readonly filters: number;
  readonly guardrails: number;
  readonly tagKeys: number;
  /** Distinct effective-tag vectors among all databases, tables and columns. */
  readonly tagSignatures: number;
  /** Principal sets computed so far (they are cached lazily). */
  readonly principalSetsCached: number;
}

export interface Engine extends Evaluator {
  readonly stats: EngineStats;
  /** The world the engine was built from (frozen snapshot semantics: do not mutate). */
  readonly world: PolicyWorld;
  /** The principal set of a known principal, or null. */
  principalSetOf(principal: PrincipalRef): ReadonlySet<PrincipalRef> | null;
}

/**
 * Builds the indexed engine for one world snapshot. Build once per world
 * version; decisions are then cheap.
 *
 * @example createEngine(world).authorize({ principal: 'user:alice', action: 'SELECT', resource: parseResource('lake.claims.members')! })
 */
export function createEngine(world: PolicyWorld): Engine {
  return createEngineWith(world, {});
}

/** Build options for measurements; not exported by policy/index.ts. */
export interface EngineOptions {
  /**
   * Remember table and column decisions per principal set (default true).
   * Off, every request is decided afresh: what the benchmark times as the cold path.
   */
  readonly memo?: boolean;
}

export function createEngineWith(world: PolicyWorld, options: EngineOptions): Engine {
  const started = performance.now();
  const ix = buildIndex(world, options.memo ?? true);
  const buildMs = performance.now() - started;
  const counts = {
    buildMs,
    catalogs: ix.catNames.length,
    databases: ix.dbNames.length,
    tables: ix.tableKey.length,
    columns: ix.colSig.length,
    users: world.users.length,
    groups: world.groups.length,
    grants: world.grants.length,
    tagGrants: ix.tagGrants.length,
    filters: ix.fName.length,
    guardrails: world.guardrails.length,
    tagKeys: world.tagKeys.length,
    tagSignatures: ix.nSigs,
  };
  return {
    world,
    get stats(): EngineStats {
      let cached = 0;
      for (const p of ix.psets) if (p !== undefined) cached++;
      return { ...counts, principalSetsCached: cached };
    },
    authorize: (req) => authorizeWith(ix, req),
    effectivePermissions: (principal, now) => effectivePermissionsWith(ix, principal, now ?? Date.now()),
    whoCanAccess: (resource, action, now) => whoCanAccessWith(ix, resource, action, now ?? Date.now()),
    principalSetOf(principal) {
      const pid = ix.pidByRef.get(principal);
      if (pid === undefined || ix.pExists[pid] !== 1) return null;
      return new Set([...psetOf(ix, pid).members].map((p) => ix.pRef[p] as PrincipalRef));
    },
  };
}
