/**
 * The policy-as-code document: what a human writes in a `*.yaml` policy file.
 *
 * The schema validates and normalizes (names trimmed and lowercased, tag
 * expressions parsed to maps, `true`/`false` tag values turned into strings)
 * but keeps the file's shape; `convert.ts` maps it onto the policy model.
 * Every object is strict (a misspelt field is an error, not a silent no-op)
 * and every string has a maximum length.
 */
import { z } from 'zod';
import {
  CATALOG_NAME_PATTERN,
  isReservedName,
  LABEL_PATTERN,
  MAX_TAG_VALUES,
  NAME_PATTERN,
  PERMISSIONS,
  REGION_GLOB_PATTERN,
  RESIDENCY_MODES,
  TAG_VALUE_PATTERN,
  parsePrincipal,
  parseResource,
} from '../policy/model.js';
import type { PrincipalRef, ResourceLevel, TagExpression } from '../policy/model.js';
import { parseTagExpression } from '../policy/tag-expression.js';
import { InstantTextSchema } from '../server/schemas.js';
import { DashboardIdSchema, DashboardSchema } from '../embed/dashboard-spec.js';
import { CleanroomSpecSchema } from '../cleanroom/cleanroom-spec.js';
import { LabelSchema } from '../server/schemas.js';

export const API_VERSION = 'steward/v1';

const MAX_NAME = 128;
const MAX_RESOURCE = 4 * MAX_NAME + 3;
const MAX_TEXT = 2000;
const MAX_SQL = 4000;
const MAX_EXPRESSION_TEXT = 4000;
const MAX_LIST = 10_000;

// ---------------------------------------------------------------- scalars

const name = (pattern: RegExp, what: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .max(MAX_NAME)
    .refine((s) => !isReservedName(s), { message: 'a reserved name (a property of every javascript object)', abort: true })
    .regex(pattern, { message: `not a valid ${what}` });

/** Tag keys, database, table and column names. */
const Ident = name(NAME_PATTERN, 'name (lowercase letters, digits and `_`, not starting with a digit)');
const CatalogName = name(CATALOG_NAME_PATTERN, 'catalog name (lowercase letters, digits, `_` and `-`)');
/** Users, groups, filters, guardrails, grant ids, identity providers. */
const Label = name(LABEL_PATTERN, 'name (lowercase letters, digits, `_`, `.` and `-`)');

const Text = z.string().max(MAX_TEXT);

/** YAML reads `pii: true` as a boolean; authors mean the tag value `true`. */
const TagValue = z.union([
  z.string().trim().max(256).regex(TAG_VALUE_PATTERN, { message: 'not a valid tag value' }),
  z.boolean().transform((b) => String(b)),
]);

const Permission = z.enum(PERMISSIONS);
const Permissions = z.array(Permission).min(1).max(PERMISSIONS.length * 2);

/** `user:alice`, `group:analysts`, or a bare name (a user). Output is always prefixed. */
const Principal = z
  .string()
  .max(MAX_NAME + 6)
  .transform((text, ctx): PrincipalRef => {
    const p = parsePrincipal(text);
    if (p === null) {
      ctx.addIssue({ code: 'custom', message: `\`${text}\` is not a principal (write \`user:name\` or \`group:name\`)` });
      return z.NEVER;
    }
    return `${p.kind}:${p.name}`;
  });

const LEVEL_PATTERN: Record<ResourceLevel, RegExp> = {
  catalog: CATALOG_NAME_PATTERN,
  database: NAME_PATTERN,
  table: NAME_PATTERN,
  column: NAME_PATTERN,
};
const LEVELS: readonly ResourceLevel[] = ['catalog', 'database', 'table', 'column'];

/** A dotted resource path whose level is one of `levels`; output is the trimmed, lowercased path. */
const resourcePath = (levels: readonly ResourceLevel[], hint: string) =>
  z
    .string()
    .trim()
    .toLowerCase()
    .max(MAX_RESOURCE)
    .superRefine((text, ctx) => {
      const r = parseResource(text);
      if (r === null || !levels.includes(r.level)) {
        ctx.addIssue({ code: 'custom', message: `\`${text}\` is not ${hint}` });
        return;
      }
      text.split('.').forEach((part, i) => {
        const level = LEVELS[i] as ResourceLevel;
        if (!LEVEL_PATTERN[level].test(part)) ctx.addIssue({ code: 'custom', message: `\`${part}\` is not a valid ${level} name` });
      });
    });

const TaggableResource = resourcePath(['database', 'table', 'column'], 'a database, table or column (`catalog.database[.table[.column]]`)');
const TableResource = resourcePath(['table'], 'a table (`catalog.database.table`)');
const GrantablePath = resourcePath(['catalog', 'database', 'table'], 'a catalog, database or table (`catalog[.database[.table]]`); for columns write `{ table, columns }`');

const Columns = z.array(Ident).min(1).max(MAX_LIST);

/**
 * A tag expression, as text (`domain=claims AND pii IN (true, false)`, `*` or
 * the empty string for everything; parsed by `policy/tag-expression.ts`) or as a map (`{ domain: [claims], pii: false }`). Output: the map
 * with sorted, unique values.
 */
export const TagExpressionSchema = z.union([
  z
    .string()
    .max(MAX_EXPRESSION_TEXT)
    .transform((text, ctx): TagExpression => {
      // `*` reads better than an empty string for "every resource".
      if (text.trim() === '*') return {};
      try {
        return parseTagExpression(text);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: `invalid tag expression: ${e instanceof Error ? e.message : String(e)}` });
        return z.NEVER;
      }
    }),
  z
    .record(Ident, z.union([TagValue, z.array(TagValue).min(1).max(MAX_TAG_VALUES)]))
    .transform((map): TagExpression => {
      const out: Record<string, string[]> = {};
      for (const [k, v] of Object.entries(map)) out[k] = [...new Set(Array.isArray(v) ? v : [v])].sort();
      return out;
    }),
]);

// ---------------------------------------------------------------- sections

const TagKeySpec = z.strictObject({
  values: z.array(TagValue).min(1).max(MAX_TAG_VALUES),
  description: Text.optional(),
});

const UserSpec = z
  .union([z.strictObject({ displayName: z.string().max(256).optional() }), z.null()])
  .transform((v) => v ?? {});

const GroupSpec = z
  .union([
    z.strictObject({
      description: Text.optional(),
      /** Bare names are users; write `group:name` for nested groups. */
      members: z.array(Principal).max(MAX_LIST).optional(),
    }),
    z.null(),
  ])
  .transform((v) => v ?? {});

const IdpMappingSpec = z.strictObject({
  provider: Label,
  /** As the identity provider sends it: case and spaces are kept. */
  externalGroup: z.string().trim().min(1).max(256),
  group: Label,
});

const onlyOneColumnList = (v: { columns?: unknown; excludedColumns?: unknown }, ctx: z.RefinementCtx): void => {
  if (v.columns !== undefined && v.excludedColumns !== undefined) {
    ctx.addIssue({ code: 'custom', message: 'set `columns` or `excludedColumns`, not both', path: ['excludedColumns'] });
  }
};

const FilterSpec = z
  .strictObject({
    /** SQL predicate over the table's columns; absent or null means all rows. */
    rowFilter: z.union([z.string().trim().min(1).max(MAX_SQL), z.null()]).optional(),
    columns: Columns.optional(),
    excludedColumns: Columns.optional(),
  })
  .superRefine(onlyOneColumnList);

const ColumnsResource = z
  .strictObject({
    table: TableResource,
    columns: Columns.optional(),
    excludedColumns: Columns.optional(),
    /** The name of a data filter declared for this table under `filters`. */
    filter: Label.optional(),
  })
  .superRefine((v, ctx) => {
    const set = [v.columns, v.excludedColumns, v.filter].filter((x) => x !== undefined).length;
    if (set !== 1) ctx.addIssue({ code: 'custom', message: 'set exactly one of `columns`, `excludedColumns` or `filter` (for the whole table write the path as a string)' });
  });

const TagResource = z.strictObject({
  catalog: CatalogName,
  tags: TagExpressionSchema,
});

const GrantResourceSpec = z.union([GrantablePath, ColumnsResource, TagResource]);

const GrantSpec = z
  .strictObject({
    /** Stable id; when absent one is derived from the principal and the resource. */
    id: Label.optional(),
    principal: Principal,
    resource: GrantResourceSpec.describe('`catalog[.database[.table]]`, `{ table, columns | excludedColumns | filter }` or `{ catalog, tags }`'),
    permissions: Permissions,
    grantable: z.array(Permission).max(PERMISSIONS.length * 2).optional(),
    notAfter: InstantTextSchema.optional(),
    /** Guardrails (marked `liftable`) this time-bound grant is exempt from, for what it grants, until `notAfter`. */
    liftsGuardrails: z.array(Label).max(MAX_LIST).optional().describe('Names of liftable guardrails this grant is exempt from until `notAfter` (requires `notAfter`)'),
    description: Text.optional(),
  })
  .superRefine((g, ctx) => {
    if ((g.liftsGuardrails ?? []).length > 0 && g.notAfter === undefined) {
      ctx.addIssue({ code: 'custom', message: 'a grant that lifts guardrails must be time-bound, set `notAfter`', path: ['liftsGuardrails'] });
    }
    for (const p of g.grantable ?? []) {
      if (!g.permissions.includes(p)) ctx.addIssue({ code: 'custom', message: `\`${p}\` is grantable but not in \`permissions\``, path: ['grantable'] });
    }
  });

/** Where tagged tables may be (docs/residency.md): region patterns and whether a violation is refused or only reported. */
const ResidencySpec = z.strictObject({
  regions: z
    .array(z.string().trim().toLowerCase().max(63).regex(REGION_GLOB_PATTERN, { message: 'not a region pattern (lowercase letters, digits, `-`, `*`)' }))
    .min(1)
    .max(64)
    .describe('Allowed region patterns, e.g. `eu-*`'),
  mode: z.enum(RESIDENCY_MODES).default('enforce').describe('`enforce` refuses a violation; `report-only` admits it and records it'),
});

const GuardrailSpec = z.strictObject({
  description: Text.optional(),
  /** Whom it applies to; everyone when absent. */
  principals: z.array(Principal).max(MAX_LIST).optional(),
  except: z.array(Principal).max(MAX_LIST).optional(),
  /** Required, except in a residency guardrail, which denies no action. */
  actions: Permissions.optional(),
  catalog: CatalogName.optional(),
  /** Tag expression over the effective tags of a resource or its ancestors. */
  resources: TagExpressionSchema.describe('Tag expression: `pii=true AND domain IN (claims, finance)` or `{ pii: [true] }`'),
  /** Whether approved, time-bound grants may lift it (`liftsGuardrails`); default false: no grant can ever exceed it. */
  liftable: z.boolean().optional().describe('Whether time-bound grants may lift this guardrail (`liftsGuardrails`); default false'),
  /** Makes this a residency guardrail: matching tables may live, sync and be served only in these regions. */
  residency: ResidencySpec.optional().describe('Residency guardrail: tables matching `resources` stay in these regions (docs/residency.md)'),
}).superRefine((g, ctx) => {
  if (g.residency === undefined && g.actions === undefined) ctx.addIssue({ code: 'custom', message: 'a guardrail needs `actions`, or `residency` for a residency guardrail', path: ['actions'] });
  if (g.residency !== undefined && g.actions !== undefined) ctx.addIssue({ code: 'custom', message: 'a residency guardrail denies no action, omit `actions`', path: ['actions'] });
});

export const PolicyDocumentSchema = z
  .strictObject({
    apiVersion: z.literal(API_VERSION),
    tagKeys: z.record(Ident, TagKeySpec).optional().describe('Tag key -> allowed values'),
    /** Resource path -> tag key -> value. */
    tags: z.record(TaggableResource, z.record(Ident, TagValue)).optional().describe('Resource path (`catalog.database[.table[.column]]`) -> tag key -> value'),
    users: z.record(Label, UserSpec).optional().describe('User name -> user'),
    groups: z.record(Label, GroupSpec).optional().describe('Group name -> group; members are user names or `group:name`'),
    idpMappings: z.array(IdpMappingSpec).max(MAX_LIST).optional().describe('Identity-provider groups mapped to Steward groups'),
    /** Table path -> filter name -> filter. */
    filters: z.record(TableResource, z.record(Label, FilterSpec)).optional().describe('Table path -> filter name -> data filter (row filter and/or column list)'),
    grants: z.array(GrantSpec).max(MAX_LIST * 10).optional().describe('Grants of permissions on catalogs, databases, tables, columns, data filters or tag expressions'),
    guardrails: z.record(Label, GuardrailSpec).optional().describe('Guardrail name -> organization-wide deny rule'),
    dashboards: z
      .record(DashboardIdSchema, DashboardSchema)
      .optional()
      .describe('Dashboard id -> embeddable dashboard (docs/embedding.md); when present, the complete set: stored dashboards not listed are deleted'),
    cleanrooms: z
      .record(LabelSchema, CleanroomSpecSchema)
      .optional()
      .describe('Collaboration name -> clean room (docs/cleanrooms.md); when present, the complete set: running collaborations not listed are closed (their query logs are kept)'),
  })
  .meta({
    title: 'Steward policy',
    description: 'The managed part of a Steward workspace: tag keys, tags, users, groups, identity-provider mappings, data filters, grants and guardrails.',
  });

/** A parsed, normalized policy document. */
export type PolicyDocument = z.output<typeof PolicyDocumentSchema>;
/** A policy document as written (before normalization). */
export type PolicyDocumentInput = z.input<typeof PolicyDocumentSchema>;
export type DocGrant = NonNullable<PolicyDocument['grants']>[number];
export type DocGrantResource = DocGrant['resource'];
export type DocFilter = z.output<typeof FilterSpec>;
export type DocGuardrail = z.output<typeof GuardrailSpec>;

/**
 * The JSON Schema of a policy file, for editors (`yaml-language-server`) and
 * other tools. It describes the input side: what a human may write.
 */
export function policyJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(PolicyDocumentSchema, { io: 'input', target: 'draft-2020-12' }) as Record<string, unknown>;
}
