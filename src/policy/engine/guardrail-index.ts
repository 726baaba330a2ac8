/**
 * Guardrails, indexed as bitmasks of W 32-bit words: per tag signature the
 * guardrails whose expression matches it, per catalog those in scope there,
 * and per grant the guardrails it may lift. A decision then finds the
 * guardrails denying it with a few ANDs and ORs, whatever their number.
 */
import type { Reason } from '../decision.js';
import type { PolicyWorld } from '../model.js';
import { PERMISSIONS } from '../model.js';
import { compareText } from '../principals.js';
import { guardrailReason } from '../reference-evaluator.js';
import type { CatalogIndex } from './catalog-index.js';
import type { GrantIndex, GuardrailIndex, PrincipalIndex } from './types.js';
import { permMask } from './grant-index.js';
import type { TagIndex } from './tag-signatures.js';
import { compileExpr, matchSig } from './tag-signatures.js';


/** Sets bit `bit` of the bitmask starting at `base`. */
export function setBit(words: Int32Array, base: number, bit: number): void {
  const i = base + (bit >>> 5);
  words[i] = (words[i] as number) | (1 << (bit & 31));
}

export function buildGuardrailIndex(world: PolicyWorld, cat: CatalogIndex, tags: TagIndex, principals: PrincipalIndex, grants: GrantIndex): GuardrailIndex {
  const { nSigs, sigVals, nKeys } = tags;
  const pid = (ref: string): number => principals.pidByRef.get(ref) as number;
  const nGr = world.guardrails.length;
  const grName = world.guardrails.map((g) => g.name);
  const grRank = new Int32Array(nGr);
  [...grName.keys()].sort((a, b) => compareText(grName[a] as string, grName[b] as string)).forEach((g, rank) => (grRank[g] = rank));
  const grActions = new Int32Array(nGr);
  const grCat = new Int32Array(nGr);
  const grEmpty = new Uint8Array(nGr);
  const grSig = new Uint8Array(nGr * nSigs);
  const grPrincipals: (Int32Array | null)[] = [];
  const grExcept: Int32Array[] = [];
  const grReason: Reason[] = [];
  world.guardrails.forEach((gr, i) => {
    grActions[i] = permMask(gr.actions, PERMISSIONS);
    // -1: every catalog; -2: a catalog the world does not have, so nothing matches
    grCat[i] = gr.catalog === undefined ? -1 : (cat.catByName.get(gr.catalog) ?? -2);
    const ce = compileExpr(tags, gr.resources);
    grEmpty[i] = ce.empty ? 1 : 0;
    for (let s = 0; s < nSigs; s++) grSig[i * nSigs + s] = matchSig(ce, sigVals, nKeys, s) ? 1 : 0;
    // an empty `principals` list is read as omitted: a deny rule should fail towards denying
    grPrincipals.push(gr.principals === undefined || gr.principals.length === 0 ? null : Int32Array.from(gr.principals.map(pid)));
    grExcept.push(Int32Array.from((gr.except ?? []).map(pid)));
    grReason.push(Object.freeze(guardrailReason(gr.name)));
  });
  const W = Math.max(1, Math.ceil(nGr / 32));
  const sigGuard = new Int32Array(nSigs * W);
  for (let g = 0; g < nGr; g++) {
    for (let sg = 0; sg < nSigs; sg++) if (grSig[g * nSigs + sg] === 1) setBit(sigGuard, sg * W, g);
  }
  const nCats = cat.catNames.length;
  const scopeGuard = new Int32Array(nCats * W);
  for (let g = 0; g < nGr; g++) {
    for (let c = 0; c < nCats; c++) if (grCat[g] === -1 || grCat[g] === c) setBit(scopeGuard, c * W, g);
  }
  const grByRank = new Int32Array(nGr);
  grRank.forEach((rank, g) => (grByRank[rank] = g));
  const gLift = liftMasks(world, grants, W);
  return { grName, grRank, grActions, grCat, grEmpty, grSig, grPrincipals, grExcept, grReason, W, sigGuard, scopeGuard, grByRank, gLift };
}

/** Per grant, the liftable guardrails it names; only time-bound grants can lift. */
function liftMasks(world: PolicyWorld, grants: GrantIndex, W: number): (Int32Array | undefined)[] {
  const gLift: (Int32Array | undefined)[] = new Array(grants.grants.length);
  grants.grants.forEach((g, i) => {
    if (g.liftsGuardrails === undefined || g.liftsGuardrails.length === 0 || !Number.isFinite(grants.gExpiry[i] as number)) return;
    const mask = new Int32Array(W);
    let any = false;
    world.guardrails.forEach((gr, j) => {
      if (gr.liftable === true && (g.liftsGuardrails as readonly string[]).includes(gr.name)) {
        setBit(mask, 0, j);
        any = true;
      }
    });
    if (any) gLift[i] = mask;
  });
  return gLift;
}
