import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { loadConfig } from './config.js';
import { isStewardError } from './errors.js';

test('the lake roots always include the lake folder, then STEWARD_LAKE_ROOTS, resolved', () => {
  const c = loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_LAKE_ROOTS: `/data/lake${path.delimiter}relative/dir${path.delimiter}` });
  assert.deepEqual(c.lakeRoots, ['/srv/steward/lake', '/data/lake', path.resolve('relative/dir')]);
  assert.deepEqual(loadConfig({ STEWARD_HOME: '/srv/steward' }).lakeRoots, ['/srv/steward/lake']);
});

test('a lake folder that is the workspace folder, or contains it, is a configuration error naming the variable', () => {
  // Threat: a careless STEWARD_LAKE_DIR makes the store and the local admin token registrable lake data.
  for (const lakeDir of ['/srv/steward', '/srv', '/']) {
    assert.throws(
      () => loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_LAKE_DIR: lakeDir }),
      (e: unknown) => isStewardError(e) && e.code === 'STEWARD_E_CONFIG' && /STEWARD_LAKE_DIR: must not be the workspace folder/.test(e.message),
      lakeDir,
    );
  }
  assert.equal(loadConfig({ STEWARD_HOME: '/srv/steward', STEWARD_LAKE_DIR: '/data/lake' }).lakeDir, '/data/lake');
});
