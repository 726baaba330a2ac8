import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { regionsOfLocation } from './lake-regions.js';

let dir: string;
before(() => {
  dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'steward-lake-regions-')));
  fs.mkdirSync(path.join(dir, 'eu', 'us-archive'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'many'), { recursive: true });
  for (let i = 0; i < 30; i++) fs.writeFileSync(path.join(dir, 'many', `${i}.csv`), 'a\n1\n');
});
after(() => fs.rmSync(dir, { recursive: true, force: true }));

const folders = (): Record<string, string> => ({ [path.join(dir, 'eu')]: 'eu-west-1', [path.join(dir, 'eu', 'us-archive')]: 'us-east-1' });

test('an unmarked path is in the workspace region, or in none without one', () => {
  // Threat: an unmarked folder silently counted as allowed.
  assert.deepEqual(regionsOfLocation(path.join(dir, 'x.csv'), { folders: folders(), fallback: 'eu-central-1' }), ['eu-central-1']);
  assert.deepEqual(regionsOfLocation(path.join(dir, 'x.csv'), { folders: folders(), fallback: null }), [null]);
});

test('the most specific marked folder wins, and a folder spans the marked folders below it', () => {
  // Threat: a us folder nested in the eu folder passing as eu because its parent is marked eu.
  assert.deepEqual(regionsOfLocation(path.join(dir, 'eu', 'us-archive', 'x.csv'), { folders: folders(), fallback: null }), ['us-east-1']);
  assert.deepEqual(regionsOfLocation(path.join(dir, 'eu', '**', '*.csv'), { folders: folders(), fallback: null }).sort(), ['eu-west-1', 'us-east-1']);
  assert.deepEqual(regionsOfLocation(path.join(dir, 'eu'), { folders: folders(), fallback: null }).sort(), ['eu-west-1', 'us-east-1']);
});

test('a remote location is in no region', () => {
  assert.deepEqual(regionsOfLocation('s3://bucket/eu/x.parquet', { folders: folders(), fallback: 'eu-west-1' }), [null]);
});

test('a walk that meets more entries than it may look at counts as no region', () => {
  // Threat: a folder too large to inspect hiding a symlink to another region past the point where the walk stopped.
  assert.deepEqual(regionsOfLocation(path.join(dir, 'many', '*.csv'), { folders: folders(), fallback: 'eu-west-1' }), ['eu-west-1']);
  assert.deepEqual(regionsOfLocation(path.join(dir, 'many', '*.csv'), { folders: folders(), fallback: 'eu-west-1' }, { maxWalk: 10 }), ['eu-west-1', null]);
});
