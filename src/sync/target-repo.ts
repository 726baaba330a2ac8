/**
 * Warehouse targets in the Steward store (`steward.sync_targets`, migration 5).
 * The spec is validated on the way in and on the way out.
 */
import { z } from 'zod';
import type { Db } from '../store/db.js';
import { StewardError, notFound } from '../errors.js';
import type { TargetSpec } from './sync-types.js';
import type { CredentialRef } from './warehouse-connection.js';
import { DEFAULT_BATCH_SIZE } from './apply.js';
import { REGION_PATTERN } from '../policy/model.js';

const Ident = z.string().min(1).max(63).regex(/^[A-Za-z_][A-Za-z0-9_$.-]*$/, 'must be a plain identifier');
const SchemaTable = z.string().max(127).regex(/^[A-Za-z_][A-Za-z0-9_$-]*\.[A-Za-z_][A-Za-z0-9_$-]*$/, 'must be `schema.table`');

export const TargetDefinitionSchema = z
  .object({
    name: z.string().min(1).max(63).regex(/^[a-z0-9_][a-z0-9_.-]*$/, 'must be lowercase letters, digits, `_`, `.`, `-`'),
    catalog: z.string().min(1).max(128),
    credentials: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('env'), name: z.string().min(1).max(128).regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name') }).strict(),
      z.object({ kind: z.literal('file'), path: z.string().min(1).max(4096) }).strict(),
    ]),
    rolePrefix: z.string().min(1).max(20).regex(/^[a-z_][a-z0-9_]*$/, 'must be a lowercase identifier').default('stw_'),
    userRoleTemplate: z.string().min(1).max(63).refine((s) => s.includes('{user}'), 'must contain `{user}`').default('{user}'),
    userRoles: z.record(z.string().max(128), Ident).default({}),
    schemaMap: z.record(z.string().max(128), Ident).default({}),
    tableMap: z.record(z.string().max(257), SchemaTable).default({}),
    drift: z.enum(['revoke', 'report']).default('revoke'),
    batchSize: z.number().int().min(1).max(1_000_000).default(DEFAULT_BATCH_SIZE),
    /** Where the warehouse runs (docs/residency.md): residency guardrails refuse to sync tables to a target outside their regions, or without one. */
    region: z.string().trim().toLowerCase().regex(REGION_PATTERN, 'must be a region name (lowercase letters, digits and `-`, e.g. `eu-west-1`)').optional(),
    /** The role an embedding application connects as: the sync gives it the dashboards' datasets under session-tag RLS (docs/embedding.md). */
    embedRole: Ident.optional(),
    /** Sync automatically after every policy change (incremental, debounced). */
    auto: z.boolean().default(false),
  })
  .strict();

/**
 * Parses a target and keeps login roles out of Steward's role name space: a
 * template or override starting with the role prefix would map a user onto a
 * group or personal role.
 */
export function parseTarget(def: unknown): z.infer<typeof TargetDefinitionSchema> {
  const spec = TargetDefinitionSchema.parse(def);
  // (a template like `{user}` can still produce one for a user named `stw_…`: world validation
  // reserves the default prefix, and the sync skips such a user with LOGIN_ROLE_RESERVED)
  if (spec.userRoleTemplate.startsWith(spec.rolePrefix)) {
    throw new StewardError('STEWARD_E_VALIDATION', `userRoleTemplate \`${spec.userRoleTemplate}\` starts with the role prefix \`${spec.rolePrefix}\`: login roles and the roles Steward creates need distinct names`);
  }
  for (const [user, role] of Object.entries(spec.userRoles)) {
    if (role.startsWith(spec.rolePrefix)) throw new StewardError('STEWARD_E_VALIDATION', `userRoles.${user}: login role \`${role}\` starts with the role prefix \`${spec.rolePrefix}\``);
  }
  if (spec.embedRole !== undefined) {
    // a role in the prefix would be read as (and could become) a group or personal role; a user's
    // login role would widen the embed role with that user's group memberships
    if (spec.embedRole.startsWith(spec.rolePrefix)) {
      throw new StewardError('STEWARD_E_VALIDATION', `embedRole: \`${spec.embedRole}\` starts with the role prefix \`${spec.rolePrefix}\`: the application's role must be one Steward does not create`);
    }
    const user = Object.entries(spec.userRoles).find(([, role]) => role === spec.embedRole);
    if (user !== undefined) throw new StewardError('STEWARD_E_VALIDATION', `embedRole: \`${spec.embedRole}\` is the login role of user \`${user[0]}\`: give the application a role of its own`);
  }
  return spec;
}

export type TargetDefinition = TargetSpec & {
  readonly credentials: CredentialRef;
  readonly batchSize: number;
  readonly auto: boolean;
};

export interface TargetStatus {
  readonly lastVersion: number | null;
  readonly lastSyncedAt: string | null;
  readonly lastStatus: string | null;
  readonly lastStatements: number | null;
}

export interface TargetRepo {
  list(): Promise<(TargetDefinition & { status: TargetStatus })[]>;
  get(name: string): Promise<TargetDefinition>;
  put(def: TargetDefinition): Promise<void>;
  remove(name: string): Promise<void>;
  recordSync(name: string, s: { version: number; status: string; statements: number }): Promise<void>;
}

interface Row {
  name: string;
  spec: unknown;
  last_version: number | null;
  last_synced_at: Date | null;
  last_status: string | null;
  last_statements: number | null;
}

function parse(row: Row): TargetDefinition & { status: TargetStatus } {
  const parsed = TargetDefinitionSchema.safeParse(row.spec);
  if (!parsed.success) throw new StewardError('STEWARD_E_INTERNAL', `stored warehouse target \`${row.name}\` is invalid`);
  return {
    ...parsed.data,
    status: {
      lastVersion: row.last_version,
      lastSyncedAt: row.last_synced_at === null ? null : row.last_synced_at.toISOString(),
      lastStatus: row.last_status,
      lastStatements: row.last_statements,
    },
  };
}

export function createTargetRepo(db: Db): TargetRepo {
  const cols = 'name, spec, last_version, last_synced_at, last_status, last_statements';
  return {
    async list() {
      const { rows } = await db.query<Row>(`SELECT ${cols} FROM steward.sync_targets ORDER BY name`);
      return rows.map(parse);
    },
    async get(name) {
      const { rows } = await db.query<Row>(`SELECT ${cols} FROM steward.sync_targets WHERE name = $1`, [name]);
      if (rows[0] === undefined) throw notFound('warehouse target', name);
      return parse(rows[0]);
    },
    async put(def) {
      const spec = parseTarget(def);
      await db.query(
        `INSERT INTO steward.sync_targets (name, spec) VALUES ($1, $2::jsonb)
         ON CONFLICT (name) DO UPDATE SET spec = EXCLUDED.spec, updated_at = now()`,
        [spec.name, JSON.stringify(spec)],
      );
    },
    async remove(name) {
      const { rows } = await db.query<{ name: string }>('DELETE FROM steward.sync_targets WHERE name = $1 RETURNING name', [name]);
      if (rows.length === 0) throw notFound('warehouse target', name);
    },
    async recordSync(name, s) {
      await db.query(
        'UPDATE steward.sync_targets SET last_version = $2, last_synced_at = now(), last_status = $3, last_statements = $4 WHERE name = $1',
        [name, s.version, s.status, s.statements],
      );
    },
  };
}

/** Targets kept in memory: for tests and for embedding without a store. */
export function createMemoryTargetRepo(): TargetRepo {
  const defs = new Map<string, TargetDefinition & { status: TargetStatus }>();
  const empty: TargetStatus = { lastVersion: null, lastSyncedAt: null, lastStatus: null, lastStatements: null };
  return {
    list: async () => [...defs.values()].sort((a, b) => (a.name < b.name ? -1 : 1)),
    get: async (name) => {
      const d = defs.get(name);
      if (d === undefined) throw notFound('warehouse target', name);
      return d;
    },
    put: async (def) => {
      const spec = parseTarget(def);
      defs.set(spec.name, { ...spec, status: defs.get(spec.name)?.status ?? empty });
    },
    remove: async (name) => {
      if (!defs.delete(name)) throw notFound('warehouse target', name);
    },
    recordSync: async (name, s) => {
      const d = defs.get(name);
      if (d !== undefined) defs.set(name, { ...d, status: { lastVersion: s.version, lastSyncedAt: new Date().toISOString(), lastStatus: s.status, lastStatements: s.statements } });
    },
  };
}
