/**
 * From ID-token claims to a Steward user and its IdP-managed groups, through
 * the `steward idp map` rules (the world's `idpMappings`). Pure: the caller
 * commits the plan.
 *
 * - The user is `preferred_username` (else `email`), lowercased, as a Steward
 *   user name; a value that is not one is refused, never rewritten (cutting
 *   `alice@evil.example` to `alice` would hand over someone else's account).
 * - Groups: each value of the groups claim that a mapping of this provider
 *   names gives its Steward group. A group that some mapping of this provider
 *   targets is IdP-managed: the user's membership in it follows the claim at
 *   every sign-in (added or removed). Other groups are left alone.
 * - A user unknown to Steward is created (just-in-time) only when at least
 *   one of its groups is mapped: the mapping says how it may sign in.
 *   Otherwise the sign-in is refused.
 */
import type { Change } from '../policy/changes.js';
import { entityKey } from '../policy/changes.js';
import type { PolicyWorld, PrincipalRef } from '../policy/model.js';
import { LabelSchema } from '../server/schemas.js';

export interface IdentityClaims {
  readonly ok: true;
  readonly subject: string;
  /** A valid Steward user name. */
  readonly user: string;
  readonly displayName?: string;
  /** Group names as the provider sent them. */
  readonly externalGroups: readonly string[];
}

export type Refusal = { readonly ok: false; readonly reason: string };

export interface SignInPlan {
  readonly ok: true;
  readonly user: string;
  readonly principal: PrincipalRef;
  /** Whether the user is new (just-in-time provisioning). */
  readonly created: boolean;
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changes: readonly Change[];
}

const MAX_GROUPS = 1000;
const MAX_GROUP_LENGTH = 256;

/** The identity in verified ID-token claims, or why it cannot be a Steward user. */
export function identityFromClaims(claims: Readonly<Record<string, unknown>>, groupsClaim: string): IdentityClaims | Refusal {
  const subject = typeof claims['sub'] === 'string' ? claims['sub'] : '';
  if (subject === '') return { ok: false, reason: 'the ID token has no subject' };
  const raw = typeof claims['preferred_username'] === 'string' ? claims['preferred_username'] : typeof claims['email'] === 'string' ? claims['email'] : undefined;
  if (raw === undefined) return { ok: false, reason: 'the ID token has neither `preferred_username` nor `email`' };
  const user = LabelSchema.safeParse(raw);
  if (!user.success) return { ok: false, reason: `\`${raw.slice(0, 128)}\` is not a Steward user name (lowercase letters, digits, \`_\`, \`.\`, \`-\`)` };
  const groups = groupsOf(claims[groupsClaim]);
  if (groups === null) return { ok: false, reason: `claim \`${groupsClaim}\` must be a list of at most ${MAX_GROUPS} group names` };
  const name = typeof claims['name'] === 'string' && claims['name'].trim() !== '' ? claims['name'].trim().slice(0, 256) : undefined;
  return { ok: true, subject, user: user.data, ...(name === undefined ? {} : { displayName: name }), externalGroups: groups };
}

function groupsOf(value: unknown): string[] | null {
  if (value === undefined || value === null) return [];
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length > MAX_GROUPS) return null;
  return [...new Set(list.filter((g): g is string => typeof g === 'string' && g.length > 0 && g.length <= MAX_GROUP_LENGTH))];
}

/** What signing `identity` in from `provider` does to the world, or why it is refused. */
export function planSignIn(world: PolicyWorld, provider: string, identity: IdentityClaims): SignInPlan | Refusal {
  const principal: PrincipalRef = `user:${identity.user}`;
  const rules = world.idpMappings.filter((m) => m.provider === provider);
  const managed = new Set(rules.map((m) => m.group));
  const claimed = new Set(identity.externalGroups);
  const wanted = new Set(rules.filter((m) => claimed.has(m.externalGroup)).map((m) => m.group));
  const exists = world.users.some((u) => u.name === identity.user);
  if (!exists && wanted.size === 0) {
    return { ok: false, reason: `\`${identity.user}\` is not a Steward user and none of its groups is mapped for provider \`${provider}\` (see \`steward idp map\`)` };
  }
  const current = new Set(world.memberships.filter((m) => m.member === principal && managed.has(m.group)).map((m) => m.group));
  const added = [...wanted].filter((g) => !current.has(g)).sort();
  const removed = [...current].filter((g) => !wanted.has(g)).sort();
  const changes: Change[] = [];
  if (!exists) changes.push({ op: 'put', kind: 'user', entity: { name: identity.user, ...(identity.displayName === undefined ? {} : { displayName: identity.displayName }) } });
  for (const group of added) changes.push({ op: 'put', kind: 'membership', entity: { group, member: principal } });
  for (const group of removed) changes.push({ op: 'delete', kind: 'membership', key: entityKey('membership', { group, member: principal }) });
  return { ok: true, user: identity.user, principal, created: !exists, added, removed, changes };
}
