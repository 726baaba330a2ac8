/**
 * Writes `schema/steward-dashboards.schema.json` from the zod schema of
 * dashboards files, so editors check what `steward embed apply` accepts (a
 * test compares the committed file with a fresh rendering).
 *
 * Run: `node --import tsx src/embed/write-json-schema.ts`
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DashboardsDocumentSchema } from './dashboard-spec.js';

export const DASHBOARDS_SCHEMA_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema', 'steward-dashboards.schema.json');

export function renderDashboardsSchema(): string {
  return `${JSON.stringify(z.toJSONSchema(DashboardsDocumentSchema, { io: 'input', target: 'draft-2020-12' }), null, 2)}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(dirname(DASHBOARDS_SCHEMA_PATH), { recursive: true });
  writeFileSync(DASHBOARDS_SCHEMA_PATH, renderDashboardsSchema());
  console.log(`wrote ${DASHBOARDS_SCHEMA_PATH}`);
}
