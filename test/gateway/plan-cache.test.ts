/**
 * The plan cache under a stream of policy changes: plans of an older policy
 * version can never be hit again (the version is in the key) and must not
 * keep that version's snapshot (world, engine, memo) alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import v8 from 'node:v8';
import vm from 'node:vm';
import { createPlanCache, planCacheKey } from '../../src/gateway/plan-cache.js';
import type { QueryPlan } from '../../src/gateway/types.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** A plan as the cache sees it: only its snapshot's version and world matter here. */
function planAt(version: number, world: object): QueryPlan {
  return { snapshot: { version, world } } as unknown as QueryPlan;
}

test('a policy change releases the plans, and so the snapshots, of the version before it', async () => {
  // threat: every policy change leaves the previous world and engine pinned by cached plans: the soak's heap grew ~6 MiB/min
  const cache = createPlanCache();
  let world: object | undefined = { tables: Array.from({ length: 1000 }, (_, i) => ({ name: `t${i}` })) };
  const old = new WeakRef(world);
  const key1 = planCacheKey(1, 'user:alice', {}, 'SELECT 1');
  cache.set(key1, planAt(1, world), Number.POSITIVE_INFINITY);
  assert.notEqual(cache.get(key1, 0), undefined, 'a plan is reused within its version');
  world = undefined;
  cache.set(planCacheKey(2, 'user:alice', {}, 'SELECT 1'), planAt(2, {}), Number.POSITIVE_INFINITY);
  for (let i = 0; i < 5 && old.deref() !== undefined; i++) {
    await new Promise((r) => setImmediate(r));
    gc();
  }
  assert.equal(old.deref(), undefined, 'the old snapshot is collectable');
});

test('a plan made on an older snapshot after a newer one was cached does not evict the newer plans', () => {
  // threat: a slow request finishing late flushes the current version's plans (or caches a stale one)
  const cache = createPlanCache();
  const key2 = planCacheKey(2, 'user:alice', {}, 'SELECT 1');
  cache.set(key2, planAt(2, {}), Number.POSITIVE_INFINITY);
  const key1 = planCacheKey(1, 'user:alice', {}, 'SELECT 1');
  cache.set(key1, planAt(1, {}), Number.POSITIVE_INFINITY);
  assert.equal(cache.get(key1, 0), undefined);
  assert.notEqual(cache.get(key2, 0), undefined);
});
