/**
 * Trino catalog names → Steward catalog names (STEWARD_TRINO_CATALOGS,
 * `hive=lake`), like `--trino-catalog` of the static rules export.
 *
 * A Steward catalog that is the target of a mapping is reachable only under
 * its Trino name: with `hive=lake`, a Trino catalog that happens to be called
 * `lake` is some other catalog, and must not inherit lake's grants. Other
 * names map to themselves. An unreachable name becomes `''`, which no Steward
 * catalog has, so every question about it is denied.
 */
import type { OpaInput, OpaResource } from './opa-input.js';

export type CatalogNames = Readonly<Record<string, string>>;

export function stewardCatalog(names: CatalogNames, trino: string): string {
  if (Object.hasOwn(names, trino)) return names[trino] as string;
  return Object.values(names).includes(trino) ? '' : trino;
}

function mapResource(names: CatalogNames, r: OpaResource): OpaResource {
  const to = (c: string): string => stewardCatalog(names, c);
  return {
    ...r,
    ...(r.catalog === undefined ? {} : { catalog: { ...r.catalog, name: to(r.catalog.name) } }),
    ...(r.schema === undefined ? {} : { schema: { ...r.schema, catalogName: to(r.schema.catalogName) } }),
    ...(r.table === undefined ? {} : { table: { ...r.table, catalogName: to(r.table.catalogName) } }),
    ...(r.column === undefined ? {} : { column: { ...r.column, catalogName: to(r.column.catalogName) } }),
  };
}

/** The input with every catalog name in Steward's terms; unchanged (the same object) without mappings. */
export function inStewardCatalogs(names: CatalogNames, input: OpaInput): OpaInput {
  if (Object.keys(names).length === 0) return input;
  const { resource, filterResources } = input.action;
  return {
    ...input,
    action: {
      ...input.action,
      ...(resource === undefined ? {} : { resource: mapResource(names, resource) }),
      ...(filterResources === undefined ? {} : { filterResources: filterResources.map((r) => mapResource(names, r)) }),
    },
  };
}
