/**
 * The mappings a custom source can use. `ocsf` takes records that already are
 * OCSF 1.1 events of a known class and only checks their required attributes.
 */
import { AZURE_ACTIVITY } from './azure-activity.js';
import { CLOUDTRAIL } from './cloudtrail.js';
import { compileMapping, type Mapping, type MapResult } from './mapping.js';
import { missingRequired } from '../ocsf-required.js';
import type { OcsfEvent } from '../ocsf.js';

export const MAPPING_NAMES = ['cloudtrail', 'azure_activity', 'ocsf'] as const;
export type MappingName = (typeof MAPPING_NAMES)[number];

export const MAPPINGS: Readonly<Record<MappingName, Mapping>> = {
  cloudtrail: CLOUDTRAIL,
  azure_activity: AZURE_ACTIVITY,
  ocsf: { name: 'ocsf', description: 'records that already are OCSF 1.1 events', product: { name: '', vendor_name: '' }, time: 'time', common: {}, rules: [] },
};

function passthrough(record: unknown): MapResult {
  if (record === null || typeof record !== 'object' || Array.isArray(record)) return { ok: false, reason: 'record is not a JSON object' };
  const missing = missingRequired(record as OcsfEvent);
  if (missing.length > 0) return { ok: false, reason: `the event lacks required OCSF attribute(s) ${missing.map((x) => `\`${x}\``).join(', ')}` };
  return { ok: true, event: record as OcsfEvent };
}

/** The record → event function of a mapping, compiled once. */
export function mapperFor(name: MappingName): (record: unknown) => MapResult {
  return name === 'ocsf' ? passthrough : compileMapping(MAPPINGS[name]);
}
