/**
 * Validates an event against the vendored OCSF 1.1 subset (ocsf-1.1/schema-subset.json),
 * independently of src/audit/ocsf-required.ts.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

interface ClassSpec {
  uid: number;
  category_uid: number;
  required: string[];
  activity_id: number[];
  constraints?: { at_least_one?: string[] };
}
interface Subset {
  version: string;
  base_event: { required: string[]; enums: Record<string, number[]> };
  classes: Record<string, ClassSpec>;
  objects: Record<string, { required?: string[]; constraints?: { at_least_one?: string[] } }>;
  attribute_objects: Record<string, string>;
}

export const SUBSET: Subset = JSON.parse(
  readFileSync(path.join(path.dirname(fileURLToPath(import.meta.url)), 'ocsf-1.1', 'schema-subset.json'), 'utf8'),
) as Subset;

const present = (v: unknown): boolean => v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);

function valuesAt(event: unknown, p: string): unknown[] {
  let cur: unknown[] = [event];
  for (const part of p.split('.')) {
    const many = part.endsWith('[]');
    const key = many ? part.slice(0, -2) : part;
    const next: unknown[] = [];
    for (const c of cur) {
      if (c === null || typeof c !== 'object') continue;
      const v = (c as Record<string, unknown>)[key];
      if (many && Array.isArray(v)) next.push(...v);
      else if (!many && v !== undefined) next.push(v);
    }
    cur = next;
  }
  return cur;
}

/** Problems of the event; empty when it satisfies the subset. */
export function validateOcsf(event: Record<string, unknown>): string[] {
  const problems: string[] = [];
  for (const a of SUBSET.base_event.required) if (!present(event[a])) problems.push(`missing ${a}`);
  for (const [a, allowed] of Object.entries(SUBSET.base_event.enums)) {
    if (event[a] !== undefined && !allowed.includes(event[a] as number)) problems.push(`${a} ${String(event[a])} not in enum`);
  }
  const cls = Object.entries(SUBSET.classes).find(([, c]) => c.uid === event['class_uid']);
  if (cls === undefined) return [...problems, `unknown class_uid ${String(event['class_uid'])}`];
  const [name, spec] = cls;
  if (event['category_uid'] !== spec.category_uid) problems.push(`${name}: category_uid must be ${spec.category_uid}`);
  if (!spec.activity_id.includes(event['activity_id'] as number)) problems.push(`${name}: activity_id ${String(event['activity_id'])} not in enum`);
  if (event['type_uid'] !== spec.uid * 100 + (event['activity_id'] as number)) problems.push(`${name}: type_uid must be class_uid*100+activity_id`);
  if (typeof event['time'] !== 'number' || !Number.isInteger(event['time'])) problems.push('time must be an integer timestamp (ms)');
  for (const a of spec.required) if (!present(event[a])) problems.push(`${name}: missing ${a}`);
  const one = spec.constraints?.at_least_one;
  if (one !== undefined && !one.some((a) => present(event[a]))) problems.push(`${name}: needs at least one of ${one.join(', ')}`);
  for (const [attr, objName] of Object.entries(SUBSET.attribute_objects)) {
    const obj = SUBSET.objects[objName];
    if (obj === undefined) continue;
    for (const v of valuesAt(event, attr)) {
      if (v === null || typeof v !== 'object') {
        problems.push(`${attr} must be an object`);
        continue;
      }
      const o = v as Record<string, unknown>;
      for (const r of obj.required ?? []) if (!present(o[r])) problems.push(`${attr}: missing ${r}`);
      const alo = obj.constraints?.at_least_one;
      if (alo !== undefined && !alo.some((a) => present(o[a]))) problems.push(`${attr}: needs at least one of ${alo.join(', ')}`);
    }
  }
  const md = event['metadata'] as Record<string, unknown> | undefined;
  if (md !== undefined && md['version'] !== SUBSET.version) problems.push(`metadata.version must be ${SUBSET.version}`);
  return problems;
}
