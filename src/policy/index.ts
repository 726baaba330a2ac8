/**
 * The public API of the policy core: the model, predicates, decisions, change
 * sets, and the pipeline parse (tag expressions) → validate → index (engine) →
 * decide. Everything here is pure and imports nothing outside src/.
 */
export * from './model.js';
export * from './predicate.js';
export type * from './decision.js';
export * from './changes.js';
export type { EffectiveTag, EffectiveTags } from './tags.js';
export { ancestorsOf, effectiveTags, ownTags, taggableChain, tagValues } from './tags.js';
export {
  formatTagExpression,
  isAtLeastAsNarrow,
  isEmptyExpression,
  matchesTagExpression,
  MAX_TAG_EXPRESSION_LENGTH,
  parseTagExpression,
  TagExpressionError,
} from './tag-expression.js';
export type { MembershipGraph, PrincipalParts } from './principals.js';
export { findGroupCycle, membershipGraph, principalExists, principalSet, splitPrincipal, usersInGroup, usersOf } from './principals.js';
export type { ValidationIssue } from './validate.js';
export { assertValidWorld, validateWorld } from './validate.js';
export { createReferenceEvaluator } from './reference-evaluator.js';
export type { CatalogTables } from './engine/catalog-tables.js';
export { catalogTables } from './engine/catalog-tables.js';
export type { Engine, EngineStats } from './engine.js';
export { createEngine } from './engine.js';
export type { GrantOptionResult } from './grant-option.js';
export { checkGrantOption, containsGrantResource, describeGrantResource } from './grant-option.js';
