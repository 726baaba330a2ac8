/**
 * Policy as code for clean rooms: the collaboration a policy file asks for,
 * built from the stored one with the same checks the API makes, and what
 * changes between them.
 *
 * An apply may change only what the API could change, each checked as the API
 * checks it (a shared table by `checkShare`, a rule by `checkRule`, a custom
 * rule's templates by the rule checker, members by the life cycle), and every
 * refusal names its field (`cleanrooms.scope3.tables.purchase.rule.joinColumns[0]`).
 * What a file cannot express is kept: who accepted or left, a closed
 * collaboration, the budget spent, the query log (never touched here).
 * Widening that the API has no door for is refused: a member's principal
 * changing, a template's SQL changing after members approved it, differential
 * privacy turned off.
 *
 * Pure apart from `parse` (DuckDB's parser, for template SQL).
 */
import { StewardError, invalid, isStewardError } from '../errors.js';
import type { Json } from '../gateway/analyze.js';
import type { Evaluator } from '../policy/decision.js';
import type { PolicyWorld } from '../policy/model.js';
import { stableJson } from '../policy/changes.js';
import { checkRoomQuery } from './cleanroom-checker.js';
import * as life from './cleanroom-collaboration.js';
import { checkPrivacy } from './cleanroom-privacy.js';
import { checkRule } from './cleanroom-rules.js';
import { checkPrincipalExists, checkShare } from './cleanroom-share.js';
import { specOf, type CleanroomSpec } from './cleanroom-spec.js';
import type { AnalysisRule, Collaboration, ConfiguredTable, Member, QueryTemplate } from './cleanroom-types.js';

export interface ReconcileContext {
  /** The world the apply is about to commit, and its evaluator. */
  readonly world: PolicyWorld;
  readonly engine: Evaluator;
  /** DuckDB's statement tree of one SELECT (the gateway's parser); throws on anything else. */
  readonly parse: (sql: string) => Promise<Json>;
  readonly now: string;
}

/** One collaboration's plan line: created, changed (one entry per field), or closed because no file lists it any more. */
export interface RoomChange {
  readonly name: string;
  readonly action: 'create' | 'change' | 'close';
  readonly fields: readonly string[];
}

/**
 * Runs `fn`, prefixing the path of a refusal with `prefix` so it points into
 * the policy file (`aggregateColumns[0]` -> `cleanrooms.scope3.tables.purchase.rule.aggregateColumns[0]`).
 */
async function under<T>(prefix: string, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!isStewardError(e)) throw e;
    const first = e.details[0]?.path;
    if (first !== undefined && first.startsWith('cleanrooms.')) throw e;
    const path = first === undefined || first === '' ? prefix : `${prefix}.${first}`;
    const rest = first !== undefined && e.message.startsWith(`${first}: `) ? e.message.slice(first.length + 2) : e.message;
    throw new StewardError(e.code, `${path}: ${rest}`, { details: e.details.length === 0 ? [{ path, message: rest }] : e.details.map((d) => ({ ...d, path: d.path === undefined || d.path === '' ? prefix : `${prefix}.${d.path}` })) });
  }
}

const sameSet = (a: readonly string[], b: readonly string[]): boolean => a.length === b.length && a.every((x) => b.includes(x));

/**
 * The collaboration `spec` asks for, starting from `current` (undefined for a
 * new one), checked against the world being committed. Unchanged parts keep
 * their stored form (and timestamps), so a file that matches plans no change.
 */
export async function reconcileRoom(ctx: ReconcileContext, name: string, spec: CleanroomSpec, current: Collaboration | undefined): Promise<Collaboration> {
  const at = (field: string): string => `cleanrooms.${name}.${field}`;
  if (current?.status === 'closed') {
    if (stableJson(specOf(current)) !== stableJson(spec)) throw new StewardError('STEWARD_E_CONFLICT', `${at('status')}: collaboration \`${name}\` is closed: it changes no more`, { details: [{ path: `cleanrooms.${name}`, message: 'closed' }] });
    return current;
  }
  let doc = current === undefined ? await createRoom(ctx, name, spec) : await reconcileMembers(ctx, name, spec, { ...current, description: spec.description });
  doc = await reconcileTables(ctx, name, spec, doc);
  doc = await reconcileTemplates(ctx, name, spec, doc);
  await checkCustomRules(ctx, name, doc);
  if (spec.privacy === undefined && doc.privacy !== undefined) {
    throw invalid(at('privacy'), 'differential privacy cannot be turned off once on: every earlier answer was noised on that promise');
  }
  if (spec.privacy !== undefined) {
    const settings = spec.privacy;
    doc = { ...doc, privacy: await under(at('privacy'), () => checkPrivacy(doc, settings)) };
  }
  return current !== undefined && stableJson(current) === stableJson(doc) ? current : doc;
}

async function createRoom(ctx: ReconcileContext, name: string, spec: CleanroomSpec): Promise<Collaboration> {
  const at = (field: string): string => `cleanrooms.${name}.${field}`;
  const creator = spec.members[spec.creator];
  if (creator === undefined) throw invalid(at('creator'), `\`${spec.creator}\` is not one of the members`);
  const seen = new Map<string, string>();
  for (const [m, s] of Object.entries(spec.members)) {
    checkPrincipalExists(ctx.world, at(`members.${m}.principal`), s.principal);
    const other = seen.get(s.principal);
    if (other !== undefined) throw invalid(at(`members.${m}.principal`), `\`${s.principal}\` already acts for member \`${other}\``);
    seen.set(s.principal, m);
  }
  const others = Object.entries(spec.members).filter(([m]) => m !== spec.creator).map(([m, s]) => ({ name: m, ...s }));
  // As through the API: the creator is active at once, the others are invited and accept themselves.
  return under(`cleanrooms.${name}`, () => life.createCollaboration({ name, description: spec.description, creator: { name: spec.creator, ...creator }, members: others }, ctx.now));
}

async function reconcileMembers(ctx: ReconcileContext, name: string, spec: CleanroomSpec, start: Collaboration): Promise<Collaboration> {
  const at = (field: string): string => `cleanrooms.${name}.${field}`;
  if (spec.creator !== start.creator) throw invalid(at('creator'), `the creator is \`${start.creator}\` and cannot change`);
  let doc = start;
  for (const m of start.members) {
    // A member the files no longer list leaves, as if it had left itself (its tables and templates go with it).
    if (m.status !== 'left' && !Object.hasOwn(spec.members, m.name)) doc = await under(at(`members.${m.name}`), () => life.leave(doc, m, ctx.now));
  }
  for (const [m, s] of Object.entries(spec.members)) {
    const path = at(`members.${m}`);
    const was = doc.members.find((x) => x.name === m);
    if (was?.status === 'left') throw new StewardError('STEWARD_E_CONFLICT', `${path}: member \`${m}\` left the collaboration and never comes back under the same name`, { details: [{ path, message: 'left' }] });
    if (was === undefined) {
      checkPrincipalExists(ctx.world, `${path}.principal`, s.principal);
      doc = await under(path, () => life.invite(doc, { name: m, ...s }, ctx.now));
      continue;
    }
    // Another principal under the same name would be another organisation reading what this one was shown.
    if (was.principal !== s.principal) throw invalid(`${path}.principal`, `member \`${m}\` is \`${was.principal}\` and cannot become \`${s.principal}\`: add a member under a new name`);
    if (!sameSet(was.abilities, s.abilities)) {
      if (s.abilities.includes('query') && !s.abilities.includes('receive')) throw invalid(`${path}.abilities`, 'a member that may query must also receive results');
      const abilities = [...new Set(s.abilities)];
      doc = { ...doc, members: doc.members.map((x): Member => (x.name === m ? { ...x, abilities } : x)) };
    }
  }
  return doc;
}

async function reconcileTables(ctx: ReconcileContext, name: string, spec: CleanroomSpec, start: Collaboration): Promise<Collaboration> {
  const tables: ConfiguredTable[] = [];
  for (const [t, s] of Object.entries(spec.tables)) {
    const path = `cleanrooms.${name}.tables.${t}`;
    const owner = start.members.find((m) => m.name === s.member);
    if (owner === undefined) throw invalid(`${path}.member`, `\`${s.member}\` is not a member of \`${name}\``);
    if (owner.status !== 'active') throw new StewardError('STEWARD_E_FORBIDDEN', `${path}.member: member \`${s.member}\` is ${owner.status}: a member shares tables once it has accepted`, { details: [{ path: `${path}.member`, message: owner.status }] });
    const was = start.tables.find((x) => x.name === t);
    const unchanged = was !== undefined && was.member === s.member && was.table === s.table && stableJson(was.columns) === stableJson(s.columns);
    // A new or changed share is checked as the API's associate checks it, against the world being committed.
    const shared = unchanged ? { table: was.table, columns: [...was.columns] } : checkShare(ctx, owner, s, path);
    const base: ConfiguredTable = { name: t, member: s.member, ...shared };
    const rule = s.rule;
    tables.push(rule === undefined ? base : { ...base, rule: await under(`${path}.rule`, () => checkRule(base, rule)) });
  }
  return { ...start, tables: storedOrder(start.tables, tables) };
}

async function reconcileTemplates(ctx: ReconcileContext, name: string, spec: CleanroomSpec, start: Collaboration): Promise<Collaboration> {
  const templates: QueryTemplate[] = [];
  for (const [t, s] of Object.entries(spec.templates)) {
    const path = `cleanrooms.${name}.templates.${t}`;
    const was = start.templates.find((x) => x.name === t);
    if (was !== undefined) {
      // Listing a template in a custom rule approves that exact SQL: changing it would run unapproved SQL under the approval.
      if (was.sql !== s.sql || stableJson(was.parameters) !== stableJson(s.parameters) || was.author !== s.author) {
        throw new StewardError('STEWARD_E_CONFLICT', `${path}: template \`${t}\` was approved as written and never changes: add the new version under a new name`, { details: [{ path, message: 'immutable' }] });
      }
      templates.push(was);
      continue;
    }
    const author = start.members.find((m) => m.name === s.author);
    if (author?.status !== 'active') throw invalid(`${path}.author`, `\`${s.author}\` is not an active member of \`${name}\``);
    await under(`${path}.sql`, () => ctx.parse(s.sql));
    templates.push({ name: t, sql: s.sql, parameters: s.parameters, author: s.author, createdAt: ctx.now });
  }
  return { ...start, templates: storedOrder(start.templates, templates) };
}

/** Stored entries keep their place and new ones follow, so a file listing them in another order plans no change. */
function storedOrder<T extends { readonly name: string }>(stored: readonly T[], wanted: readonly T[]): T[] {
  const rank = (x: T): number => {
    const i = stored.findIndex((s) => s.name === x.name);
    return i === -1 ? stored.length : i;
  };
  return wanted.map((x, i) => ({ x, i })).sort((a, b) => rank(a.x) - rank(b.x) || a.i - b.i).map(({ x }) => x);
}

/** Every template a custom rule approves exists and passes the rule checker against the tables as they will be. */
async function checkCustomRules(ctx: ReconcileContext, name: string, doc: Collaboration): Promise<void> {
  const tables = new Map(doc.tables.map((t) => [t.name, t]));
  for (const t of doc.tables) {
    if (t.rule?.type !== 'custom') continue;
    for (const [i, template] of t.rule.templates.entries()) {
      const path = `cleanrooms.${name}.tables.${t.name}.rule.templates[${i}]`;
      const found = doc.templates.find((x) => x.name === template);
      if (found === undefined) throw invalid(path, `template \`${template}\` is not one of the collaboration's templates`);
      await under(path, async () => checkRoomQuery({ statement: await ctx.parse(found.sql), tables, template }));
    }
  }
}

/** What makes the stored collaborations (`current`) the `wanted` ones; a stored one no file lists is closed (its log is kept). */
export function roomChanges(current: readonly Collaboration[], wanted: ReadonlyMap<string, Collaboration>): RoomChange[] {
  const out: RoomChange[] = [];
  for (const [name, w] of [...wanted].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const was = current.find((c) => c.name === name);
    if (was === undefined) out.push({ name, action: 'create', fields: describeNew(w) });
    else if (stableJson(was) !== stableJson(w)) out.push({ name, action: 'change', fields: fieldChanges(was, w) });
  }
  for (const c of current) if (c.status === 'active' && !wanted.has(c.name)) out.push({ name: c.name, action: 'close', fields: ['closed; its query log is kept'] });
  return out;
}

function describeNew(c: Collaboration): string[] {
  return [
    `members ${c.members.map((m) => `${m.name}=${m.principal}${m.status === 'invited' ? ' (invited)' : ''}`).join(', ')}`,
    ...c.tables.map((t) => `table ${t.name} = ${t.table} (${t.columns.join(', ')}), ${t.rule?.type ?? 'no'} rule`),
    ...c.templates.map((t) => `template ${t.name}`),
    ...(c.privacy === undefined ? [] : [`privacy budget ${c.privacy.budget}, epsilon ${c.privacy.epsilonPerQuery} per query`]),
  ];
}

/** One readable entry per member, table, template or setting that differs. */
function fieldChanges(before: Collaboration, after: Collaboration): string[] {
  const out: string[] = [];
  if (before.description !== after.description) out.push(`description ${JSON.stringify(before.description)} -> ${JSON.stringify(after.description)}`);
  for (const m of after.members) {
    const b = before.members.find((x) => x.name === m.name);
    if (b === undefined) out.push(`+member ${m.name}=${m.principal} (invited)`);
    else if (b.status !== m.status) out.push(`-member ${m.name} (leaves; its tables and templates go with it)`);
    else if (!sameSet(b.abilities, m.abilities)) out.push(`~member ${m.name} abilities ${b.abilities.join(',') || '(none)'} -> ${m.abilities.join(',') || '(none)'}`);
  }
  for (const t of after.tables) {
    const b = before.tables.find((x) => x.name === t.name);
    if (b === undefined) out.push(`+table ${t.name} = ${t.table} (${t.columns.join(', ')}), ${t.rule?.type ?? 'no'} rule`);
    else {
      if (b.table !== t.table || b.member !== t.member) out.push(`~table ${t.name} = ${t.member}:${t.table}`);
      if (stableJson(b.columns) !== stableJson(t.columns)) out.push(`~table ${t.name} columns ${listDiff(b.columns, t.columns)}`);
      if (stableJson(b.rule) !== stableJson(t.rule)) out.push(`~table ${t.name} rule ${ruleDiff(b.rule, t.rule)}`);
    }
  }
  for (const t of before.tables) if (!after.tables.some((x) => x.name === t.name)) out.push(`-table ${t.name}`);
  for (const t of after.templates) if (!before.templates.some((x) => x.name === t.name)) out.push(`+template ${t.name}`);
  for (const t of before.templates) if (!after.templates.some((x) => x.name === t.name)) out.push(`-template ${t.name}`);
  if (stableJson(before.privacy) !== stableJson(after.privacy)) out.push(`~privacy budget ${before.privacy?.budget ?? '(off)'} -> ${after.privacy?.budget}, epsilon ${before.privacy?.epsilonPerQuery ?? '(off)'} -> ${after.privacy?.epsilonPerQuery}`);
  return out;
}

/** `outputConstraints [{"column":"ingredient","minimum":2}] -> [...]`, one part per rule field that differs. */
function ruleDiff(before: AnalysisRule | undefined, after: AnalysisRule | undefined): string {
  if (before === undefined || after === undefined || before.type !== after.type) return `${before?.type ?? '(none)'} -> ${after?.type ?? '(none)'}`;
  const b = before as unknown as Record<string, unknown>;
  const a = after as unknown as Record<string, unknown>;
  const fields = [...new Set([...Object.keys(b), ...Object.keys(a)])].filter((k) => stableJson(b[k]) !== stableJson(a[k]));
  return fields.map((k) => `${k} ${stableJson(b[k]) ?? '(none)'} -> ${stableJson(a[k]) ?? '(none)'}`).join(', ');
}

function listDiff(before: readonly string[], after: readonly string[]): string {
  const parts = [...after.filter((c) => !before.includes(c)).map((c) => `+${c}`), ...before.filter((c) => !after.includes(c)).map((c) => `-${c}`)];
  return parts.length === 0 ? 'reordered' : parts.join(' ');
}

/** The plan's text lines for clean rooms, like the policy's: `+ cleanroom scope3: …`, `~ cleanroom scope3: +table purchase …`. */
export function renderRoomChanges(changes: readonly RoomChange[]): string[] {
  const sign = { create: '+', change: '~', close: '-' } as const;
  return changes.map((c) => `${sign[c.action]} cleanroom ${c.name}: ${c.fields.join('; ')}`);
}
