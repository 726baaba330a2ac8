/**
 * `steward --version` answers from package.json, on the fast path of
 * bin/steward.js and through the full command table alike, so the two can
 * never print different versions.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { steward } from '../support/cli.js';

const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('steward --version', () => {
  for (const args of [['--version'], ['-V'], ['--json', '--version']]) {
    it(`\`steward ${args.join(' ')}\` prints package.json's version and exits 0`, async () => {
      const r = await steward(args);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, `${pkg.version}\n`);
    });
  }

  it('a --version among other arguments is answered by the command table, with the same version', async () => {
    const r = await steward(['no-such-command', '--version']);
    assert.equal(r.stdout, `${pkg.version}\n`, 'commander answers --version before the command');
    const bad = await steward(['no-such-command']);
    assert.notEqual(bad.code, 0);
  });
});
