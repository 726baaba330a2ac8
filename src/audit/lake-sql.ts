/**
 * The security lake's bulk pipeline, inside DuckDB: a whole flush batch is
 * loaded once (NDJSON produced by the state store), mapped to the OCSF columns
 * with one INSERT … SELECT, given its chain columns, and written per partition
 * with COPY … TO parquet. No per-event JavaScript runs on this path.
 *
 * - `STEWARD_EVENTS_SQL` is Steward's own mapping (decision-log row → OCSF
 *   event) as SQL. `decisionToEvent` (steward-events.ts) is its readable
 *   reference: a test checks that both give the same stored event for every
 *   kind of row.
 * - Custom sources are mapped (and conformed) at ingest; their outbox rows are
 *   read with the schema's column types.
 * - Chain columns: `hash` = md5 of the event's canonical row text
 *   (`to_json` of the OCSF columns as a struct), `prev_hash` = the previous
 *   event's `hash`, `seq` = its position. The per-event digest locates a
 *   change; the cryptographic proof is the batch chain (flusher.ts), a sha256
 *   chain over every written file's sha256.
 *
 * All SQL here is constant text built from the schema; values are bound.
 */
import { duckType, EVENT_SCHEMA, type FieldSpec } from './lake-schema.js';
import { CATEGORIES, CLASSES, OCSF_VERSION, SEVERITIES, STATUSES } from './ocsf.js';
import { STEWARD_PRODUCT } from './steward-events.js';

/** OCSF columns in file order (sorted keys, as EVENT_SCHEMA). */
export const OCSF_COLUMN_NAMES = Object.keys(EVENT_SCHEMA);

export const quoteIdent = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/**
 * Per-event digest: DuckDB's 64-bit `hash()` of the event's OCSF columns as one
 * struct (in schema order), as 16 hex digits; verify recomputes it over the
 * columns read back. It locates a change inside a file; it is not the proof
 * (a file whose sha256 still matches the batch chain is intact whatever its
 * digests say, see verify.ts).
 */
export const ROW_HASH_SQL = `printf('%016x', hash(struct_pack(${OCSF_COLUMN_NAMES.map((c) => `${quoteIdent(c)} := ${quoteIdent(c)}`).join(', ')})))`;

/** The `details` keys the mapping reads, parsed once at load as a struct of JSON values. */
const DETAIL_KEYS = ['principal', 'grants', 'guardrails', 'ip', 'clientIp', 'requester', 'scope', 'resource', 'permissions', 'permissionSet', 'permission', 'requestId', 'id', 'grantee', 'changes', 'embed'];

/** `read_json` columns of a raw decision-log row (as the flusher stages them). */
export const DECISION_COLUMNS = `{'id': 'BIGINT', 'at': 'VARCHAR', 'actor': 'VARCHAR', 'action': 'VARCHAR', 'resource': 'VARCHAR', 'result': 'VARCHAR', 'reason': 'VARCHAR', 'details': 'STRUCT(${DETAIL_KEYS.map((k) => `"${k}" JSON`).join(', ')})'}`;

/** `read_json` columns of a conformed OCSF event (custom sources' outbox rows). */
export const EVENT_COLUMNS = `{${OCSF_COLUMN_NAMES.map((k) => `'${k}': ${lit(duckType(EVENT_SCHEMA[k] as FieldSpec))}`).join(', ')}}`;

// ------------------------------------------------------------ steward events

/** str(details.x): the value when it is a non-empty string. */
const dstr = (key: string): string => `(CASE WHEN json_type(details."${key}") = 'VARCHAR' THEN nullif(json_extract_string(details."${key}", '$'), '') END)`;
/** strings(details.x): the string elements of an array (empty otherwise). */
const dstrings = (key: string): string =>
  `(CASE WHEN json_type(details."${key}") = 'ARRAY' THEN list_transform(list_filter(json_extract(details."${key}", '$[*]'), x -> json_type(x) = 'VARCHAR'), x -> json_extract_string(x, '$')) ELSE []::VARCHAR[] END)`;

/**
 * userObject(p) as SQL over the text expression `p`: `user:NAME` / `group:NAME`
 * (NAME one or more characters on one line, as JS `/^(user|group):(.+)$/`).
 */
const ONE_LINE = (p: string): string => `NOT (contains(${p}, chr(10)) OR contains(${p}, chr(13)) OR contains(${p}, chr(8232)) OR contains(${p}, chr(8233)))`;
const userSql = (p: string): string => `(CASE
    WHEN starts_with(${p}, 'user:') AND length(${p}) > 5 AND ${ONE_LINE(p)} THEN struct_pack(name := substr(${p}, 6), type := 'User', type_id := 1, uid := ${p})
    WHEN starts_with(${p}, 'group:') AND length(${p}) > 6 AND ${ONE_LINE(p)} THEN struct_pack(name := substr(${p}, 7), type := 'Group', type_id := 99, uid := ${p})
    WHEN starts_with(${p}, 'embed:') AND length(${p}) > 6 AND ${ONE_LINE(p)} THEN struct_pack(name := substr(${p}, 7), type := 'Other', type_id := 99, uid := ${p})
    ELSE struct_pack(name := ${p}, type := NULL::VARCHAR, type_id := NULL::INTEGER, uid := ${p}) END)`;

const resourceTypeSql = (r: string): string =>
  `(CASE len(string_split(${r}, '.')) WHEN 1 THEN 'catalog' WHEN 2 THEN 'database' WHEN 3 THEN 'table' ELSE 'column' END)`;

const ACCOUNT: ReadonlyArray<readonly [string, number, string?]> = [
  ['user.put', 1],
  ['user.delete', 6],
  ['group.put', 1],
  ['group.delete', 6],
  ['idp-mapping.put', 1],
  ['idp-mapping.delete', 6],
  ['group.member.add', 99, 'Add Member'],
  ['group.member.remove', 99, 'Remove Member'],
  ['token.create', 99, 'Token Create'],
  ['token.bootstrap', 99, 'Token Create'],
  ['token.revoke', 99, 'Token Revoke'],
  ['grant.create', 7],
  ['grant.revoke', 8],
  ['guardrail.put', 7],
  ['guardrail.delete', 8],
  ['filter.put', 99, 'Data Filter Put'],
  ['filter.delete', 99, 'Data Filter Delete'],
  ['policy.apply', 99, 'Policy Apply'],
];

const CRUD = `(CASE
    WHEN regexp_full_match(verb, '(create|put|add|register|insert|request|submit|bootstrap|create_table)') THEN 1
    WHEN regexp_full_match(verb, '(select|describe|read|get|list|query|show|explain|effective-permissions)') OR starts_with(action, 'who-can-access') THEN 2
    WHEN regexp_full_match(verb, '(update|alter|refresh|apply|assign|unassign|approve|approve_partial|deny|reject|cancel|change|set|schedule|extend|expire|activate|end|fail|config|sweep)') THEN 3
    WHEN regexp_full_match(verb, '(delete|drop|remove|revoke|purge)') THEN 4
    ELSE 99 END)`;

const AUTHORIZE = `(CASE upper(substr(action, 11)) WHEN 'INSERT' THEN 1 WHEN 'CREATE_TABLE' THEN 1 WHEN 'ALTER' THEN 3 WHEN 'DELETE' THEN 4 WHEN 'DROP' THEN 4 ELSE 2 END)`;

const classCase = (f: (c: (typeof CLASSES)[keyof typeof CLASSES]) => string): string =>
  `(CASE cls ${Object.entries(CLASSES)
    .map(([k, c]) => `WHEN ${lit(k)} THEN ${f(c)}`)
    .join(' ')} END)`;

const activityNameSql = `coalesce(activity_name_override, ${classCase(
  (c) => `(CASE activity_id ${Object.entries(c.activities).map(([id, name]) => `WHEN ${id} THEN ${lit(name)}`).join(' ')} ELSE 'Other' END)`,
)})`;

// Expressions used inside CASE branches are written inline (not as CTE
// columns): a CTE column is computed for every row, a branch only for the rows
// that take it.
const VERB = `lower(regexp_extract(action, '([^.:]*)$', 1))`;
const CALLER_USER = userSql('caller');
const ENDPOINT = `(CASE WHEN ip IS NULL THEN struct_pack(ip := NULL::VARCHAR, svc_name := CASE WHEN local THEN 'steward-cli' ELSE 'steward-api' END)
         ELSE struct_pack(ip := ip, svc_name := 'steward-api') END)`;
const PRINCIPAL_RESOURCE = `(CASE WHEN starts_with(resource, 'user:') OR starts_with(resource, 'group:') THEN resource END)`;
const REQUESTER = `coalesce(${dstr('requester')}, ${dstr('principal')}, ${PRINCIPAL_RESOURCE})`;
const SCOPE = `coalesce(${dstr('scope')}, ${dstr('resource')}, resource)`;
const REQUEST_ID = `coalesce(${dstr('requestId')}, ${dstr('id')})`;
const GRANT_ID = `coalesce(${dstr('id')}, resource)`;
const TARGET = `coalesce(${dstr('grantee')}, ${PRINCIPAL_RESOURCE})`;
const AUTHS = `list_concat(
      list_transform(${dstrings('grants')}, g -> struct_pack(decision := 'allow', policy := struct_pack("desc" := NULL::VARCHAR, name := g, uid := 'grant:' || g))),
      list_transform(${dstrings('guardrails')}, g -> struct_pack(decision := 'deny', policy := struct_pack("desc" := NULL::VARCHAR, name := g, uid := 'guardrail:' || g))))`;
const PERMISSIONS = dstrings('permissions');
const CHANGES = dstrings('changes');

/**
 * Decision-log rows (the relation `from`, with DECISION_COLUMNS and `seq`) →
 * one row per event with `seq` and every OCSF column, typed as the schema.
 * `from` is constant SQL (a table name or a subquery), never user input.
 */
export const stewardEventsSql = (from: string): string => `
WITH d AS (
  SELECT seq, id, "at", actor, action, resource, result, reason, details,
         CASE WHEN ends_with(actor, ')') THEN regexp_replace(actor, '\\s+\\(local\\)$', '') ELSE actor END AS caller,
         ends_with(actor, '(local)') AS local,
         ${dstr('principal')} AS subject,
         coalesce(${dstr('ip')}, ${dstr('clientIp')}) AS ip
  FROM ${from}
), k AS (
  SELECT *,
    CASE
      WHEN starts_with(action, 'authorize.') THEN 'api'
      WHEN action = 'effective-permissions' OR starts_with(action, 'who-can-access') THEN 'api'
      WHEN starts_with(action, 'auth.') OR action = 'login' OR starts_with(action, 'login.') THEN 'auth'
      WHEN starts_with(action, 'access.') AND len(string_split(action, '.')) <= 2 AND ${VERB} IN ('activate', 'end', 'revoke') THEN 'uam'
      WHEN starts_with(action, 'access.') THEN 'api'
      WHEN action IN (${ACCOUNT.map(([a]) => lit(a)).join(', ')}) THEN 'account'
      ELSE 'api'
    END AS kind
  FROM d
), c AS (
  SELECT *,
    CASE kind WHEN 'api' THEN 'api_activity' WHEN 'auth' THEN 'authentication' WHEN 'uam' THEN 'user_access' ELSE 'account_change' END AS cls,
    CASE
      WHEN kind = 'auth' THEN 1
      WHEN kind = 'uam' THEN (CASE WHEN ${VERB} = 'activate' THEN 1 ELSE 2 END)
      WHEN kind = 'account' THEN (CASE action ${ACCOUNT.map(([a, id]) => `WHEN ${lit(a)} THEN ${id}`).join(' ')} END)
      WHEN starts_with(action, 'authorize.') THEN ${AUTHORIZE}
      WHEN action = 'effective-permissions' OR starts_with(action, 'who-can-access') THEN 2
      ELSE ${CRUD.replace(/\bverb\b/g, () => VERB)}
    END AS activity_id,
    CASE WHEN kind = 'account' THEN (CASE action ${ACCOUNT.filter((x) => x[2] !== undefined)
      .map(([a, , name]) => `WHEN ${lit(a)} THEN ${lit(name as string)}`)
      .join(' ')} END) END AS activity_name_override,
    CASE WHEN result IN ('deny', 'error') THEN 2 ELSE 1 END AS status_id,
    CASE WHEN result = 'error' THEN 3 WHEN result = 'deny' THEN (CASE WHEN kind = 'auth' THEN 3 ELSE 2 END) ELSE 1 END AS severity_id
  FROM k
), e AS (
  SELECT *, ${activityNameSql} AS activity_name, CASE WHEN kind = 'api' THEN ${AUTHS} END AS auths FROM c
)
SELECT seq,
  activity_id::INTEGER AS activity_id,
  activity_name,
  (CASE
    WHEN kind = 'auth' THEN NULL
    WHEN kind = 'api' THEN struct_pack(
      app_name := CASE WHEN local THEN 'steward-cli' END,
      authorizations := CASE
        WHEN result = 'deny' AND len(auths) = 0 THEN [struct_pack(decision := 'deny', policy := struct_pack("desc" := reason, name := 'default-deny', uid := 'steward:default-deny'))]
        WHEN len(auths) > 0 THEN auths
      END,
      invoked_by := CASE WHEN subject IS NOT NULL AND subject <> caller THEN caller END,
      "user" := CASE WHEN subject IS NULL THEN ${CALLER_USER} ELSE ${userSql('subject')} END)
    ELSE struct_pack(app_name := CASE WHEN local THEN 'steward-cli' END, "user" := ${CALLER_USER})
  END)::${duckType(EVENT_SCHEMA['actor'] as FieldSpec)} AS actor,
  (CASE WHEN kind = 'api' THEN struct_pack(operation := action, service := struct_pack(name := 'steward')) END)::${duckType(EVENT_SCHEMA['api'] as FieldSpec)} AS api,
  (CASE WHEN kind = 'auth' THEN (CASE WHEN action = 'auth.ingest-key' THEN 'Ingest key' ELSE 'Bearer token' END) END) AS auth_protocol,
  (CASE WHEN kind = 'auth' THEN 99 END)::INTEGER AS auth_protocol_id,
  ${classCase((c) => lit(CATEGORIES[c.category]))} AS category_name,
  ${classCase((c) => String(c.category))}::INTEGER AS category_uid,
  ${classCase((c) => lit(c.name))} AS class_name,
  ${classCase((c) => String(c.uid))}::INTEGER AS class_uid,
  NULL::${duckType(EVENT_SCHEMA['cloud'] as FieldSpec)} AS cloud,
  NULL::${duckType(EVENT_SCHEMA['dst_endpoint'] as FieldSpec)} AS dst_endpoint,
  NULL::${duckType(EVENT_SCHEMA['http_request'] as FieldSpec)} AS http_request,
  NULL::BOOLEAN AS is_mfa,
  action || ' ' || resource || ': ' || reason AS message,
  struct_pack(
    event_code := action,
    log_name := 'decision_log',
    product := struct_pack(name := ${lit(STEWARD_PRODUCT.name)}, vendor_name := ${lit(STEWARD_PRODUCT.vendor_name)}, version := ${lit(STEWARD_PRODUCT.version)}),
    uid := 'steward-' || id::VARCHAR,
    version := ${lit(OCSF_VERSION)}
  )::${duckType(EVENT_SCHEMA['metadata'] as FieldSpec)} AS metadata,
  (CASE
    WHEN kind <> 'account' THEN NULL
    WHEN starts_with(action, 'grant.') THEN struct_pack(name := ${GRANT_ID}, uid := 'grant:' || ${GRANT_ID})
    WHEN starts_with(action, 'guardrail.') THEN struct_pack(name := resource, uid := 'guardrail:' || resource)
    WHEN starts_with(action, 'filter.') OR action = 'policy.apply' THEN struct_pack(name := resource, uid := split_part(action, '.', 1) || ':' || resource)
  END)::${duckType(EVENT_SCHEMA['policy'] as FieldSpec)} AS policy,
  (CASE WHEN kind = 'uam' THEN (CASE WHEN len(${PERMISSIONS}) > 0 THEN ${PERMISSIONS} ELSE [coalesce(${dstr('permissionSet')}, ${dstr('permission')}, 'access')] END) END)::VARCHAR[] AS privileges,
  (CASE
    WHEN kind = 'api' THEN [struct_pack(type := CASE WHEN starts_with(action, 'authorize') THEN ${resourceTypeSql('resource')} ELSE split_part(action, '.', 1) END, uid := resource)]
    WHEN kind = 'uam' THEN [struct_pack(type := ${resourceTypeSql(SCOPE)}, uid := ${SCOPE})]
  END)::${duckType(EVENT_SCHEMA['resources'] as FieldSpec)} AS resources,
  (CASE WHEN kind = 'auth' THEN struct_pack(name := CASE WHEN resource = 'api' THEN 'steward-api' ELSE 'steward-' || resource END) END)::${duckType(EVENT_SCHEMA['service'] as FieldSpec)} AS service,
  ${`(CASE severity_id ${Object.entries(SEVERITIES).map(([id, n]) => `WHEN ${id} THEN ${lit(n)}`).join(' ')} END)`} AS severity,
  severity_id::INTEGER AS severity_id,
  ${ENDPOINT}::${duckType(EVENT_SCHEMA['src_endpoint'] as FieldSpec)} AS src_endpoint,
  ${`(CASE status_id ${Object.entries(STATUSES).map(([id, n]) => `WHEN ${id} THEN ${lit(n)}`).join(' ')} END)`} AS status,
  NULL::VARCHAR AS status_code,
  reason AS status_detail,
  status_id::INTEGER AS status_id,
  epoch_ms("at"::TIMESTAMPTZ)::BIGINT AS time,
  ${classCase((c) => lit(`${c.name}: `))} || activity_name AS type_name,
  (${classCase((c) => String(c.uid))} * 100 + activity_id)::BIGINT AS type_uid,
  (CASE
    WHEN kind = 'account' AND len(${CHANGES}) > 0 THEN to_json(struct_pack(changes := list_slice(${CHANGES}, 1, 1000)))::VARCHAR
    WHEN kind = 'uam' AND ${REQUEST_ID} IS NOT NULL THEN to_json(struct_pack(request_id := ${REQUEST_ID}))::VARCHAR
    WHEN kind = 'api' AND ${dstr('embed')} IS NOT NULL AND json_valid(${dstr('embed')}) THEN '{"embed":' || ${dstr('embed')} || '}'
  END) AS unmapped,
  (CASE
    WHEN kind = 'uam' THEN (CASE WHEN ${REQUESTER} IS NULL THEN struct_pack(name := 'unrecorded', uid := 'unknown') ELSE ${userSql(REQUESTER)} END)
    WHEN kind = 'auth' THEN ${CALLER_USER}
    WHEN kind = 'account' THEN (CASE
      WHEN ${TARGET} IS NOT NULL THEN ${userSql(TARGET)}
      WHEN starts_with(action, 'guardrail') THEN struct_pack(name := 'all principals', uid := '*')
      ELSE struct_pack(name := 'unrecorded', uid := 'unknown') END)
  END)::${duckType(EVENT_SCHEMA['user'] as FieldSpec)} AS "user"
FROM e`;

/** `stewardEventsSql` over the table `decisions`. */
export const STEWARD_EVENTS_SQL = stewardEventsSql('decisions');

/** Custom sources: conformed events from the outbox (the relation `from`, with `seq` and EVENT_COLUMNS). */
export const customEventsSql = (from: string): string => `SELECT seq, ${OCSF_COLUMN_NAMES.map(quoteIdent).join(', ')} FROM ${from}`;

/** `customEventsSql` over the table `outbox_events`. */
export const CUSTOM_EVENTS_SQL = customEventsSql('outbox_events');

/**
 * partitionValue() of parquet-writer.ts as SQL: anything outside
 * `[A-Za-z0-9_.-]` becomes `_`, leading dots one `_`, at most 64 characters,
 * the fallback when empty.
 */
export const partitionSql = (value: string, fallbackParam: string): string =>
  `coalesce(nullif(left(regexp_replace(regexp_replace(coalesce(${value}, ''), '[^A-Za-z0-9_.-]', '_', 'g'), '^\\.+', '_'), 64), ''), ${fallbackParam})`;
