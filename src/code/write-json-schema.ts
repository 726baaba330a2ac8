/**
 * Writes `schema/steward-policy.schema.json` from the zod schema, so the file
 * editors load can never drift from what `loadPolicy` accepts (a test compares
 * the committed file with a fresh rendering).
 *
 * Run: `node --import tsx src/code/write-json-schema.ts`
 */
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { policyJsonSchema } from './schema.js';

export const JSON_SCHEMA_PATH = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'schema', 'steward-policy.schema.json');

export function renderJsonSchema(): string {
  return `${JSON.stringify(policyJsonSchema(), null, 2)}\n`;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  mkdirSync(dirname(JSON_SCHEMA_PATH), { recursive: true });
  writeFileSync(JSON_SCHEMA_PATH, renderJsonSchema());
  console.log(`wrote ${JSON_SCHEMA_PATH}`);
}
