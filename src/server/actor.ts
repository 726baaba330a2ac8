/**
 * Who is calling. Admins manage the workspace; users act as their own
 * principal (authorize themselves, read what they may DESCRIBE, re-grant what
 * they hold with the grant option).
 */
import type { PrincipalRef } from '../policy/model.js';
import { StewardError } from '../errors.js';

/** `embed`: a vendor's back end, which may only mint embed tokens (src/embed/); refused everywhere else. */
export type Role = 'admin' | 'user' | 'embed';

export interface Actor {
  readonly principal: PrincipalRef;
  readonly role: Role;
  /** Token id, or `local` for the embedded CLI acting on its own workspace. */
  readonly via: string;
}

/** The identity of the CLI on an embedded workspace: whoever can open $STEWARD_HOME owns it. */
export const LOCAL_ADMIN: Actor = Object.freeze({ principal: 'user:local-admin', role: 'admin', via: 'local' });

export function requireAdmin(actor: Actor): void {
  if (actor.role !== 'admin') throw new StewardError('STEWARD_E_FORBIDDEN', 'this operation needs an admin token');
}

/** A user may ask about itself; an admin about anyone. */
export function requireSelfOrAdmin(actor: Actor, principal: PrincipalRef): void {
  if (actor.role !== 'admin' && actor.principal !== principal) {
    throw new StewardError('STEWARD_E_FORBIDDEN', `only admins may act for \`${principal}\``);
  }
}

/** Name for the decision log. */
export function actorName(actor: Actor): string {
  return actor.via === 'local' ? `${actor.principal} (local)` : actor.principal;
}
