/**
 * The OCSF 1.1 required attributes of the classes Steward writes, used at
 * runtime to refuse (quarantine) mapped events that would be invalid. The
 * tests check every event kind against the vendored schema subset in
 * test/audit/ocsf-1.1/, which this table must agree with.
 */
import { classByUid, type OcsfEvent } from './ocsf.js';

/** Base event (every class). */
export const BASE_REQUIRED = ['activity_id', 'category_uid', 'class_uid', 'metadata', 'severity_id', 'time', 'type_uid'] as const;

export const CLASS_REQUIRED: Readonly<Record<number, readonly string[]>> = {
  3001: ['user'],
  3002: ['user'],
  3005: ['privileges', 'user'],
  6003: ['actor', 'api', 'src_endpoint'],
};

/** Required attributes of the objects those reference (dotted paths, checked when the parent is present). */
export const OBJECT_REQUIRED: Readonly<Record<string, readonly string[]>> = {
  metadata: ['product', 'version'],
  api: ['operation'],
};

/** `at_least_one` constraints of objects (and of Authentication). */
export const AT_LEAST_ONE: Readonly<Record<string, readonly string[]>> = {
  actor: ['app_name', 'app_uid', 'invoked_by', 'process', 'session', 'user'],
  'actor.user': ['account', 'name', 'uid'],
  user: ['account', 'name', 'uid'],
  src_endpoint: ['domain', 'hostname', 'instance_uid', 'interface_name', 'interface_uid', 'ip', 'name', 'svc_name', 'uid'],
  '@3002': ['dst_endpoint', 'service'],
};

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '';

const SPLIT = new Map<string, string[]>();

function at(event: OcsfEvent, path: string): unknown {
  let parts = SPLIT.get(path);
  if (parts === undefined) SPLIT.set(path, (parts = path.split('.')));
  let cur: unknown = event;
  for (const p of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** Paths of required attributes the event lacks (`metadata.product`, `actor.user|process|…`); empty when valid. */
export function missingRequired(event: OcsfEvent): string[] {
  const missing: string[] = [];
  for (const a of BASE_REQUIRED) if (!present(event[a])) missing.push(a);
  const cls = typeof event['class_uid'] === 'number' ? classByUid(event['class_uid']) : undefined;
  if (cls === undefined) {
    missing.push('class_uid (a known class)');
    return missing;
  }
  for (const a of CLASS_REQUIRED[cls.uid] ?? []) if (!present(event[a])) missing.push(a);
  for (const [obj, attrs] of Object.entries(OBJECT_REQUIRED)) {
    if (!present(at(event, obj))) continue;
    for (const a of attrs) if (!present(at(event, `${obj}.${a}`))) missing.push(`${obj}.${a}`);
  }
  for (const [obj, attrs] of Object.entries(AT_LEAST_ONE)) {
    if (obj.startsWith('@')) {
      if (Number(obj.slice(1)) === cls.uid && !attrs.some((a) => present(event[a]))) missing.push(attrs.join('|'));
      continue;
    }
    const v = at(event, obj);
    if (!present(v)) continue;
    if (!attrs.some((a) => present(at(event, `${obj}.${a}`)))) missing.push(`${obj}.${attrs.join('|')}`);
  }
  if (event['type_uid'] !== cls.uid * 100 + Number(event['activity_id'])) missing.push('type_uid (= class_uid * 100 + activity_id)');
  if (!Object.prototype.hasOwnProperty.call(cls.activities, Number(event['activity_id']))) missing.push(`activity_id (one of ${Object.keys(cls.activities).join(', ')})`);
  return missing;
}
