/**
 * The requests Trino's OPA access-control plugin sends, as zod schemas.
 *
 * Every endpoint receives `{"input": {"context": …, "action": …}}`: the
 * identity Trino authenticated (`context.identity.user`), the operation
 * (`action.operation`, e.g. `SelectFromColumns`) and either one `resource` or,
 * in batch mode, a list `filterResources`. Resources are objects with one key
 * naming their kind (`catalog`, `schema`, `table`, `column`, `user`, …).
 * Fields we do not read (queryId, softwareStack, targetResource, grantee,
 * resource kinds we never allow) are accepted and ignored, so a newer Trino
 * that adds a field still gets answers; what we read is bounded and checked.
 */
import { z } from 'zod';

/** Items in one batch (`filterResources`) or columns in one table resource. Trino lists a schema's tables in one batch. */
export const MAX_BATCH = 10_000;

const TrinoName = z.string().min(1).max(256);

export const CatalogResource = z.object({ name: TrinoName });
export const SchemaResource = z.object({ catalogName: TrinoName, schemaName: TrinoName });
export const TableResource = z.object({
  catalogName: TrinoName,
  schemaName: TrinoName,
  tableName: TrinoName,
  columns: z.array(TrinoName).max(MAX_BATCH).optional(),
});
export const ColumnResource = z.object({
  catalogName: TrinoName,
  schemaName: TrinoName,
  tableName: TrinoName,
  columnName: TrinoName,
  columnType: z.string().max(4096).optional(),
});
export const UserResource = z.object({ user: TrinoName, groups: z.array(z.string().max(256)).max(1000).optional() });

export const OpaResource = z.object({
  catalog: CatalogResource.optional(),
  schema: SchemaResource.optional(),
  table: TableResource.optional(),
  column: ColumnResource.optional(),
  user: UserResource.optional(),
});
export type OpaResource = z.infer<typeof OpaResource>;

export const OpaInput = z.object({
  context: z.object({
    identity: z.object({
      user: TrinoName,
      /** Trino's own groups: read, and ignored (Steward's memberships decide). */
      groups: z.array(z.string().max(256)).max(1000).optional(),
    }),
  }),
  action: z.object({
    operation: z.string().min(1).max(128),
    resource: OpaResource.optional(),
    filterResources: z.array(OpaResource).max(MAX_BATCH).optional(),
  }),
});
export type OpaInput = z.infer<typeof OpaInput>;

/** The body of every OPA request: the input document. */
export const OpaRequest = z.object({ input: OpaInput });
