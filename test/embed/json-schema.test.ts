/** The committed JSON Schema of dashboards files is the zod schema's rendering. */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { DASHBOARDS_SCHEMA_PATH, renderDashboardsSchema } from '../../src/embed/write-json-schema.js';

it('schema/steward-dashboards.schema.json matches what steward embed apply accepts', () => {
  // Failure it stops: an editor validating dashboards against a stale schema that allows what the server refuses (or the reverse).
  assert.equal(fs.readFileSync(DASHBOARDS_SCHEMA_PATH, 'utf8'), renderDashboardsSchema(), 'run `node --import tsx src/embed/write-json-schema.ts`');
});
