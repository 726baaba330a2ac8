/**
 * Steward's own events: every decision-log row becomes one OCSF 1.1 event.
 * The decision log is the outbox (each change commits its row in the same
 * transaction, see src/store/state-store.ts), so this mapping runs at flush
 * time, pure and deterministic: the same row always gives the same event.
 *
 * | decision-log action | OCSF class | activity |
 * |---|---|---|
 * | `authorize.<ACTION>`, `who-can-access.*`, `effective-permissions` | API Activity (6003) | Read; Create for INSERT/CREATE_TABLE, Update for ALTER, Delete for DELETE/DROP |
 * | `auth.*` (token checks, ingest keys) | Authentication (3002) | Logon |
 * | `user.*`, `group.*`, `idp-mapping.*`, `token.*` | Account Change (3001) | Create, Delete, Other (membership, tokens) |
 * | `grant.*`, `guardrail.*`, `filter.*`, `policy.apply` | Account Change (3001) | Attach Policy, Detach Policy, Other |
 * | `access.*` (access requests) | User Access Management (3005) when access is granted or taken away; API Activity otherwise | see `accessEvent` |
 * | anything else (`catalog.*`, `table.*`, `tag.*`, `demo.*`, gateway queries, ...) | API Activity (6003) | from the verb |
 */
import type { StoredDecision } from '../store/decision-log.js';
import { eventHead, userObject, type ClassName, type Json, type OcsfEvent, type SeverityId, type StatusId } from './ocsf.js';

export const STEWARD_PRODUCT = { name: 'Steward', vendor_name: 'Steward', version: '0.1.0' } as const;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.length > 0 ? v : undefined);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** `user:alice (local)` → `user:alice`. */
function principalOf(actor: string): string {
  return actor.replace(/\s+\(local\)$/, '');
}

function statusOf(row: StoredDecision): StatusId {
  return row.result === 'deny' || row.result === 'error' ? 2 : 1;
}

function severityOf(row: StoredDecision, cls: ClassName): SeverityId {
  if (row.result === 'error') return 3;
  if (row.result === 'deny') return cls === 'authentication' ? 3 : 2;
  return 1;
}

/** Create / Read / Update / Delete from the last verb of an action (`grant.create`, `table.drop`). */
export function crudActivity(action: string): 1 | 2 | 3 | 4 | 99 {
  const verb = action.split(/[.:]/).pop()?.toLowerCase() ?? '';
  if (/^(create|put|add|register|insert|request|submit|bootstrap|create_table)$/.test(verb)) return 1;
  if (/^(select|describe|read|get|list|query|show|explain|effective-permissions)$/.test(verb) || action.startsWith('who-can-access')) return 2;
  if (/^(update|alter|refresh|apply|assign|unassign|approve|approve_partial|deny|reject|cancel|change|set|schedule|extend|expire|activate|end|fail|config|sweep)$/.test(verb)) return 3;
  if (/^(delete|drop|remove|revoke|purge)$/.test(verb)) return 4;
  return 99;
}

function authorizeActivity(permission: string): 1 | 2 | 3 | 4 {
  switch (permission.toUpperCase()) {
    case 'INSERT':
    case 'CREATE_TABLE':
      return 1;
    case 'ALTER':
      return 3;
    case 'DELETE':
    case 'DROP':
      return 4;
    default:
      return 2;
  }
}

function common(row: StoredDecision, cls: ClassName, activityId: number, activityName?: string): OcsfEvent {
  const head = eventHead({
    class: cls,
    activityId,
    time: Date.parse(row.at),
    severityId: severityOf(row, cls),
    statusId: statusOf(row),
    product: STEWARD_PRODUCT,
    ...(activityName === undefined ? {} : { activityName }),
  });
  const metadata = head['metadata'] as { [key: string]: Json };
  metadata['uid'] = `steward-${row.id}`;
  metadata['log_name'] = 'decision_log';
  metadata['event_code'] = row.action;
  head['message'] = `${row.action} ${row.resource}: ${row.reason}`;
  head['status_detail'] = row.reason;
  return head;
}

/** The caller, and the principal acted for when they differ (admins deciding for alice). */
function actorOf(row: StoredDecision, subject?: string): { [key: string]: Json } {
  const caller = principalOf(row.actor);
  const actor: { [key: string]: Json } = { user: userObject(subject ?? caller) };
  if (subject !== undefined && subject !== caller) actor['invoked_by'] = caller;
  if (row.actor.endsWith('(local)')) actor['app_name'] = 'steward-cli';
  return actor;
}

function srcEndpoint(row: StoredDecision): { [key: string]: Json } {
  const d = row.details ?? {};
  const ip = str(d['ip']) ?? str(d['clientIp']);
  return ip === undefined ? { svc_name: row.actor.endsWith('(local)') ? 'steward-cli' : 'steward-api' } : { ip, svc_name: 'steward-api' };
}

/** The deciding grants (allow) or guardrails (deny) as OCSF authorization objects. */
function authorizations(row: StoredDecision): Json[] {
  const d = row.details ?? {};
  const out: Json[] = [];
  for (const g of strings(d['grants'])) out.push({ decision: 'allow', policy: { name: g, uid: `grant:${g}` } });
  for (const g of strings(d['guardrails'])) out.push({ decision: 'deny', policy: { name: g, uid: `guardrail:${g}` } });
  if (out.length === 0 && row.result === 'deny') out.push({ decision: 'deny', policy: { desc: row.reason, name: 'default-deny', uid: 'steward:default-deny' } });
  return out;
}

function resourceType(resource: string): string {
  const parts = resource.split('.').length;
  return (['catalog', 'database', 'table', 'column'] as const)[Math.min(parts, 4) - 1] ?? 'resource';
}

function apiActivity(row: StoredDecision, activityId: number): OcsfEvent {
  const d = row.details ?? {};
  const subject = str(d['principal']);
  const event = common(row, 'api_activity', activityId);
  event['actor'] = actorOf(row, subject);
  const auths = authorizations(row);
  if (auths.length > 0) (event['actor'] as { [key: string]: Json })['authorizations'] = auths;
  event['api'] = { operation: row.action, service: { name: 'steward' } };
  event['resources'] = [{ type: row.action.startsWith('authorize') ? resourceType(row.resource) : row.action.split('.')[0] ?? 'resource', uid: row.resource }];
  event['src_endpoint'] = srcEndpoint(row);
  // An embed session's query: which dashboard, session and tags chose its rows (canonical JSON text, see gateway/query-log.ts).
  const embed = str(d['embed']);
  if (embed !== undefined) event['unmapped'] = { embed: parseJson(embed) };
  return event;
}

function parseJson(text: string): Json {
  try {
    return JSON.parse(text) as Json;
  } catch {
    return text;
  }
}

function authentication(row: StoredDecision): OcsfEvent {
  const event = common(row, 'authentication', 1);
  event['user'] = userObject(principalOf(row.actor));
  event['service'] = { name: row.resource === 'api' ? 'steward-api' : `steward-${row.resource}` };
  event['auth_protocol_id'] = 99;
  event['auth_protocol'] = row.action === 'auth.ingest-key' ? 'Ingest key' : 'Bearer token';
  event['src_endpoint'] = srcEndpoint(row);
  return event;
}

const ACCOUNT_ACTIVITY: Readonly<Record<string, [number, string?]>> = {
  'user.put': [1],
  'user.delete': [6],
  'group.put': [1],
  'group.delete': [6],
  'idp-mapping.put': [1],
  'idp-mapping.delete': [6],
  'group.member.add': [99, 'Add Member'],
  'group.member.remove': [99, 'Remove Member'],
  'token.create': [99, 'Token Create'],
  'token.bootstrap': [99, 'Token Create'],
  'token.revoke': [99, 'Token Revoke'],
  'grant.create': [7],
  'grant.revoke': [8],
  'guardrail.put': [7],
  'guardrail.delete': [8],
  'filter.put': [99, 'Data Filter Put'],
  'filter.delete': [99, 'Data Filter Delete'],
  'policy.apply': [99, 'Policy Apply'],
};

function accountChange(row: StoredDecision, activityId: number, activityName?: string): OcsfEvent {
  const d = row.details ?? {};
  const event = common(row, 'account_change', activityId, activityName);
  event['actor'] = actorOf(row);
  event['src_endpoint'] = srcEndpoint(row);
  // The target account: the grantee a grant change records (grant.revoke's resource is the grant id), else a principal resource.
  const target = str(d['grantee']) ?? (/^(user|group):/.test(row.resource) ? row.resource : undefined);
  // Guardrails apply to everyone they name.
  event['user'] =
    target !== undefined
      ? userObject(target)
      : row.action.startsWith('guardrail')
        ? { name: 'all principals', uid: '*' }
        : { name: 'unrecorded', uid: 'unknown' };
  if (row.action.startsWith('grant.')) {
    const id = str(d['id']) ?? row.resource;
    event['policy'] = { name: id, uid: `grant:${id}` };
  } else if (row.action.startsWith('guardrail.')) {
    event['policy'] = { name: row.resource, uid: `guardrail:${row.resource}` };
  } else if (row.action.startsWith('filter.') || row.action === 'policy.apply') {
    event['policy'] = { name: row.resource, uid: `${row.action.split('.')[0] ?? 'policy'}:${row.resource}` };
  }
  const changes = strings(d['changes']);
  if (changes.length > 0) event['unmapped'] = { changes: changes.slice(0, 1000) };
  return event;
}

/**
 * Access requests (src/access, actions `access.<event>`): the moment access
 * starts (`access.activate`) is User Access Management Assign Privileges, the
 * moment it stops (`access.end`, `access.revoke`) Revoke Privileges. The other
 * steps (`request`, `approve`, `approve_partial`, `reject`, `cancel`,
 * `schedule`, `extend.*`, `expire` of an unanswered request, `fail`) are API
 * Activity on the request (`access.request` Create, the rest Update).
 */
function accessEvent(row: StoredDecision): OcsfEvent {
  const d = row.details ?? {};
  if (row.action.split('.').length > 2) return apiActivity(row, crudActivity(row.action));
  const verb = row.action.split('.').pop() ?? '';
  const requester = str(d['requester']) ?? str(d['principal']) ?? (/^(user|group):/.test(row.resource) ? row.resource : undefined);
  const assign = verb === 'activate';
  const revoke = verb === 'end' || verb === 'revoke';
  if (!assign && !revoke) return apiActivity(row, crudActivity(row.action));
  const event = common(row, 'user_access', assign ? 1 : 2);
  event['actor'] = actorOf(row);
  event['user'] = requester === undefined ? { name: 'unrecorded', uid: 'unknown' } : userObject(requester);
  const perms = strings(d['permissions']);
  event['privileges'] = perms.length > 0 ? perms : [str(d['permissionSet']) ?? str(d['permission']) ?? 'access'];
  const target = str(d['scope']) ?? str(d['resource']) ?? row.resource;
  event['resources'] = [{ type: resourceType(target), uid: target }];
  event['src_endpoint'] = srcEndpoint(row);
  const id = str(d['requestId']) ?? str(d['id']);
  if (id !== undefined) event['unmapped'] = { request_id: id };
  return event;
}

/** One decision-log row as an OCSF event (not yet conformed or chained). */
export function decisionToEvent(row: StoredDecision): OcsfEvent {
  const a = row.action;
  if (a.startsWith('authorize.')) return apiActivity(row, authorizeActivity(a.slice('authorize.'.length)));
  if (a === 'effective-permissions' || a.startsWith('who-can-access')) return apiActivity(row, 2);
  if (a.startsWith('auth.') || a === 'login' || a.startsWith('login.')) return authentication(row);
  if (a.startsWith('access.')) return accessEvent(row);
  const account = ACCOUNT_ACTIVITY[a];
  if (account !== undefined) return accountChange(row, account[0], account[1]);
  return apiActivity(row, crudActivity(a));
}
