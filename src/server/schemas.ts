/**
 * Input schemas shared by several routes. Every string has a maximum length;
 * identifiers are trimmed and lowercased before validation.
 */
import { z } from 'zod';
import {
  CATALOG_NAME_PATTERN,
  isReservedName,
  LABEL_PATTERN,
  NAME_PATTERN,
  PRINCIPAL_PATTERN,
  PERMISSIONS,
  parseResource,
  type PrincipalRef,
  type ResourceRef,
} from '../policy/model.js';

const lowerTrim = (max: number) => z.string().max(max).transform((s) => s.trim().toLowerCase());
/** Says why a reserved name fails before the pattern (which refuses it too) says only that it is invalid. */
const notReserved = z.string().refine((s) => !isReservedName(s), { message: 'is a reserved name (a property of every javascript object)', abort: true });

export const NameSchema = lowerTrim(128).pipe(notReserved).pipe(z.string().regex(NAME_PATTERN, 'must be a lowercase identifier (letters, digits, underscores)'));
export const CatalogNameSchema = lowerTrim(128).pipe(notReserved).pipe(
  z.string().regex(CATALOG_NAME_PATTERN, 'must be a lowercase identifier (letters, digits, underscores, dashes)'),
);
export const LabelSchema = lowerTrim(128).pipe(notReserved).pipe(z.string().regex(LABEL_PATTERN, 'must be lowercase letters, digits, `_`, `.`, `-`'));
export const DescriptionSchema = z.string().max(1024);
export const PermissionSchema = z
  .string()
  .max(32)
  .transform((s) => s.trim().toUpperCase())
  .pipe(z.enum(PERMISSIONS));

export const PrincipalSchema = lowerTrim(140)
  .transform((s) => (s.includes(':') ? s : `user:${s}`))
  .pipe(z.string().regex(PRINCIPAL_PATTERN, 'must be `user:NAME` or `group:NAME` (not a reserved name)'))
  .transform((s) => s as PrincipalRef);

export const ResourceSchema = z
  .string()
  .max(520)
  .transform((s, ctx): ResourceRef => {
    const r = parseResource(s);
    if (r === null) {
      ctx.addIssue({ code: 'custom', message: 'must be `catalog[.database[.table[.column]]]`' });
      return z.NEVER;
    }
    return r;
  });

export const TagExpressionInputSchema = z.union([
  z.string().min(1).max(4096),
  z.record(lowerTrim(128), z.array(z.string().max(256)).min(1).max(1000)),
]);

export const OkSchema = z.object({ ok: z.literal(true), version: z.number().optional() });

export const ErrorSchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    details: z.array(z.object({ path: z.string().optional(), message: z.string() })),
  }),
});

export const PageQuerySchema = z
  .object({
    limit: z.coerce.number().int().min(1).max(1000).optional(),
  })
  .strict();
