/**
 * Region configuration (docs/residency.md): STEWARD_REGION, STEWARD_LAKE_REGIONS, STEWARD_TRINO_REGIONS.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config.js';
import { StewardError } from '../../src/errors.js';
import { regionOfTrinoCatalog, trinoRegionOf } from '../../src/residency/residency-config.js';

const HOME = '/srv/steward';

test('reads the regions, lowercased, with folders resolved (`..`, trailing slash)', () => {
  const c = loadConfig({
    STEWARD_HOME: HOME,
    STEWARD_REGION: ' EU-Central-1 ',
    STEWARD_LAKE_REGIONS: '/data/eu/=EU-West-1:/data/x/../us=us-east-1:',
    STEWARD_TRINO_REGIONS: 'hive=eu-west-1,*=us-east-1',
    STEWARD_TRINO_CATALOGS: 'hive=lake',
  });
  assert.equal(c.region, 'eu-central-1');
  assert.deepEqual({ ...c.lakeRegions }, { '/data/eu': 'eu-west-1', '/data/us': 'us-east-1' });
  assert.equal(trinoRegionOf(c, 'lake'), 'eu-west-1', 'lake is reached as hive');
  assert.equal(trinoRegionOf(c, 'sales'), 'us-east-1');
  assert.equal(regionOfTrinoCatalog({ region: 'eu-central-1', trinoRegions: {} }, 'any'), 'eu-central-1');
  assert.equal(regionOfTrinoCatalog({ trinoRegions: {} }, 'any'), null);
});

test('refuses a region that is not a region name, and a folder without a region, naming the variable', () => {
  // Threat: a typo that leaves a folder unmarked, or a region nobody's pattern can ever match, accepted silently.
  const refused = (env: Record<string, string>, variable: RegExp): void => {
    assert.throws(
      () => loadConfig({ STEWARD_HOME: HOME, ...env }),
      (e: unknown) => e instanceof StewardError && e.code === 'STEWARD_E_CONFIG' && variable.test(JSON.stringify(e.details) + e.message),
    );
  };
  refused({ STEWARD_REGION: 'eu west 1' }, /STEWARD_REGION/);
  refused({ STEWARD_LAKE_REGIONS: '/data/eu' }, /STEWARD_LAKE_REGIONS/);
  refused({ STEWARD_TRINO_REGIONS: 'hive=eu/west' }, /STEWARD_TRINO_REGIONS/);
});
