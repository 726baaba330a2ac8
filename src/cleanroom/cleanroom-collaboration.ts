/**
 * The life cycle of a collaboration, as pure functions over its document:
 * create (the creator is active at once, the others invited), invite, accept,
 * leave (the member's tables leave with it), close; associate a table, set
 * its rule, add a template. Each returns the new document or throws the
 * refusal; who may call which is decided by the caller (`cleanroom-service.ts`)
 * with `actingMember`.
 */
import { StewardError, invalid } from '../errors.js';
import type { PrincipalRef } from '../policy/model.js';
import type { AnalysisRule, Collaboration, ConfiguredTable, Member, MemberAbility, QueryTemplate } from './cleanroom-types.js';

export interface MemberInput {
  readonly name: string;
  readonly principal: PrincipalRef;
  readonly abilities: readonly MemberAbility[];
}

function checkAbilities(path: string, m: MemberInput): void {
  // Results go to whoever runs the query: a member that may query must be one that may receive.
  if (m.abilities.includes('query') && !m.abilities.includes('receive')) throw invalid(`${path}.abilities`, 'a member that may query must also receive results');
}

export function createCollaboration(input: { name: string; description: string; creator: MemberInput; members: readonly MemberInput[] }, now: string): Collaboration {
  const all = [input.creator, ...input.members];
  all.forEach((m, i) => checkAbilities(i === 0 ? 'creator' : `members[${i - 1}]`, m));
  for (const [i, m] of all.entries()) {
    if (all.findIndex((x) => x.name === m.name) !== i) throw invalid(`members[${i - 1}].name`, `member \`${m.name}\` is named twice`);
    if (all.findIndex((x) => x.principal === m.principal) !== i) throw invalid(`members[${i - 1}].principal`, `\`${m.principal}\` already acts for another member`);
  }
  const members: Member[] = all.map((m, i) => ({ ...m, abilities: [...new Set(m.abilities)], status: i === 0 ? 'active' : 'invited', invitedAt: now, ...(i === 0 ? { joinedAt: now } : {}) }));
  return { name: input.name, description: input.description, status: 'active', creator: input.creator.name, members, tables: [], templates: [], createdAt: now };
}

function open(c: Collaboration): void {
  if (c.status === 'closed') throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${c.name}\` is closed`);
}

function replaceMember(c: Collaboration, name: string, change: (m: Member) => Member): Collaboration {
  return { ...c, members: c.members.map((m) => (m.name === name ? change(m) : m)) };
}

export function invite(c: Collaboration, m: MemberInput, now: string): Collaboration {
  open(c);
  checkAbilities('member', m);
  if (c.members.some((x) => x.name === m.name)) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `member \`${m.name}\` is already in collaboration \`${c.name}\``);
  if (c.members.some((x) => x.principal === m.principal && x.status !== 'left')) throw invalid('principal', `\`${m.principal}\` already acts for another member`);
  return { ...c, members: [...c.members, { ...m, abilities: [...new Set(m.abilities)], status: 'invited', invitedAt: now }] };
}

export function accept(c: Collaboration, member: Member, now: string): Collaboration {
  open(c);
  if (member.status !== 'invited') throw new StewardError('STEWARD_E_CONFLICT', `member \`${member.name}\` is ${member.status}, not invited`);
  return replaceMember(c, member.name, (m) => ({ ...m, status: 'active', joinedAt: now }));
}

/** The member leaves and takes its configured tables (and the templates it wrote) with it. */
export function leave(c: Collaboration, member: Member, now: string): Collaboration {
  open(c);
  if (member.name === c.creator) throw new StewardError('STEWARD_E_CONFLICT', `the creator \`${member.name}\` cannot leave: close the collaboration instead`);
  if (member.status === 'left') throw new StewardError('STEWARD_E_CONFLICT', `member \`${member.name}\` already left`);
  const left = replaceMember(c, member.name, (m) => ({ ...m, status: 'left', leftAt: now }));
  return { ...left, tables: c.tables.filter((t) => t.member !== member.name), templates: c.templates.filter((t) => t.author !== member.name) };
}

export function close(c: Collaboration, now: string): Collaboration {
  open(c);
  return { ...c, status: 'closed', closedAt: now };
}

export function associate(c: Collaboration, table: ConfiguredTable): Collaboration {
  open(c);
  if (c.tables.some((t) => t.name === table.name)) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `collaboration \`${c.name}\` already has a table \`${table.name}\``);
  return { ...c, tables: [...c.tables, table] };
}

export function setRule(c: Collaboration, table: string, rule: AnalysisRule): Collaboration {
  open(c);
  return { ...c, tables: c.tables.map((t) => (t.name === table ? { ...t, rule } : t)) };
}

export function addTemplate(c: Collaboration, t: QueryTemplate): Collaboration {
  open(c);
  if (c.templates.some((x) => x.name === t.name)) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `collaboration \`${c.name}\` already has a template \`${t.name}\``);
  return { ...c, templates: [...c.templates, t] };
}

/**
 * The member a caller acts for: the one (not left) whose principal is in the
 * caller's principal set. A caller that could act for two members is refused:
 * one organisation must not read as another.
 */
export function actingMember(c: Collaboration, principals: ReadonlySet<PrincipalRef>): Member | undefined {
  const mine = c.members.filter((m) => m.status !== 'left' && principals.has(m.principal));
  if (mine.length > 1) throw new StewardError('STEWARD_E_FORBIDDEN', `you act for more than one member of \`${c.name}\` (${mine.map((m) => `\`${m.name}\``).join(', ')}): one principal must act for one organisation`);
  return mine[0];
}
