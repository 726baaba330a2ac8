/**
 * The one Parquet schema of every security-lake table: the OCSF attributes the
 * Steward classes and the shipped mappings use, as typed (nested) columns, so
 * that `actor.user.name` or `api.operation` read the same in every source and a
 * UNION over sources needs no casts. Attributes outside the schema go to
 * `unmapped` (JSON text), never dropped.
 *
 * The stored form of an event is its *conformed* form: only schema attributes,
 * no nulls, no empty objects, `unmapped` as canonical JSON text. Custom
 * sources store events conformed at ingest; Steward's own events are built in
 * that form by SQL (lake-sql.ts). The chain digests are computed by DuckDB
 * over the typed columns (lake-sql.ts `ROW_HASH_SQL`, verify.ts).
 *
 * Three columns sit beside the OCSF ones: `seq` (position in the source's
 * chain), `prev_hash` and `hash`. Partition values (`region`, `accountId`,
 * `eventDay`) live in the folder names, not in the files.
 */
import type { Json, OcsfEvent } from './ocsf.js';

type Scalar = 'VARCHAR' | 'BIGINT' | 'INTEGER' | 'BOOLEAN';
export type FieldSpec = Scalar | { readonly [key: string]: FieldSpec } | readonly [FieldSpec];

const S: Scalar = 'VARCHAR';
const USER = { account: { name: S, type: S, uid: S }, email_addr: S, name: S, type: S, type_id: 'INTEGER', uid: S } as const;
const ENDPOINT = { domain: S, hostname: S, ip: S, name: S, port: 'INTEGER', svc_name: S, uid: S } as const;

// INVARIANT: keys are sorted at every level (canonical JSON and the Parquet column order agree).
export const EVENT_SCHEMA: { readonly [key: string]: FieldSpec } = {
  activity_id: 'INTEGER',
  activity_name: S,
  actor: {
    app_name: S,
    authorizations: [{ decision: S, policy: { desc: S, name: S, uid: S } }],
    idp: { name: S, uid: S },
    invoked_by: S,
    session: { issuer: S, uid: S },
    user: USER,
  },
  api: {
    operation: S,
    request: { uid: S },
    response: { code: 'INTEGER', error: S, error_message: S, message: S },
    service: { name: S, uid: S },
    version: S,
  },
  auth_protocol: S,
  auth_protocol_id: 'INTEGER',
  category_name: S,
  category_uid: 'INTEGER',
  class_name: S,
  class_uid: 'INTEGER',
  cloud: { account: { name: S, uid: S }, provider: S, region: S },
  dst_endpoint: ENDPOINT,
  http_request: { http_method: S, user_agent: S },
  is_mfa: 'BOOLEAN',
  message: S,
  metadata: {
    correlation_uid: S,
    event_code: S,
    log_name: S,
    log_provider: S,
    original_time: S,
    product: { name: S, uid: S, vendor_name: S, version: S },
    uid: S,
    version: S,
  },
  policy: { desc: S, name: S, uid: S },
  privileges: [S],
  resources: [{ name: S, owner: { name: S, uid: S }, region: S, type: S, uid: S }],
  service: { name: S, uid: S },
  severity: S,
  severity_id: 'INTEGER',
  src_endpoint: ENDPOINT,
  status: S,
  status_code: S,
  status_detail: S,
  status_id: 'INTEGER',
  time: 'BIGINT',
  type_name: S,
  type_uid: 'BIGINT',
  unmapped: S,
  user: USER,
};

export const CHAIN_COLUMNS = { hash: S, prev_hash: S, seq: 'BIGINT' } as const;

const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;

/** DuckDB type text of a spec: `STRUCT("name" VARCHAR, ...)`, `VARCHAR[]`. */
export function duckType(spec: FieldSpec): string {
  if (typeof spec === 'string') return spec;
  if (Array.isArray(spec)) return `${duckType((spec as readonly [FieldSpec])[0])}[]`;
  const fields = Object.entries(spec as { [key: string]: FieldSpec }).map(([k, v]) => `${quoteIdent(k)} ${duckType(v)}`);
  return `STRUCT(${fields.join(', ')})`;
}

/** The columns of a security table in file order: the chain columns, then the OCSF attributes. */
export const TABLE_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ...Object.entries(CHAIN_COLUMNS).map(([k, v]) => [k, v] as const),
  ...Object.entries(EVENT_SCHEMA).map(([k, v]) => [k, duckType(v)] as const),
];

export interface Conformed {
  readonly event: OcsfEvent;
  /** Attribute paths that were outside the schema or of the wrong type, moved to `unmapped`. */
  readonly moved: readonly string[];
}

function conformValue(value: unknown, spec: FieldSpec, path: string, moved: Map<string, Json>): Json | undefined {
  if (value === null || value === undefined) return undefined;
  if (typeof spec === 'string') {
    switch (spec) {
      case 'VARCHAR':
        if (typeof value === 'string') return value;
        if (typeof value === 'number' || typeof value === 'boolean') return String(value);
        break;
      case 'BIGINT':
      case 'INTEGER':
        if (typeof value === 'number' && Number.isSafeInteger(value) && (spec === 'BIGINT' || Math.abs(value) <= 2_147_483_647)) return value;
        break;
      case 'BOOLEAN':
        if (typeof value === 'boolean') return value;
        break;
    }
    moved.set(path, value as Json);
    return undefined;
  }
  if (Array.isArray(spec)) {
    if (!Array.isArray(value)) {
      moved.set(path, value as Json);
      return undefined;
    }
    const item = (spec as readonly [FieldSpec])[0];
    const out: Json[] = [];
    value.forEach((v: unknown, i: number) => {
      const c = conformValue(v, item, `${path}[${i}]`, moved);
      // Lists keep their positions: an unconvertible item is null, not dropped silently.
      out.push(c === undefined ? null : c);
    });
    return out;
  }
  if (typeof value !== 'object') {
    moved.set(path, value as Json);
    return undefined;
  }
  const obj = value as Record<string, unknown>;
  const out: { [key: string]: Json } = {};
  const fields = spec as { [key: string]: FieldSpec };
  // Walk the schema's (sorted) keys, so `out` comes out in canonical order without sorting.
  let seen = 0;
  for (const key in fields) {
    if (!Object.prototype.hasOwnProperty.call(obj, key)) continue;
    seen += 1;
    const c = conformValue(obj[key], fields[key] as FieldSpec, path === '' ? key : `${path}.${key}`, moved);
    if (c !== undefined) out[key] = c;
  }
  if (seen !== Object.keys(obj).length) {
    for (const key of Object.keys(obj).sort()) {
      if (fields[key] !== undefined || obj[key] === null || obj[key] === undefined) continue;
      moved.set(path === '' ? key : `${path}.${key}`, obj[key] as Json);
    }
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/**
 * The stored form of an event. `unmapped` (an object in OCSF) becomes canonical
 * JSON text, and holds whatever did not fit the schema under its dotted path.
 */
export function conform(event: Readonly<Record<string, unknown>>): Conformed {
  const moved = new Map<string, Json>();
  const { unmapped, ...rest } = event;
  const out = (conformValue(rest, EVENT_SCHEMA, '', moved) ?? {}) as OcsfEvent;
  let extra: { [key: string]: Json } = {};
  if (typeof unmapped === 'string') {
    try {
      const parsed = JSON.parse(unmapped) as unknown;
      extra = parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as { [key: string]: Json }) : { value: parsed as Json };
    } catch {
      extra = { value: unmapped };
    }
  } else if (unmapped !== null && typeof unmapped === 'object' && !Array.isArray(unmapped)) {
    extra = { ...(unmapped as { [key: string]: Json }) };
  } else if (unmapped !== null && unmapped !== undefined) {
    extra = { value: unmapped as Json };
  }
  for (const [p, v] of moved) extra[p] = v;
  if (Object.keys(extra).length > 0) out['unmapped'] = canonicalJson(extra);
  return { event: sortKeys(out), moved: [...moved.keys()] };
}

/**
 * Canonical JSON of a conformed event, fast: conform() builds every object in
 * sorted key order and leaves no undefined values, and no schema key looks
 * like an array index (which JSON.stringify would move first), so plain
 * JSON.stringify gives the same bytes as canonicalJson (a test checks it).
 */
export function conformedJson(event: OcsfEvent): string {
  return JSON.stringify(event);
}

function sortKeys(e: OcsfEvent): OcsfEvent {
  const out: OcsfEvent = {};
  for (const k of Object.keys(e).sort()) out[k] = e[k] as Json;
  return out;
}

/**
 * JSON with object keys sorted at every level and no whitespace: the bytes
 * that are hashed. Numbers print as JSON.stringify prints them.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const k of Object.keys(obj).sort()) {
    const v = obj[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** The `prev_hash` of a source's first event, and the genesis of its batch chain. */
export const GENESIS_HASH = '0'.repeat(64);

/** Drops nulls and empty objects recursively: a row read back from Parquet becomes the conformed event again. */
export function stripNulls(value: unknown): Json | undefined {
  if (value === null || value === undefined) return undefined;
  if (Array.isArray(value)) return value.map((v) => stripNulls(v) ?? null);
  if (typeof value === 'object') {
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
      const s = stripNulls(v);
      if (s !== undefined) out[k] = s;
    }
    return Object.keys(out).length === 0 ? undefined : out;
  }
  return value as Json;
}
