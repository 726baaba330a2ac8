/**
 * STEWARD_TRINO_PRINCIPALS names who may ask the Trino decision endpoints:
 * a typo must stop the start, not silently let nobody (or a group) in.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { loadConfig } from '../../src/config.js';

const env = (value: string) => ({ STEWARD_HOME: os.tmpdir() + '/steward-trino-config', STEWARD_TRINO_PRINCIPALS: value });

it('reads a comma-separated list of user principals', () => {
  assert.deepEqual(loadConfig(env(' user:trino , user:trino-2 ')).trinoPrincipals, ['user:trino', 'user:trino-2']);
  assert.deepEqual(loadConfig(env('')).trinoPrincipals, []);
});

it('refuses a group, a bare name or junk, naming the variable, so a whole group cannot become a decision oracle', () => {
  // Threat: an admin listing `group:analysts` and every analyst's token reading everyone's filters.
  for (const bad of ['group:analysts', 'trino', 'user:Trino', 'user:a b']) {
    assert.throws(() => loadConfig(env(bad)), (e: Error) => /STEWARD_TRINO_PRINCIPALS/.test(e.message), bad);
  }
});
