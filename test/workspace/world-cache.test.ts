/**
 * The world cache (src/workspace/world-cache.ts) as an attacker or a careless
 * admin would meet it: a cache someone else could have written, a cache past
 * the store's next timer, a world too big to cache; and the property that a
 * cached world decides exactly as the world it was written from.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import fc from 'fast-check';
import { dropWorldCache, MAX_CACHED_ENTITIES, readWorldCache, WORLD_CACHE_FILE, writeWorldCache } from '../../src/workspace/world-cache.js';
import { evaluatorFor } from '../../src/experiments/experiment-evaluator.js';
import { decisionToJson } from '../../src/governance/authorize.js';
import { EMPTY_WORLD, type PolicyWorld } from '../../src/policy/model.js';
import { arbWorld, createRng, randomRequests, randomWorld } from '../support/random-world.js';
import { tempDirs } from '../support/temp-dirs.js';

const tempDir = tempDirs('steward-world-cache-');

async function home(): Promise<string> {
  const h = path.join(await tempDir(), 'home');
  await fs.mkdir(h, { mode: 0o700 });
  return h;
}

const world = randomWorld(7);

describe('world cache', () => {
  it('a cached world decides exactly as the world it was written from (property)', () => {
    fc.assert(
      fc.property(arbWorld(), fc.integer(), (w, seed) => {
        const cached = JSON.parse(JSON.stringify(w)) as PolicyWorld;
        const [a, b] = [evaluatorFor(w), evaluatorFor(cached)];
        for (const req of randomRequests(w, createRng(seed), 40)) {
          assert.deepEqual(decisionToJson(b.authorize(req)), decisionToJson(a.authorize(req)));
        }
      }),
      { numRuns: 40 },
    );
  });

  it('is read back as written, and gone once dropped', async () => {
    const h = await home();
    assert.equal(await writeWorldCache(h, { version: 12, world, validUntil: null }), true);
    const stat = await fs.stat(path.join(h, WORLD_CACHE_FILE));
    assert.equal(stat.mode & 0o777, 0o600);
    const back = await readWorldCache(h);
    assert.equal(back?.version, 12);
    assert.deepEqual(back?.world, JSON.parse(JSON.stringify(world)));
    await dropWorldCache(h);
    assert.equal(await readWorldCache(h), null);
    await dropWorldCache(h); // dropping twice is not an error
  });

  it('is ignored once the store has a timer due (a JIT activation, an experiment starting)', async () => {
    const h = await home();
    await writeWorldCache(h, { version: 1, world, validUntil: 1_000_000 });
    assert.notEqual(await readWorldCache(h, 999_999), null);
    assert.equal(await readWorldCache(h, 1_000_000), null);
  });

  it('is ignored when someone else could have written it', async () => {
    const h = await home();
    const file = path.join(h, WORLD_CACHE_FILE);
    await writeWorldCache(h, { version: 1, world, validUntil: null });
    await fs.chmod(file, 0o644);
    assert.equal(await readWorldCache(h), null, 'a cache readable or writable by others');
    await fs.chmod(file, 0o600);
    assert.notEqual(await readWorldCache(h), null);
    if (process.getuid?.() === 0) {
      await fs.chown(file, 65534, 65534);
      assert.equal(await readWorldCache(h), null, 'a cache owned by another user');
      await fs.chown(file, 0, 0);
    }
    await fs.chmod(h, 0o755);
    assert.equal(await readWorldCache(h), null, 'a workspace others can read (the full open repairs it)');
    await fs.chmod(h, 0o700);
    const real = path.join(h, 'elsewhere.json');
    await fs.rename(file, real);
    await fs.symlink(real, file);
    assert.equal(await readWorldCache(h), null, 'a symbolic link');
  });

  it('is ignored when it is not a cache this version writes', async () => {
    const h = await home();
    const file = path.join(h, WORLD_CACHE_FILE);
    for (const body of ['{', 'null', '{"format":2,"version":1,"validUntil":null,"world":{}}', JSON.stringify({ format: 1, version: 1, validUntil: null, world: { ...EMPTY_WORLD, grants: 'all' } })]) {
      await fs.writeFile(file, body, { mode: 0o600 });
      assert.equal(await readWorldCache(h), null, body);
    }
  });

  it('is not written for a world too big to pay for itself', async () => {
    const h = await home();
    const big: PolicyWorld = { ...EMPTY_WORLD, users: Array.from({ length: MAX_CACHED_ENTITIES + 1 }, (_, i) => ({ name: `u${i}` })) };
    assert.equal(await writeWorldCache(h, { version: 1, world: big, validUntil: null }), false);
    assert.equal(await readWorldCache(h), null);
  });
});

describe('world cache behind a linked workspace folder', () => {
  it('is read through a workspace folder that is a symbolic link, as the full open reads the store', async () => {
    const h = await home();
    await writeWorldCache(h, { version: 3, world, validUntil: null });
    const link = path.join(path.dirname(h), 'linked');
    await fs.symlink(h, link);
    assert.equal((await readWorldCache(link))?.version, 3);
  });
});
