/**
 * The access configuration document (YAML or JSON): permission sets,
 * eligibility and approval policies, personas and notifications. One zod
 * schema validates it; `toAccessConfig` turns it into the core types.
 *
 * ```yaml
 * apiVersion: steward/v1
 * permissionSets:
 *   read-with-pii: { permissions: [DESCRIBE, SELECT], liftGuardrails: [pii-requires-privacy-officer] }
 * eligibility:
 *   analysts-claims-pii:
 *     principal: group:analysts
 *     scope: { databases: [lake.claims] }
 *     permissionSets: [read-with-pii]
 *     maxDuration: 8h
 *     approvalRequired: true
 * approval:
 *   claims-privacy:
 *     scope: { databases: [lake.claims] }
 *     approverGroups: [privacy-officers]
 * ```
 */
import { z } from 'zod';
import YAML from 'yaml';
import { PERMISSIONS, LABEL_PATTERN, PRINCIPAL_PATTERN, type PrincipalRef } from '../policy/model.js';
import { formatTagExpression, parseTagExpression } from '../policy/tag-expression.js';
import { StewardError } from '../errors.js';
import type { AccessConfig, AccessScope, ApprovalPolicy, EligibilityPolicy, PermissionSet } from './access-types.js';
import { DEFAULT_SETTINGS } from './access-types.js';
import { formatDuration, parseDuration } from '../time.js';
import { DurationTextSchema } from '../server/schemas.js';

const lower = (max: number) => z.string().max(max).transform((s) => s.trim().toLowerCase());
const Label = lower(128).pipe(z.string().regex(LABEL_PATTERN, 'must be lowercase letters, digits, `_`, `.`, `-` (not a reserved name)'));
const Principal = lower(140)
  .transform((s) => (s.includes(':') ? s : `user:${s}`))
  .pipe(z.string().regex(PRINCIPAL_PATTERN, 'must be `user:NAME` or `group:NAME` (not a reserved name)'));
const Duration = DurationTextSchema;
const Permission = z
  .string()
  .max(32)
  .transform((s) => s.trim().toUpperCase())
  .pipe(z.enum(PERMISSIONS));

const ScopeDoc = z
  .object({
    catalogs: z.array(lower(128)).max(1000).optional(),
    databases: z.array(lower(260)).max(1000).optional(),
    tables: z.array(lower(400)).max(1000).optional(),
    tags: z.object({ catalog: lower(128), expression: z.string().min(1).max(4096) }).strict().optional(),
  })
  .strict();

const PermissionSetDoc = z
  .object({
    description: z.string().max(1024).optional(),
    permissions: z.array(Permission).min(1).max(PERMISSIONS.length),
    filter: Label.optional(),
    liftGuardrails: z.array(Label).max(100).optional(),
  })
  .strict();

const EligibilityDoc = z
  .object({
    principal: Principal,
    scope: ScopeDoc,
    permissionSets: z.array(Label).min(1).max(100),
    maxDuration: Duration,
    approvalRequired: z.boolean().default(true),
    ticketRequired: z.boolean().default(false),
  })
  .strict();

const ApprovalDoc = z
  .object({
    scope: ScopeDoc,
    permissionSets: z.union([z.literal('*'), z.array(Label).min(1).max(100)]).default('*'),
    approverGroups: z.array(Label).min(1).max(100),
    minApprovals: z.number().int().min(1).max(100).default(1),
  })
  .strict();

const NotificationsDoc = z
  .object({
    smtp: z
      .object({
        host: z.string().min(1).max(255),
        port: z.number().int().min(1).max(65535),
        secure: z.boolean().optional(),
        user: z.string().max(255).optional(),
        passwordEnv: z.string().regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'must name an environment variable').optional(),
        from: z.string().min(3).max(320),
        insecureTls: z.boolean().optional(),
      })
      .strict()
      .optional(),
    contacts: z.record(Label, z.string().min(3).max(320)).optional(),
    emailDomain: z.string().min(1).max(255).optional(),
    webhooks: z
      .array(z.object({ url: z.url().max(2048) }).strict())
      .max(20)
      .optional(),
  })
  .strict();

export const AccessDocumentSchema = z
  .object({
    apiVersion: z.literal('steward/v1').optional(),
    permissionSets: z.record(Label, PermissionSetDoc).default({}),
    eligibility: z.record(Label, EligibilityDoc).default({}),
    approval: z.record(Label, ApprovalDoc).default({}),
    personas: z
      .object({ auditorGroups: z.array(Label).max(100).default([]), adminGroups: z.array(Label).max(100).default([]) })
      .strict()
      .default({ auditorGroups: [], adminGroups: [] }),
    pendingTimeout: Duration.optional(),
    notifications: NotificationsDoc.default({}),
  })
  .strict();

export type AccessDocument = z.input<typeof AccessDocumentSchema>;

function toScope(doc: z.infer<typeof ScopeDoc>, path: string): AccessScope {
  let tags: AccessScope['tags'];
  if (doc.tags !== undefined) {
    try {
      tags = { catalog: doc.tags.catalog, expression: parseTagExpression(doc.tags.expression) };
    } catch (e) {
      throw new StewardError('STEWARD_E_VALIDATION', `${path}.tags.expression: ${(e as Error).message}`);
    }
  }
  const scope: AccessScope = {
    ...(doc.catalogs === undefined ? {} : { catalogs: doc.catalogs }),
    ...(doc.databases === undefined ? {} : { databases: doc.databases }),
    ...(doc.tables === undefined ? {} : { tables: doc.tables }),
    ...(tags === undefined ? {} : { tags }),
  };
  if (Object.keys(scope).length === 0) throw new StewardError('STEWARD_E_VALIDATION', `${path}: a scope needs catalogs, databases, tables or tags`);
  for (const d of scope.databases ?? []) if (d.split('.').length !== 2) throw new StewardError('STEWARD_E_VALIDATION', `${path}.databases: \`${d}\` is not \`catalog.database\``);
  for (const t of scope.tables ?? []) if (t.split('.').length !== 3) throw new StewardError('STEWARD_E_VALIDATION', `${path}.tables: \`${t}\` is not \`catalog.database.table\``);
  return scope;
}

/** Validates a parsed document (JSON or YAML value) and returns the configuration. */
export function toAccessConfig(value: unknown): AccessConfig {
  const parsed = AccessDocumentSchema.safeParse(value ?? {});
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => ({ path: i.path.map(String).join('.'), message: i.message.toLowerCase() }));
    const first = details[0];
    throw new StewardError('STEWARD_E_VALIDATION', `invalid access configuration: ${first?.path ?? ''}: ${first?.message ?? 'invalid'}`, { details });
  }
  const doc = parsed.data;
  const permissionSets: PermissionSet[] = Object.entries(doc.permissionSets).map(([name, p]) => ({
    name,
    permissions: [...new Set(p.permissions)],
    ...(p.description === undefined ? {} : { description: p.description }),
    ...(p.filter === undefined ? {} : { filter: p.filter }),
    ...(p.liftGuardrails === undefined ? {} : { liftGuardrails: p.liftGuardrails }),
  }));
  const known = new Set(permissionSets.map((p) => p.name));
  const checkSets = (path: string, sets: readonly string[]): void => {
    for (const s of sets) if (!known.has(s)) throw new StewardError('STEWARD_E_VALIDATION', `${path}.permissionSets: unknown permission set \`${s}\``);
  };
  const eligibility: EligibilityPolicy[] = Object.entries(doc.eligibility).map(([name, e]) => {
    checkSets(`eligibility.${name}`, e.permissionSets);
    return {
      name,
      principal: e.principal as PrincipalRef,
      scope: toScope(e.scope, `eligibility.${name}.scope`),
      permissionSets: e.permissionSets,
      maxDurationSeconds: parseDuration(e.maxDuration) as number,
      approvalRequired: e.approvalRequired,
      ticketRequired: e.ticketRequired,
    };
  });
  const approval: ApprovalPolicy[] = Object.entries(doc.approval).map(([name, a]) => {
    if (a.permissionSets !== '*') checkSets(`approval.${name}`, a.permissionSets);
    return { name, scope: toScope(a.scope, `approval.${name}.scope`), permissionSets: a.permissionSets, approverGroups: a.approverGroups, minApprovals: a.minApprovals };
  });
  return {
    permissionSets,
    eligibility,
    approval,
    settings: {
      auditorGroups: doc.personas.auditorGroups,
      adminGroups: doc.personas.adminGroups,
      pendingTimeoutSeconds: doc.pendingTimeout === undefined ? DEFAULT_SETTINGS.pendingTimeoutSeconds : (parseDuration(doc.pendingTimeout) as number),
      notifications: doc.notifications,
    },
  };
}

/** Parses YAML (or JSON, which is YAML) text. */
export function parseAccessDocument(text: string): AccessConfig {
  let value: unknown;
  try {
    value = YAML.parse(text);
  } catch (e) {
    throw new StewardError('STEWARD_E_PARSE', `access configuration is not valid YAML: ${(e as Error).message}`);
  }
  return toAccessConfig(value);
}

/** The document form of a configuration (what `GET /v1/access/config` returns and `toAccessConfig` reads back). */
export function toAccessDocument(c: AccessConfig): Record<string, unknown> {
  const scope = (s: AccessScope): Record<string, unknown> => ({
    ...(s.catalogs === undefined ? {} : { catalogs: s.catalogs }),
    ...(s.databases === undefined ? {} : { databases: s.databases }),
    ...(s.tables === undefined ? {} : { tables: s.tables }),
    ...(s.tags === undefined
      ? {}
      : { tags: { catalog: s.tags.catalog, expression: formatTagExpression(s.tags.expression) } }),
  });
  return {
    apiVersion: 'steward/v1',
    permissionSets: Object.fromEntries(c.permissionSets.map(({ name, ...rest }) => [name, rest])),
    eligibility: Object.fromEntries(
      c.eligibility.map((e) => [
        e.name,
        {
          principal: e.principal,
          scope: scope(e.scope),
          permissionSets: e.permissionSets,
          maxDuration: formatDuration(e.maxDurationSeconds),
          approvalRequired: e.approvalRequired,
          ticketRequired: e.ticketRequired,
        },
      ]),
    ),
    approval: Object.fromEntries(
      c.approval.map((a) => [a.name, { scope: scope(a.scope), permissionSets: a.permissionSets, approverGroups: a.approverGroups, minApprovals: a.minApprovals }]),
    ),
    personas: { auditorGroups: c.settings.auditorGroups, adminGroups: c.settings.adminGroups },
    pendingTimeout: formatDuration(c.settings.pendingTimeoutSeconds),
    notifications: c.settings.notifications,
  };
}

/**
 * Adds the entries of `extra` that `base` does not have (by name); nothing in
 * `base` is changed or removed. The demo uses it so that a second run changes
 * nothing and a user's own policies survive.
 */
export function mergeAccessDocuments(base: Record<string, unknown> | null, extra: Record<string, unknown>): Record<string, unknown> {
  if (base === null) return extra;
  const out: Record<string, unknown> = { ...base };
  for (const key of ['permissionSets', 'eligibility', 'approval'] as const) {
    out[key] = { ...((extra[key] as Record<string, unknown> | undefined) ?? {}), ...((base[key] as Record<string, unknown> | undefined) ?? {}) };
  }
  const personas = (doc: Record<string, unknown>): { auditorGroups?: string[]; adminGroups?: string[] } => (doc['personas'] as { auditorGroups?: string[]; adminGroups?: string[] } | undefined) ?? {};
  const union = (a: string[] | undefined, b: string[] | undefined): string[] => [...new Set([...(a ?? []), ...(b ?? [])])];
  out['personas'] = {
    auditorGroups: union(personas(base).auditorGroups, personas(extra).auditorGroups),
    adminGroups: union(personas(base).adminGroups, personas(extra).adminGroups),
  };
  return out;
}
