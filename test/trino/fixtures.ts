/**
 * Requests shaped as Trino's OPA access-control plugin sends them, written
 * from the plugin's documentation in our own values (no real Trino runs
 * here): `{"input": {"context": {"identity", "queryId", "softwareStack"},
 * "action": {"operation", "resource" | "filterResources"}}}`.
 */

export interface TableRef {
  readonly catalogName: string;
  readonly schemaName: string;
  readonly tableName: string;
}

export type Resource =
  | { readonly catalog: { readonly name: string } }
  | { readonly schema: { readonly catalogName: string; readonly schemaName: string } }
  | { readonly table: TableRef & { readonly columns?: readonly string[] } }
  | { readonly column: TableRef & { readonly columnName: string; readonly columnType: string } }
  | { readonly user: { readonly user: string; readonly groups: readonly string[] } };

/** The context every request carries; `groups` is what Trino's group provider says (Steward ignores it). */
function context(user: string, groups: readonly string[] = []) {
  return { identity: { user, groups }, queryId: '20260101_000000_00042_zzzzz', softwareStack: { trinoVersion: '480' } };
}

/** A request for opa.policy.uri (and the row-filter and single column-mask URIs). */
export function single(user: string, operation: string, resource?: Resource, groups?: readonly string[]) {
  return { input: { context: context(user, groups), action: { operation, ...(resource === undefined ? {} : { resource }) } } };
}

/** A request for opa.policy.batched-uri or opa.policy.batch-column-masking-uri. */
export function batch(user: string, operation: string, filterResources: readonly Resource[], groups?: readonly string[]) {
  return { input: { context: context(user, groups), action: { operation, filterResources } } };
}

export const table = (catalogName: string, schemaName: string, tableName: string, columns?: readonly string[]): Resource => ({
  table: { catalogName, schemaName, tableName, ...(columns === undefined ? {} : { columns }) },
});

export const column = (catalogName: string, schemaName: string, tableName: string, columnName: string, columnType = 'varchar'): Resource => ({
  column: { catalogName, schemaName, tableName, columnName, columnType },
});

export const schema = (catalogName: string, schemaName: string): Resource => ({ schema: { catalogName, schemaName } });
export const catalog = (name: string): Resource => ({ catalog: { name } });
