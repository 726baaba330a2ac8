/**
 * The indexed engine must answer exactly like the reference evaluator, on any
 * world. A disagreement is a security bug in one of them until shown otherwise:
 * fast-check prints the seed, and `randomWorld(seed)` rebuilds the world.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { createEngine } from '../../src/policy/engine.js';
import { createReferenceEvaluator } from '../../src/policy/reference-evaluator.js';
import type { PrincipalRef, ResourceRef } from '../../src/policy/model.js';
import { PERMISSIONS } from '../../src/policy/model.js';
import {
  arbWorldSeed,
  createRng,
  NOW,
  normalizeDecision,
  normalizeEffective,
  normalizeHolders,
  principalsOf,
  randomRequests,
  randomWorld,
  resourcesOf,
} from '../support/random-world.js';

const RUNS = Number(process.env.STEWARD_PROPERTY_RUNS ?? 10_000);

/** deepStrictEqual is slow on big trees; compare JSON first and only diff on a mismatch. */
function same(actual: unknown, expected: unknown, what: string): void {
  if (JSON.stringify(actual) !== JSON.stringify(expected)) assert.deepStrictEqual(actual, expected, what);
}

/** Checks one world. Replay a failing seed with `checkWorld(seed)`. */
function checkWorld(seed: number): void {
  const world = randomWorld(seed);
  const engine = createEngine(world);
  const reference = createReferenceEvaluator(world);
  const rng = createRng(seed ^ 0x5eed);
  for (const req of randomRequests(world, rng, 6)) {
    same(normalizeDecision(engine.authorize(req)), normalizeDecision(reference.authorize(req)), `seed ${seed}: authorize ${JSON.stringify(req)}`);
  }
  // the same engine again at instants around every expiry: a memoized decision must not outlive its window
  const instants = [...new Set(world.grants.flatMap((g) => (g.notAfter === undefined ? [] : [Date.parse(g.notAfter) - 1, Date.parse(g.notAfter)])))].filter((t) => !Number.isNaN(t));
  if (instants.length > 0) {
    for (const req of randomRequests(world, createRng(seed ^ 0x7a11), 4)) {
      for (const now of [rng.pick(instants), NOW, rng.pick(instants)]) {
        const at = { ...req, now };
        same(normalizeDecision(engine.authorize(at)), normalizeDecision(reference.authorize(at)), `seed ${seed}: authorize at ${now} ${JSON.stringify(req)}`);
      }
    }
  }
  // the listings are expensive in the reference, so each world checks one of them
  switch (seed % 6) {
    case 0: {
      const p: PrincipalRef = rng.pick(principalsOf(world));
      same(normalizeEffective(engine.effectivePermissions(p, NOW)), normalizeEffective(reference.effectivePermissions(p, NOW)), `seed ${seed}: effectivePermissions ${p}`);
      break;
    }
    case 1: {
      const r: ResourceRef = rng.pick(resourcesOf(world));
      const a = rng.pick(PERMISSIONS);
      same(normalizeHolders(engine.whoCanAccess(r, a, NOW)), normalizeHolders(reference.whoCanAccess(r, a, NOW)), `seed ${seed}: whoCanAccess ${JSON.stringify(r)} ${a}`);
      break;
    }
    default:
      break;
  }
}

test('the indexed engine agrees with the reference evaluator on random worlds', () => {
  fc.assert(
    fc.property(arbWorldSeed(), (seed) => {
      checkWorld(seed);
    }),
    { numRuns: RUNS },
  );
});

test('the engine agrees on every request of a few exhaustively checked worlds', () => {
  for (let seed = 1; seed <= 20; seed++) {
    const world = randomWorld(seed);
    const engine = createEngine(world);
    const reference = createReferenceEvaluator(world);
    for (const principal of principalsOf(world)) {
      for (const resource of resourcesOf(world)) {
        for (const action of PERMISSIONS) {
          const req = { principal, action, resource, now: NOW };
          same(normalizeDecision(engine.authorize(req)), normalizeDecision(reference.authorize(req)), `seed ${seed}: ${JSON.stringify(req)}`);
        }
      }
    }
  }
});
