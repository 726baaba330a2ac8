/**
 * The tag ontology over HTTP: tag keys with allowed values, assignments on
 * databases, tables and columns, and effective tags with where each came from.
 * Unknown keys and values, and a second value for one key, are refused by
 * world validation with their own error codes.
 */
import { z } from 'zod';
import { commit, route, type RouteDef } from '../server/route.js';
import { DescriptionSchema, NameSchema, OkSchema, ResourceSchema } from '../server/schemas.js';
import { entityKey, type Change } from '../policy/changes.js';
import { MAX_TAG_VALUES, resourceExists, resourceToString, type PolicyWorld, type ResourceRef, type TaggableRef } from '../policy/model.js';
import { effectiveTags } from '../policy/tags.js';
import { StewardError, notFound } from '../errors.js';

const TagValueSchema = z.union([z.string().trim().min(1).max(256), z.boolean().transform(String)]);

function taggable(r: ResourceRef): TaggableRef {
  if (r.level === 'catalog') throw new StewardError('STEWARD_E_VALIDATION', 'resource: tags go on databases, tables and columns, not catalogs');
  return r;
}

/**
 * Assigning a key replaces the resource's own value for it (one value per key
 * per resource); it never touches inherited values.
 */
export function assignTag(world: PolicyWorld, resource: TaggableRef, key: string, value: string): Change[] {
  if (!resourceExists(world, resource)) throw notFound(resource.level, resourceToString(resource));
  return [{ op: 'put', kind: 'tagAssignment', entity: { resource, key, value } }];
}

export function unassignTag(world: PolicyWorld, resource: TaggableRef, key: string): Change[] {
  const a = world.tagAssignments.find((x) => x.key === key && resourceToString(x.resource) === resourceToString(resource) && x.resource.level === resource.level);
  if (a === undefined) throw notFound('tag', `${resourceToString(resource)}#${key}`);
  return [{ op: 'delete', kind: 'tagAssignment', key: entityKey('tagAssignment', a) }];
}

export function putTagKey(world: PolicyWorld, key: string, values: readonly string[], description: string | undefined): Change[] {
  const unique = [...new Set(values)];
  const removed = new Set(world.tagKeys.find((k) => k.key === key)?.values.filter((v) => !unique.includes(v)) ?? []);
  const inUse = world.tagAssignments.filter((a) => a.key === key && removed.has(a.value));
  if (inUse.length > 0) {
    throw new StewardError('STEWARD_E_IN_USE', `tag key \`${key}\`: value(s) ${[...removed].map((v) => `\`${v}\``).join(', ')} are still assigned`, {
      details: inUse.map((a) => ({ path: resourceToString(a.resource), message: `${key}=${a.value}` })),
    });
  }
  return [{ op: 'put', kind: 'tagKey', entity: { key, values: unique, ...(description === undefined ? {} : { description }) } }];
}

export function deleteTagKey(world: PolicyWorld, key: string): Change[] {
  if (!world.tagKeys.some((k) => k.key === key)) throw notFound('tag key', key);
  // Assignments go with the key; grants and guardrails that name it make the change fail validation, by name.
  return [
    ...world.tagAssignments.filter((a) => a.key === key).map((a): Change => ({ op: 'delete', kind: 'tagAssignment', key: entityKey('tagAssignment', a) })),
    { op: 'delete', kind: 'tagKey', key },
  ];
}

export const tagRoutes: readonly RouteDef[] = [
  route({
    method: 'get',
    path: '/v1/tag-keys',
    summary: 'List tag keys and their allowed values',
    tag: 'tags',
    auth: 'user',
    response: z.object({ tagKeys: z.array(z.object({ key: z.string(), values: z.array(z.string()), description: z.string().optional() })) }),
    handler: async ({ services }) => ({ tagKeys: (await services.state.snapshot()).world.tagKeys.map((k) => ({ ...k, values: [...k.values] })) }),
  }),
  route({
    method: 'put',
    path: '/v1/tag-keys/:key',
    summary: 'Create or update a tag key (at most 1000 values); values still assigned cannot be removed',
    tag: 'tags',
    auth: 'admin',
    params: z.object({ key: NameSchema }).strict(),
    body: z.object({ values: z.array(TagValueSchema).min(1).max(MAX_TAG_VALUES), description: DescriptionSchema.optional() }).strict(),
    response: OkSchema,
    handler: ({ services, actor, params, body }) =>
      commit({ services, actor }, 'tag-key.put', params.key, (w) => putTagKey(w, params.key, body.values, body.description)),
  }),
  route({
    method: 'delete',
    path: '/v1/tag-keys/:key',
    summary: 'Delete a tag key and its assignments',
    tag: 'tags',
    auth: 'admin',
    params: z.object({ key: NameSchema }).strict(),
    response: OkSchema,
    handler: ({ services, actor, params }) => commit({ services, actor }, 'tag-key.delete', params.key, (w) => deleteTagKey(w, params.key)),
  }),
  route({
    method: 'get',
    path: '/v1/resources/:resource/tags',
    summary: 'Effective tags of a database, table or column, with where each value came from',
    tag: 'tags',
    auth: 'admin',
    params: z.object({ resource: ResourceSchema }).strict(),
    response: z.object({
      resource: z.string(),
      tags: z.array(z.object({ key: z.string(), value: z.string(), source: z.string(), inherited: z.boolean() })),
    }),
    handler: async ({ services, params }) => {
      const { world } = await services.state.snapshot();
      const resource = taggable(params.resource);
      if (!resourceExists(world, resource)) throw notFound(resource.level, resourceToString(resource));
      const self = resourceToString(resource);
      const tags = [...effectiveTags(world, resource).values()]
        .map((t) => ({ key: t.key, value: t.value, source: resourceToString(t.source), inherited: resourceToString(t.source) !== self }))
        .sort((a, b) => a.key.localeCompare(b.key));
      return { resource: self, tags };
    },
  }),
  route({
    method: 'put',
    path: '/v1/resources/:resource/tags/:key',
    summary: 'Assign a tag value to a database, table or column (replaces its own value for that key)',
    tag: 'tags',
    auth: 'admin',
    params: z.object({ resource: ResourceSchema, key: NameSchema }).strict(),
    body: z.object({ value: TagValueSchema }).strict(),
    response: OkSchema,
    handler: ({ services, actor, params, body }) => {
      const resource = taggable(params.resource);
      return commit({ services, actor }, 'tag.assign', resourceToString(resource), (w) => assignTag(w, resource, params.key, body.value), {
        key: params.key,
        value: body.value,
      });
    },
  }),
  route({
    method: 'delete',
    path: '/v1/resources/:resource/tags/:key',
    summary: 'Remove a resource’s own value for a tag key (inherited values stay)',
    tag: 'tags',
    auth: 'admin',
    params: z.object({ resource: ResourceSchema, key: NameSchema }).strict(),
    response: OkSchema,
    handler: ({ services, actor, params }) => {
      const resource = taggable(params.resource);
      return commit({ services, actor }, 'tag.unassign', resourceToString(resource), (w) => unassignTag(w, resource, params.key), { key: params.key });
    },
  }),
];
