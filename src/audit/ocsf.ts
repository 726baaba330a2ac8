/**
 * OCSF 1.1 vocabulary: the classes Steward emits, their activities, and small
 * builders that fill the attributes every event must carry (`category_uid`,
 * `class_uid`, `activity_id`, `type_uid` = class_uid·100 + activity_id, `time`,
 * `severity_id`, `metadata.product`, `metadata.version`) together with the
 * human-readable siblings (`class_name`, `activity_name`, ...).
 *
 * Pure: no I/O. An event is a plain JSON object so that it hashes and stores
 * the same way whether Steward produced it or a custom source mapping did.
 */

export const OCSF_VERSION = '1.1.0';

/** A JSON value as events hold it. */
export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type OcsfEvent = { [key: string]: Json };

export const CATEGORIES = {
  3: 'Identity & Access Management',
  6: 'Application Activity',
} as const;

export interface ClassInfo {
  readonly uid: number;
  readonly name: string;
  readonly category: keyof typeof CATEGORIES;
  /** activity_id → activity_name; 0 (Unknown) and 99 (Other) are valid for every class. */
  readonly activities: Readonly<Record<number, string>>;
}

const COMMON_ACTIVITIES = { 0: 'Unknown', 99: 'Other' } as const;

export const CLASSES = {
  account_change: {
    uid: 3001,
    name: 'Account Change',
    category: 3,
    activities: {
      ...COMMON_ACTIVITIES,
      1: 'Create',
      2: 'Enable',
      3: 'Password Change',
      4: 'Password Reset',
      5: 'Disable',
      6: 'Delete',
      7: 'Attach Policy',
      8: 'Detach Policy',
      9: 'Lock',
      10: 'MFA Factor Enable',
      11: 'MFA Factor Disable',
    },
  },
  authentication: {
    uid: 3002,
    name: 'Authentication',
    category: 3,
    activities: { ...COMMON_ACTIVITIES, 1: 'Logon', 2: 'Logoff', 3: 'Authentication Ticket', 4: 'Service Ticket Request', 5: 'Service Ticket Renew' },
  },
  user_access: {
    uid: 3005,
    name: 'User Access Management',
    category: 3,
    activities: { ...COMMON_ACTIVITIES, 1: 'Assign Privileges', 2: 'Revoke Privileges' },
  },
  api_activity: {
    uid: 6003,
    name: 'API Activity',
    category: 6,
    activities: { ...COMMON_ACTIVITIES, 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete' },
  },
} as const satisfies Record<string, ClassInfo>;

export type ClassName = keyof typeof CLASSES;
export const CLASS_NAMES = Object.keys(CLASSES) as ClassName[];

export const SEVERITIES = { 0: 'Unknown', 1: 'Informational', 2: 'Low', 3: 'Medium', 4: 'High', 5: 'Critical', 6: 'Fatal', 99: 'Other' } as const;
export type SeverityId = keyof typeof SEVERITIES;
export const STATUSES = { 0: 'Unknown', 1: 'Success', 2: 'Failure', 99: 'Other' } as const;
export type StatusId = keyof typeof STATUSES;

const BY_UID = new Map<number, ClassInfo & { key: ClassName }>(CLASS_NAMES.map((key) => [CLASSES[key].uid, { ...CLASSES[key], key }]));

export function classByUid(uid: number): (ClassInfo & { key: ClassName }) | undefined {
  return BY_UID.get(uid);
}

export interface Product {
  readonly name: string;
  readonly vendor_name: string;
  readonly version?: string;
}

export interface EventHead {
  readonly class: ClassName;
  readonly activityId: number;
  /** Epoch milliseconds (OCSF `timestamp_t`). */
  readonly time: number;
  readonly severityId: SeverityId;
  readonly statusId?: StatusId;
  readonly product: Product;
  /** Overrides the activity caption (required sense when activityId is 99, Other). */
  readonly activityName?: string;
}

/**
 * The attributes every event carries, in one object; the caller spreads the
 * class's own attributes next to it.
 *
 * @example
 *   ({ ...eventHead({ class: 'api_activity', activityId: 2, time: Date.now(), severityId: 1, product }), api: { operation: 'GetObject' }, ... })
 */
export function eventHead(h: EventHead): OcsfEvent {
  const cls: ClassInfo = CLASSES[h.class];
  const activityName = h.activityName ?? cls.activities[h.activityId] ?? 'Other';
  const product: { [key: string]: Json } = { name: h.product.name, vendor_name: h.product.vendor_name };
  if (h.product.version !== undefined) product['version'] = h.product.version;
  const head: OcsfEvent = {
    activity_id: h.activityId,
    activity_name: activityName,
    category_name: CATEGORIES[cls.category],
    category_uid: cls.category,
    class_name: cls.name,
    class_uid: cls.uid,
    metadata: { product, version: OCSF_VERSION },
    severity: SEVERITIES[h.severityId],
    severity_id: h.severityId,
    time: h.time,
    type_name: `${cls.name}: ${activityName}`,
    type_uid: cls.uid * 100 + h.activityId,
  };
  if (h.statusId !== undefined) {
    head['status_id'] = h.statusId;
    head['status'] = STATUSES[h.statusId];
  }
  return head;
}

/** `user:alice` → an OCSF user object (`type` User or, for groups, Other with the group named in `name`). */
export function userObject(principal: string): { [key: string]: Json } {
  const m = /^(user|group|embed):(.+)$/.exec(principal);
  if (m === null) return { name: principal, uid: principal };
  // `embed:<id>`: an embedded-analytics viewer, the vendor's own user id (src/embed/), never a Steward principal.
  if (m[1] === 'embed') return { name: m[2] ?? principal, type: 'Other', type_id: 99, uid: principal };
  return m[1] === 'user' ? { name: m[2] ?? principal, type: 'User', type_id: 1, uid: principal } : { name: m[2] ?? principal, type: 'Group', type_id: 99, uid: principal };
}

/** YYYYMMDD of an epoch-ms instant, in UTC (the `eventDay` partition). */
export function eventDay(timeMs: number): string {
  const d = new Date(timeMs);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth() + 1;
  const day = d.getUTCDate();
  return `${y}${m < 10 ? '0' : ''}${m}${day < 10 ? '0' : ''}${day}`;
}
