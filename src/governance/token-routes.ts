/**
 * API tokens. The secret is shown once, at creation; the store keeps only a
 * hash. Creating, listing and revoking tokens is for admins.
 */
import { z } from 'zod';
import { route, type RouteDef } from '../server/route.js';
import { InstantSchema, LabelSchema, OkSchema, PrincipalSchema } from '../server/schemas.js';
import { actorName } from '../server/actor.js';

const TokenOut = z.object({
  id: z.string(),
  name: z.string(),
  principal: z.string(),
  role: z.string(),
  createdAt: z.string(),
  lastUsedAt: z.string().optional(),
  expiresAt: z.string().optional(),
  revokedAt: z.string().optional(),
});

export const tokenRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/tokens',
    summary: 'List API tokens (never their secrets)',
    tag: 'tokens',
    auth: 'admin',
    response: z.object({ tokens: z.array(TokenOut) }),
    handler: async ({ services }) => ({ tokens: (await services.tokens.listTokens()).map((t) => TokenOut.parse(t)) }),
  }),
  route({
    method: 'post',
    path: '/v1/tokens',
    summary: 'Create an API token; the secret is in this response only',
    tag: 'tokens',
    auth: 'admin',
    status: 201,
    body: z
      .object({
        name: LabelSchema,
        principal: PrincipalSchema,
        role: z.enum(['admin', 'user', 'embed']).default('user'),
        expiresAt: InstantSchema.optional(),
      })
      .strict(),
    response: z.object({ id: z.string(), token: z.string(), principal: z.string(), role: z.string() }),
    handler: async ({ services, actor, body }) => {
      const created = await services.tokens.createToken({
        name: body.name,
        principal: body.principal,
        role: body.role,
        ...(body.expiresAt === undefined ? {} : { expiresAt: new Date(body.expiresAt) }),
      });
      await services.state.log([
        { actor: actorName(actor), action: 'token.create', resource: body.principal, result: 'ok', reason: `token ${created.id} (${body.role})` },
      ]);
      return { id: created.id, token: created.token, principal: body.principal, role: body.role };
    },
  }),
  route({
    method: 'delete',
    path: '/v1/tokens/:id',
    summary: 'Revoke an API token',
    tag: 'tokens',
    auth: 'admin',
    params: z.object({ id: z.string().trim().min(1).max(64) }).strict(),
    response: OkSchema,
    handler: async ({ services, actor, params }) => {
      await services.tokens.revokeToken(params.id);
      await services.state.log([{ actor: actorName(actor), action: 'token.revoke', resource: params.id, result: 'ok', reason: 'revoked' }]);
      return { ok: true as const };
    },
  }),
];
