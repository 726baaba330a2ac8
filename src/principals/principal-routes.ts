/**
 * Users, groups with nested membership, and identity-provider group mappings.
 * Cycles and dangling members are refused by world validation, which names
 * the cycle.
 */
import { z } from 'zod';
import { commit, route, type RouteDef } from '../server/route.js';
import { DescriptionSchema, LabelSchema, OkSchema, PrincipalSchema } from '../server/schemas.js';
import { entityKey, type Change } from '../policy/changes.js';
import type { PolicyWorld, PrincipalRef } from '../policy/model.js';
import { StewardError, notFound } from '../errors.js';

const UserOut = z.object({ name: z.string(), displayName: z.string().optional(), groups: z.array(z.string()) });
const GroupOut = z.object({ name: z.string(), description: z.string().optional(), members: z.array(z.string()) });
const MappingSchema = z
  .object({
    provider: LabelSchema,
    externalGroup: z.string().trim().min(1).max(256),
    group: LabelSchema,
  })
  .strict();

/** Memberships of the principal and everything that references it, for a delete that leaves nothing dangling. */
export function deletePrincipal(world: PolicyWorld, ref: PrincipalRef): Change[] {
  const [kind, name] = ref.split(':') as ['user' | 'group', string];
  const exists = kind === 'user' ? world.users.some((u) => u.name === name) : world.groups.some((g) => g.name === name);
  if (!exists) throw notFound(kind, name);
  const out: Change[] = [];
  for (const m of world.memberships) {
    if (m.member === ref || (kind === 'group' && m.group === name)) out.push({ op: 'delete', kind: 'membership', key: entityKey('membership', m) });
  }
  for (const g of world.grants) if (g.principal === ref) out.push({ op: 'delete', kind: 'grant', key: g.id });
  if (kind === 'group') {
    for (const m of world.idpMappings) if (m.group === name) out.push({ op: 'delete', kind: 'idpMapping', key: entityKey('idpMapping', m) });
  }
  const inGuardrail = world.guardrails.filter((g) => g.principals?.includes(ref) === true || g.except?.includes(ref) === true);
  if (inGuardrail.length > 0) {
    // Removing a principal named by a guardrail would silently widen or narrow an organization-wide deny.
    throw new StewardError('STEWARD_E_IN_USE', `\`${ref}\` is named by guardrail(s) ${inGuardrail.map((g) => `\`${g.name}\``).join(', ')}; change them first`);
  }
  out.push({ op: 'delete', kind, key: name });
  return out;
}

export const principalRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/users',
    summary: 'List users with their direct groups',
    tag: 'principals',
    auth: 'admin',
    response: z.object({ users: z.array(UserOut) }),
    handler: async ({ services }) => {
      const { world } = await services.state.snapshot();
      return {
        users: world.users.map((u) => ({
          ...u,
          groups: world.memberships.filter((m) => m.member === `user:${u.name}`).map((m) => m.group).sort(),
        })),
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/users',
    summary: 'Create or update a user',
    tag: 'principals',
    auth: 'admin',
    status: 201,
    body: z.object({ name: LabelSchema, displayName: z.string().trim().max(256).optional() }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, body }) => {
      return commit({ services, actor }, 'user.put', `user:${body.name}`, () => [{ op: 'put', kind: 'user', entity: body }]);
    },
  }),
  route({
    method: 'delete',
    path: '/v1/users/:name',
    summary: 'Delete a user, its memberships and its grants',
    tag: 'principals',
    auth: 'admin',
    params: z.object({ name: LabelSchema }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      return commit({ services, actor }, 'user.delete', `user:${params.name}`, (w) => deletePrincipal(w, `user:${params.name}`));
    },
  }),
  route({
    method: 'get',
    path: '/v1/groups',
    summary: 'List groups with their direct members',
    tag: 'principals',
    auth: 'admin',
    response: z.object({ groups: z.array(GroupOut) }),
    handler: async ({ services }) => {
      const { world } = await services.state.snapshot();
      return {
        groups: world.groups.map((g) => ({
          ...g,
          members: world.memberships.filter((m) => m.group === g.name).map((m) => m.member).sort(),
        })),
      };
    },
  }),
  route({
    method: 'post',
    path: '/v1/groups',
    summary: 'Create or update a group',
    tag: 'principals',
    auth: 'admin',
    status: 201,
    body: z.object({ name: LabelSchema, description: DescriptionSchema.optional() }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, body }) => {
      return commit({ services, actor }, 'group.put', `group:${body.name}`, () => [{ op: 'put', kind: 'group', entity: body }]);
    },
  }),
  route({
    method: 'delete',
    path: '/v1/groups/:name',
    summary: 'Delete a group, its memberships, mappings and grants',
    tag: 'principals',
    auth: 'admin',
    params: z.object({ name: LabelSchema }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      return commit({ services, actor }, 'group.delete', `group:${params.name}`, (w) => deletePrincipal(w, `group:${params.name}`));
    },
  }),
  route({
    method: 'post',
    path: '/v1/groups/:name/members',
    summary: 'Add a user or group to a group (cycles are refused)',
    tag: 'principals',
    auth: 'admin',
    status: 201,
    params: z.object({ name: LabelSchema }).strict(),
    body: z.object({ member: PrincipalSchema }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params, body }) => {
      return commit({ services, actor }, 'group.member.add', `group:${params.name}`, (w) => {
          if (!w.groups.some((g) => g.name === params.name)) throw notFound('group', params.name);
          return [{ op: 'put', kind: 'membership', entity: { group: params.name, member: body.member } }];
        }, { member: body.member });
    },
  }),
  route({
    method: 'delete',
    path: '/v1/groups/:name/members/:member',
    summary: 'Remove a member from a group',
    tag: 'principals',
    auth: 'admin',
    params: z.object({ name: LabelSchema, member: PrincipalSchema }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      return commit({ services, actor }, 'group.member.remove', `group:${params.name}`, (w) => {
          const m = w.memberships.find((x) => x.group === params.name && x.member === params.member);
          if (m === undefined) throw notFound('membership', `${params.member} in group:${params.name}`);
          return [{ op: 'delete', kind: 'membership', key: entityKey('membership', m) }];
        }, { member: params.member });
    },
  }),
  route({
    method: 'get',
    path: '/v1/idp-mappings',
    summary: 'List identity-provider group mappings',
    tag: 'principals',
    auth: 'admin',
    response: z.object({ mappings: z.array(z.object({ provider: z.string(), externalGroup: z.string(), group: z.string() })) }),
    handler: async ({ services }) => ({ mappings: (await services.state.snapshot()).world.idpMappings.map((m) => ({ ...m })) }),
  }),
  route({
    method: 'post',
    path: '/v1/idp-mappings',
    summary: 'Map an external IdP group name to a Steward group',
    tag: 'principals',
    auth: 'admin',
    status: 201,
    body: MappingSchema,
    response: OkSchema,
    handler: async ({ services, actor, body }) => {
      return commit({ services, actor }, 'idp-mapping.put', `group:${body.group}`, () => [{ op: 'put', kind: 'idpMapping', entity: body }], { provider: body.provider, externalGroup: body.externalGroup });
    },
  }),
  route({
    method: 'post',
    path: '/v1/idp-mappings/delete',
    summary: 'Remove an IdP group mapping',
    tag: 'principals',
    auth: 'admin',
    body: MappingSchema.omit({ group: true }),
    response: OkSchema,
    handler: async ({ services, actor, body }) => {
      return commit({ services, actor }, 'idp-mapping.delete', `${body.provider}/${body.externalGroup}`, (w) => {
          const m = w.idpMappings.find((x) => x.provider === body.provider && x.externalGroup === body.externalGroup);
          if (m === undefined) throw notFound('idp mapping', `${body.provider}/${body.externalGroup}`);
          return [{ op: 'delete', kind: 'idpMapping', key: entityKey('idpMapping', m) }];
        });
    },
  }),
];
