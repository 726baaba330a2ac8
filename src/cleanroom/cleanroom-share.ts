/**
 * The checks every way of sharing a table into a collaboration passes (the
 * API's associate and a policy apply): the table is a lake table of the
 * catalog, and the member may read every row of it and every chosen column
 * unmasked itself, so nobody shares more than its owner could see.
 */
import { StewardError, invalid } from '../errors.js';
import type { Evaluator } from '../policy/decision.js';
import { findTable, parseResource, type PolicyWorld, type PrincipalRef } from '../policy/model.js';
import { principalExists } from '../policy/principals.js';
import type { Member } from './cleanroom-types.js';

/** `columns[0]` alone for the API, `cleanrooms.scope3.tables.purchase.columns[0]` in a policy file. */
const join = (prefix: string, field: string): string => (prefix === '' ? field : `${prefix}.${field}`);

export function checkPrincipalExists(world: PolicyWorld, path: string, p: PrincipalRef): void {
  if (!principalExists(world, p)) throw new StewardError('STEWARD_E_VALIDATION', `${path}: principal \`${p}\` not found`, { details: [{ path, message: 'not found' }] });
}

/** The table's canonical path and the distinct columns, or the refusal naming the field under `prefix`. */
export function checkShare(
  snap: { readonly world: PolicyWorld; readonly engine: Evaluator },
  me: Member,
  input: { readonly table: string; readonly columns: readonly string[] },
  prefix = '',
): { table: string; columns: string[] } {
  const tablePath = join(prefix, 'table');
  const ref = parseResource(input.table);
  if (ref === null || ref.level !== 'table') throw invalid(tablePath, `must be \`catalog.database.table\`, got \`${input.table}\``);
  const t = findTable(snap.world, ref);
  if (t === undefined) throw new StewardError('STEWARD_E_VALIDATION', `${tablePath}: \`${input.table}\` not found`, { details: [{ path: tablePath, message: 'not found' }] });
  if (t.source.kind !== 'lake') throw new StewardError('STEWARD_E_VALIDATION', `${tablePath}: \`${input.table}\` is not a lake table`, { details: [{ path: tablePath, message: 'not in the lake' }] });
  // A member shares only what it may read in full itself: every row, and every chosen column unmasked.
  const d = snap.engine.authorize({ principal: me.principal, action: 'SELECT', resource: ref });
  if (d.decision !== 'allow' || (d.rowFilter ?? null) !== null) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `${tablePath}: member \`${me.name}\` (\`${me.principal}\`) may not read every row of \`${input.table}\`, so it cannot share it`, { details: [{ path: tablePath, message: 'not readable in full' }] });
  }
  input.columns.forEach((c, i) => {
    const path = join(prefix, `columns[${i}]`);
    if (!t.columns.some((x) => x.name === c)) throw new StewardError('STEWARD_E_VALIDATION', `${path}: column \`${c}\` not found in \`${input.table}\``, { details: [{ path, message: 'not found' }] });
    const col = d.columns?.find((x) => x.name === c);
    if (col === undefined || col.rowFilter !== null) throw new StewardError('STEWARD_E_FORBIDDEN', `${path}: member \`${me.name}\` may not read column \`${c}\` in full, so it cannot share it`, { details: [{ path, message: 'not readable in full' }] });
  });
  return { table: `${t.catalog}.${t.database}.${t.name}`, columns: [...new Set(input.columns)] };
}
