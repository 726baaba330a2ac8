/**
 * Golden files for the shipped custom-source mappings: each input line of
 * golden/<mapping>.input.jsonl gives the stored (conformed) OCSF events or the
 * quarantine reason in golden/<mapping>.expected.jsonl. Regenerate after an
 * intended change with `UPDATE_GOLDEN=1` and review the diff.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MAPPINGS, mapperFor, type MappingName } from '../../src/audit/mappings/index.js';
import { recordsOf } from '../../src/audit/mappings/mapping.js';
import { conform } from '../../src/audit/lake-schema.js';
import { validateOcsf } from './ocsf-validator.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'golden');

function run(name: MappingName): { out: string; events: Record<string, unknown>[] } {
  const map = mapperFor(name);
  const lines = readFileSync(path.join(dir, `${name}.input.jsonl`), 'utf8').split('\n').filter((l) => l !== '');
  const out: string[] = [];
  const events: Record<string, unknown>[] = [];
  lines.forEach((text, i) => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      out.push(JSON.stringify({ line: i + 1, quarantine: 'not JSON' }));
      return;
    }
    for (const rec of recordsOf(MAPPINGS[name], parsed)) {
      const r = map(rec);
      if (!r.ok) {
        out.push(JSON.stringify({ line: i + 1, quarantine: r.reason }));
        continue;
      }
      const c = conform(r.event);
      events.push(r.event);
      out.push(JSON.stringify({ line: i + 1, event: c.event }));
    }
  });
  return { out: `${out.join('\n')}\n`, events };
}

for (const name of ['cloudtrail', 'azure_activity'] as const) {
  describe(`mapping ${name}`, () => {
    const { out, events } = run(name);
    const golden = path.join(dir, `${name}.expected.jsonl`);
    if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(golden, out);

    it('matches the golden file', () => {
      assert.equal(out, readFileSync(golden, 'utf8'));
    });

    it('every mapped event satisfies the vendored OCSF 1.1 required attributes', () => {
      assert.ok(events.length > 0);
      for (const e of events) assert.deepEqual(validateOcsf(e), [], JSON.stringify(e).slice(0, 300));
    });
  });
}

describe('mapping cloudtrail: classes', () => {
  const { events } = run('cloudtrail');
  const byName = (n: string): Record<string, unknown> | undefined => events.find((e) => (e['metadata'] as { event_code?: string }).event_code === n);
  it('ConsoleLogin is Authentication (failure included), CreateUser and AttachUserPolicy Account Change, the rest API Activity', () => {
    assert.equal(byName('ConsoleLogin')?.['class_uid'], 3002);
    const failed = events.filter((e) => e['class_uid'] === 3002 && e['status_id'] === 2);
    assert.equal(failed.length, 1);
    assert.equal(byName('CreateUser')?.['class_uid'], 3001);
    assert.equal(byName('AttachUserPolicy')?.['activity_id'], 7);
    assert.equal(byName('DeleteBucket')?.['class_uid'], 6003);
    assert.equal(byName('DeleteBucket')?.['status_id'], 2);
    assert.equal(byName('DescribeInstances')?.['activity_id'], 2);
  });
});
