/**
 * Input schemas shared by several routes. Every string has a maximum length;
 * identifiers are trimmed and lowercased before validation. Instants and
 * durations have one schema each, used by every route and file format that
 * takes one, bounded by src/time.ts so that no instant, duration or sum of
 * them leaves the range PostgreSQL and a JavaScript Date can represent.
 */
import { z } from 'zod';
import { parseDuration } from '../time.js';
import { INSTANT_PATTERN, MAX_DURATION_SECONDS, instantMs } from '../time.js';
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

/** Marks instant and duration fields in the OpenAPI document, so clients (and the no-500 test) find every one. */
export const FORMAT_KEY = 'x-steward-format';

/** Names the value: the message reaches both API callers and policy-file authors (src/code/load.ts keeps custom messages). */
const refused = (what: string) => (issue: { input?: unknown }): string => `\`${String(issue.input).slice(0, 40)}\` is not ${what}`;

/** An ISO-8601 instant, kept as written (policy files round-trip it). */
export const InstantTextSchema = z
  .string()
  .max(40)
  .refine((s) => instantMs(s) !== null, { error: refused('an ISO-8601 instant between 1970-01-01 and 9999-12-31 (e.g. `2027-01-01T00:00:00Z`)') })
  .meta({ [FORMAT_KEY]: 'instant', pattern: INSTANT_PATTERN.source });
/** An ISO-8601 instant as epoch milliseconds. */
export const InstantSchema = InstantTextSchema.transform((s) => instantMs(s) as number);

/** Seconds of a duration such as `90s`, `30m`, `1h30m`, `2d`, at most ten years; else null. */
export function durationSeconds(text: string): number | null {
  const n = parseDuration(text);
  return n !== null && n <= MAX_DURATION_SECONDS ? n : null;
}

/** A duration, kept as written (configuration files round-trip it). */
export const DurationTextSchema = z
  .string()
  .max(32)
  .refine((s) => durationSeconds(s) !== null, { error: refused('a duration such as `90s`, `30m`, `8h`, `1h30m`, `1d`, at most `3650d`') })
  .meta({ [FORMAT_KEY]: 'duration', pattern: '^\\s*(\\d+[smhdSMHD])+\\s*$' });
/** A duration in seconds. */
export const DurationSchema = DurationTextSchema.transform((s) => durationSeconds(s) as number);
