/**
 * The actual warehouse state, read from pg_catalog — not from Steward's own
 * records — so that grants made by hand are seen: table privileges from
 * `aclexplode(pg_class.relacl)`, column privileges from `pg_attribute.attacl`,
 * schema USAGE from `pg_namespace.nspacl`, memberships from `pg_auth_members`,
 * row security from `pg_class.relrowsecurity` and `pg_policies`.
 *
 * Read scope: the managed tables and schemas (every grantee), plus, on a full
 * read, whatever managed roles hold anywhere else and every membership that
 * involves a managed role. A table-scoped read (incremental sync) covers only
 * the given tables and their schemas.
 */
import type pg from 'pg';
import type { Item, MappedTable, TablePrivilege } from './sync-types.js';
import { itemKey, tableKey } from './names.js';
import type { ActualState } from './diff.js';
import { CONFIG_SCHEMA } from './ledger.js';

export interface ReadOptions {
  readonly targetName: string;
  readonly rolePrefix: string;
  readonly tables: readonly MappedTable[];
  readonly loginRoles: readonly string[];
  readonly scope: 'full' | 'tables';
}

const RELKINDS = `ARRAY['r','p','v','m','f']::"char"[]`;

export async function readActualState(client: pg.Client, o: ReadOptions): Promise<ActualState> {
  const prefix = o.rolePrefix;
  const schemas = [...new Set(o.tables.map((t) => t.schema))];
  const full = o.scope === 'full';
  const items = new Map<string, Item>();
  const add = (it: Item): void => {
    items.set(itemKey(it), it);
  };

  const roles = new Set<string>();
  for (const r of (
    await client.query<{ rolname: string }>('SELECT rolname FROM pg_roles WHERE left(rolname, length($1)) = $1 OR rolname = ANY($2::text[])', [prefix, [...o.loginRoles]])
  ).rows) {
    roles.add(r.rolname);
    if (r.rolname.startsWith(prefix)) add({ k: 'role', role: r.rolname });
  }

  // Roles Steward created for this target under an earlier naming (another role prefix): still in
  // the ledger, no longer in the prefix. They are read as managed so that the plan revokes their
  // memberships and drops them, instead of leaving their access behind silently.
  const legacy = full ? await legacyRoles(client, o.targetName, prefix) : [];
  for (const r of legacy) {
    roles.add(r);
    add({ k: 'role', role: r });
  }

  if (full) {
    const { rows } = await client.query<{ role: string; member: string }>(
      `SELECT r.rolname AS role, m.rolname AS member
         FROM pg_auth_members am
         JOIN pg_roles r ON r.oid = am.roleid
         JOIN pg_roles m ON m.oid = am.member
        WHERE left(r.rolname, length($1)) = $1 OR left(m.rolname, length($1)) = $1 OR r.rolname = ANY($2::text[])`,
      [prefix, legacy],
    );
    for (const r of rows) add({ k: 'member', role: r.role, member: r.member });
  }

  // managed tables that exist, with their columns in ordinal order
  const { rows: rels } = await client.query<{ oid: number; schema: string; name: string; rls: boolean }>(
    `SELECT c.oid::int8 AS oid, n.nspname AS schema, c.relname AS name, c.relrowsecurity AS rls
       FROM unnest($1::text[], $2::text[]) AS w(schema_name, table_name)
       JOIN pg_namespace n ON n.nspname = w.schema_name
       JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name AND c.relkind = ANY(${RELKINDS})`,
    [o.tables.map((t) => t.schema), o.tables.map((t) => t.name)],
  );
  const tables = new Map<string, Set<string>>();
  const oids = rels.map((r) => Number(r.oid));
  const byOid = new Map<number, { schema: string; name: string }>();
  for (const r of rels) {
    tables.set(tableKey(r.schema, r.name), new Set());
    byOid.set(Number(r.oid), r);
    if (r.rls) add({ k: 'rls', schema: r.schema, table: r.name });
  }
  if (oids.length > 0) {
    const { rows } = await client.query<{ oid: number; name: string }>(
      'SELECT attrelid::int8 AS oid, attname AS name FROM pg_attribute WHERE attrelid = ANY($1::oid[]) AND attnum > 0 AND NOT attisdropped ORDER BY attrelid, attnum',
      [oids],
    );
    for (const r of rows) {
      const t = byOid.get(Number(r.oid));
      if (t !== undefined) tables.get(tableKey(t.schema, t.name))?.add(r.name);
    }
  }

  const existingSchemas = new Set(
    (await client.query<{ nspname: string }>('SELECT nspname FROM pg_namespace WHERE nspname = ANY($1::text[])', [schemas])).rows.map((r) => r.nspname),
  );

  // table privileges: every grantee on managed tables; managed grantees anywhere (full reads)
  const grantee = `COALESCE(g.rolname, 'PUBLIC')`;
  const anywhere = full ? `OR (c.relkind = ANY(${RELKINDS}) AND left(g.rolname, length($2)) = $2)` : '';
  const { rows: tprivs } = await client.query<{ schema: string; name: string; role: string; priv: TablePrivilege }>(
    `SELECT n.nspname AS schema, c.relname AS name, ${grantee} AS role, a.privilege_type AS priv
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL aclexplode(c.relacl) a
       LEFT JOIN pg_roles g ON g.oid = a.grantee
      WHERE a.grantee <> c.relowner AND (c.oid = ANY($1::oid[]) ${anywhere})`,
    full ? [oids, prefix] : [oids],
  );
  for (const r of tprivs) add({ k: 'table', role: r.role, schema: r.schema, table: r.name, priv: r.priv });

  const { rows: cprivs } = await client.query<{ schema: string; name: string; role: string; priv: TablePrivilege; cols: string[] }>(
    `SELECT n.nspname AS schema, c.relname AS name, ${grantee} AS role, a.privilege_type AS priv,
            array_agg(att.attname::text ORDER BY att.attnum) AS cols
       FROM pg_attribute att
       JOIN pg_class c ON c.oid = att.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       CROSS JOIN LATERAL aclexplode(att.attacl) a
       LEFT JOIN pg_roles g ON g.oid = a.grantee
      WHERE att.attacl IS NOT NULL AND att.attnum > 0 AND NOT att.attisdropped AND a.grantee <> c.relowner
        AND (c.oid = ANY($1::oid[]) ${anywhere})
      GROUP BY 1, 2, 3, 4`,
    full ? [oids, prefix] : [oids],
  );
  for (const r of cprivs) add({ k: 'columns', role: r.role, schema: r.schema, table: r.name, priv: r.priv, columns: r.cols });

  const { rows: usage } = await client.query<{ schema: string; role: string }>(
    `SELECT n.nspname AS schema, ${grantee} AS role
       FROM pg_namespace n
       CROSS JOIN LATERAL aclexplode(n.nspacl) a
       LEFT JOIN pg_roles g ON g.oid = a.grantee
      WHERE a.privilege_type = 'USAGE' AND a.grantee <> n.nspowner
        AND (n.nspname = ANY($1::text[]) ${full ? 'OR left(g.rolname, length($2)) = $2' : ''})`,
    full ? [schemas, prefix] : [schemas],
  );
  for (const r of usage) add({ k: 'usage', role: r.role, schema: r.schema });

  const { rows: policies } = await client.query<{ schema: string; name: string; policy: string; roles: string[]; cmd: string; permissive: string }>(
    `SELECT p.schemaname AS schema, p.tablename AS name, p.policyname AS policy, p.roles::text[] AS roles, p.cmd, p.permissive
       FROM pg_policies p
       JOIN unnest($1::text[], $2::text[]) AS w(schema_name, table_name) ON w.schema_name = p.schemaname AND w.table_name = p.tablename`,
    [o.tables.map((t) => t.schema), o.tables.map((t) => t.name)],
  );
  for (const p of policies) {
    const managedName = p.policy.startsWith(prefix);
    for (const role of p.roles) {
      if (!managedName && !role.startsWith(prefix) && role !== 'public') continue;
      const cmd = p.cmd === 'SELECT' || p.cmd === 'INSERT' || p.cmd === 'DELETE' ? p.cmd : 'SELECT';
      // a policy for ALL or UPDATE never matches a desired key, so it is revoked or reported like any hand-made one
      const restrictive = p.permissive === 'RESTRICTIVE' ? { restrictive: true as const } : {};
      add({ k: 'policy', schema: p.schema, table: p.name, name: p.policy, role: p.cmd === cmd ? role : `${role} (${p.cmd})`, cmd, expr: '', ...restrictive });
    }
  }

  // managed roles PostgreSQL could not drop from here: they own objects or hold privileges in another database
  const rolesInUse = new Set<string>();
  if (full) {
    const { rows } = await client.query<{ rolname: string }>(
      `SELECT r.rolname FROM pg_roles r
        WHERE left(r.rolname, length($1)) = $1
          AND EXISTS (SELECT 1 FROM pg_shdepend d
                       WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid
                         AND ((d.dbid <> 0 AND d.dbid <> (SELECT oid FROM pg_database WHERE datname = current_database())) OR (d.dbid = 0 AND d.deptype = 'o')))`,
      [prefix],
    );
    for (const r of rows) rolesInUse.add(r.rolname);
  }

  const ledger = new Set<string>();
  const exists = (await client.query<{ t: string | null }>(`SELECT to_regclass('${CONFIG_SCHEMA}.grants')::text AS t`)).rows[0]?.t;
  if (exists !== null && exists !== undefined) {
    const { rows } = full
      ? await client.query<{ item_key: string }>(`SELECT item_key FROM ${CONFIG_SCHEMA}.grants WHERE target = $1`, [o.targetName])
      : await client.query<{ item_key: string }>(
          `SELECT g.item_key FROM ${CONFIG_SCHEMA}.grants g
             JOIN unnest($2::text[], $3::text[]) AS w(schema_name, table_name) ON w.schema_name = g.schema_name AND w.table_name = g.table_name
            WHERE g.target = $1`,
          [o.targetName, o.tables.map((t) => t.schema), o.tables.map((t) => t.name)],
        );
    for (const r of rows) ledger.add(r.item_key);
  }
  return { items, roles, tables, schemas: existingSchemas, ledger, rolesInUse };
}

/** Existing roles the ledger says Steward created for `target` whose names lie outside `prefix`. */
async function legacyRoles(client: pg.Client, target: string, prefix: string): Promise<string[]> {
  const exists = (await client.query<{ t: string | null }>(`SELECT to_regclass('${CONFIG_SCHEMA}.grants')::text AS t`)).rows[0]?.t;
  if (exists === null || exists === undefined) return [];
  const { rows } = await client.query<{ rolname: string }>(
    `SELECT r.rolname FROM ${CONFIG_SCHEMA}.grants g JOIN pg_roles r ON r.rolname = g.role_name
      WHERE g.target = $1 AND g.kind = 'role' AND left(g.role_name, length($2)) <> $2
      ORDER BY 1`,
    [target, prefix],
  );
  return rows.map((r) => r.rolname);
}
