/**
 * Clean rooms as a service: who may change a collaboration, associating
 * tables, and running queries (parse → check the rules → plan → run in the
 * gateway's sandbox → remove the rows that fail an output constraint → log).
 *
 * Every change and every query is written to the decision log (so it reaches
 * the security lake as an OCSF event), and every query to the collaboration's
 * own query log, which all its members can read.
 */
import type { Db } from '../store/db.js';
import { StewardError, isStewardError, notFound } from '../errors.js';
import type { Gateway, ParamValue } from '../gateway/types.js';
import { checkText, parseQuery } from '../gateway/parse.js';
import { createPrinter } from '../gateway/rewrite.js';
import type { PlainValue } from '../lake/duckdb.js';
import type { PolicyWorld, PrincipalRef } from '../policy/model.js';
import { evaluatorFor } from '../experiments/experiment-evaluator.js';
import { membershipGraph, principalSet } from '../policy/principals.js';
import { checkPrincipalExists, checkShare } from './cleanroom-share.js';
import type { StateService, Snapshot } from '../workspace/state-service.js';
import type { DecisionLogEntry } from '../store/decision-log.js';
import { checkRoomQuery, type RoomTable } from './cleanroom-checker.js';
import * as life from './cleanroom-collaboration.js';
import { planRoomQuery } from './cleanroom-plan.js';
import { checkRule, type RuleInput } from './cleanroom-rules.js';
import { applyPrivacy, checkPrivacy, remaining, spend, type NoisedColumn } from './cleanroom-privacy.js';
import { runRoomPlan } from './cleanroom-run.js';
import { appendQueryLog, insertRoom, listRooms, loadRoom, loadRooms, readQueryLog, saveRoom, type Versioned } from './cleanroom-store.js';
import { reconcileRoom, roomChanges, type RoomChange } from './cleanroom-reconcile.js';
import { specOf, type CleanroomSpec, type StoredCleanroomSpec } from './cleanroom-spec.js';
import type { Clamp, Collaboration, Member, QueryTemplate, RoomQueryLogEntry, TemplateParameter } from './cleanroom-types.js';

export interface RoomActor {
  readonly principal: PrincipalRef;
  readonly admin: boolean;
  /** For the logs: `user:alice`, with `impersonatedBy` when an admin acts as someone. */
  readonly name: string;
}

export interface RoomQuery {
  readonly sql?: string;
  readonly template?: string;
  readonly params?: Readonly<Record<string, ParamValue>>;
}

export interface RoomResult {
  readonly columns: readonly { name: string; type: string }[];
  readonly rows: readonly PlainValue[][];
  readonly rowCount: number;
  /** Output rows removed because they failed an output constraint (their values are never returned). */
  readonly removed: number;
  readonly rules: readonly string[];
  readonly truncated: boolean;
  /** With differential privacy on: what this query spent and what the member has left. */
  readonly privacy?: { readonly spent: number; readonly remaining: number; readonly budget: number };
}

export interface CleanroomService {
  create(actor: RoomActor, input: { name: string; description: string; creator: life.MemberInput; members: readonly life.MemberInput[] }): Promise<Collaboration>;
  list(actor: RoomActor): Promise<Collaboration[]>;
  get(actor: RoomActor, name: string): Promise<Collaboration>;
  invite(actor: RoomActor, name: string, member: life.MemberInput): Promise<Collaboration>;
  accept(actor: RoomActor, name: string): Promise<Collaboration>;
  leave(actor: RoomActor, name: string): Promise<Collaboration>;
  close(actor: RoomActor, name: string): Promise<Collaboration>;
  associate(actor: RoomActor, name: string, input: { name: string; table: string; columns: readonly string[] }): Promise<Collaboration>;
  setRule(actor: RoomActor, name: string, table: string, rule: RuleInput): Promise<Collaboration>;
  addTemplate(actor: RoomActor, name: string, input: { name: string; sql: string; parameters: readonly TemplateParameter[] }): Promise<Collaboration>;
  setPrivacy(actor: RoomActor, name: string, settings: { budget: number; epsilonPerQuery: number; clamps: readonly Clamp[] }): Promise<Collaboration>;
  query(actor: RoomActor, name: string, q: RoomQuery): Promise<RoomResult>;
  log(actor: RoomActor, name: string, limit: number): Promise<RoomQueryLogEntry[]>;
  /** Policy as code: what making the collaborations exactly `specs` would change, checked against `world` (the one an apply is about to commit). */
  planCode(world: PolicyWorld, specs: Readonly<Record<string, CleanroomSpec>>): Promise<RoomChange[]>;
  /**
   * The same, written inside `tx`, the policy apply's own transaction, so collaborations and grants commit
   * together or not at all; the changes made and their decision-log entries. A collaboration a member changed
   * since it was read is STEWARD_E_CONFLICT, and the apply starts again.
   */
  applyCode(tx: Db, world: PolicyWorld, specs: Readonly<Record<string, CleanroomSpec>>, actor: string): Promise<{ changes: RoomChange[]; log: DecisionLogEntry[] }>;
  /** Every collaboration that is not closed, as a policy file writes it (export). */
  exportCode(): Promise<Record<string, StoredCleanroomSpec>>;
}

const MAX_SQL = 100_000;
const CAS_RETRIES = 5;

export function createCleanroomService(deps: { readonly db: Db; readonly state: Pick<StateService, 'snapshot' | 'log'>; readonly gateway: Gateway }): CleanroomService {
  const { db, state, gateway } = deps;
  const print = createPrinter(gateway.parser);
  const now = (): string => new Date().toISOString();

  const principalsOf = (snap: Snapshot, p: PrincipalRef): Set<PrincipalRef> => principalSet(membershipGraph(snap.world), p);

  /** The collaboration, or not-found for anyone who is not (or no longer) in it; admins see every one. */
  const visible = async (actor: RoomActor, name: string): Promise<{ doc: Collaboration; version: number; member: Member | undefined; snap: Snapshot }> => {
    const snap = await state.snapshot();
    const found = await loadRoom(db, name);
    if (found === null) throw notFound('collaboration', name);
    const member = life.actingMember(found.doc, principalsOf(snap, actor.principal));
    if (member === undefined && !actor.admin) throw notFound('collaboration', name);
    return { ...found, member, snap };
  };

  const requireMember = (c: Collaboration, m: Member | undefined, status: Member['status'] = 'active'): Member => {
    if (m === undefined) throw new StewardError('STEWARD_E_FORBIDDEN', `you act for no member of \`${c.name}\``);
    if (m.status !== status) throw new StewardError('STEWARD_E_FORBIDDEN', `member \`${m.name}\` is ${m.status}${status === 'active' ? ': accept the invitation first' : ''}`);
    return m;
  };

  const audit = async (actor: RoomActor, action: string, room: string, result: DecisionLogEntry['result'], reason: string, details: Record<string, unknown>): Promise<void> => {
    await state.log([{ actor: actor.name, action: `cleanroom.${action}`, resource: `cleanroom:${room}`, result, reason, details }]);
  };

  /** Read, change, write back if nobody wrote in between (retried), then log. */
  const change = async (actor: RoomActor, name: string, action: string, fn: (v: { doc: Collaboration; member: Member | undefined; snap: Snapshot }) => Collaboration, details: Record<string, unknown> = {}): Promise<Collaboration> => {
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const v = await visible(actor, name);
      const next = fn(v);
      if (await saveRoom(db, next, v.version)) {
        await audit(actor, action, name, 'allow', `${action} ${name}`, { ...details, ...(v.member === undefined ? {} : { member: v.member.name }) });
        return next;
      }
    }
    throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${name}\` changed while this change was made: try again`);
  };

  const roomTables = (c: Collaboration): Map<string, RoomTable> => new Map(c.tables.map((t) => [t.name, t]));

  const runQuery = async (c: Collaboration, member: Member, actor: RoomActor, snap: Snapshot, q: RoomQuery): Promise<RoomResult & { sql: string }> => {
    const template = q.template === undefined ? undefined : c.templates.find((t) => t.name === q.template);
    if (q.template !== undefined && template === undefined) throw notFound('template', q.template);
    const sql = template?.sql ?? q.sql ?? '';
    checkText(sql, MAX_SQL);
    const params = template === undefined ? {} : templateParams(template, q.params ?? {});
    if (template === undefined && q.params !== undefined && Object.keys(q.params).length > 0) throw new StewardError('STEWARD_E_VALIDATION', 'params: only templates take parameters');
    const statement = await parseQuery(gateway.parser, sql, sql);
    const checked = checkRoomQuery({ statement, tables: roomTables(c), ...(template === undefined ? {} : { template: template.name }) });
    // Differential privacy: clamp and choose the noise first (a refusal spends nothing), then spend, then run.
    let noise: NoisedColumn[] = [];
    let budget: RoomResult['privacy'];
    if (c.privacy !== undefined) {
      noise = await applyPrivacy(gateway.parser, statement, checked, c.privacy);
      const after = await spendBudget(actor, c.name, member.name);
      budget = { spent: after.epsilonPerQuery, remaining: remaining(after, member.name), budget: after.budget };
    }
    const planned = await planRoomQuery({
      parser: gateway.parser,
      print,
      snapshot: snap,
      principal: actor.principal,
      statement,
      checked,
      catalogTables: new Map(c.tables.map((t) => [t.name, t.table])),
      params,
    });
    const out = await runRoomPlan(gateway, { principal: actor.principal, actor: actor.name, sql }, planned, noise);
    return { sql, ...out, rowCount: out.rows.length, rules: checked.rules, ...(budget === undefined ? {} : { privacy: budget }) };
  };

  /** Spends one query's epsilon from the member's budget (compare-and-set, retried); the settings after. */
  const spendBudget = async (actor: RoomActor, name: string, member: string): Promise<NonNullable<Collaboration['privacy']>> => {
    for (let attempt = 0; attempt < CAS_RETRIES; attempt++) {
      const found = await loadRoom(db, name);
      if (found === null) throw notFound('collaboration', name);
      const next = spend(found.doc, member);
      if (await saveRoom(db, next, found.version)) {
        if (next.privacy === undefined) throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${name}\` turned differential privacy off while the query started: run it again`);
        return next.privacy;
      }
    }
    throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${name}\` changed while the query started: run it again`);
  };

  /** The collaborations `specs` asks for, reconciled with the stored ones, and the changes. */
  const reconcileAll = async (world: PolicyWorld, specs: Readonly<Record<string, CleanroomSpec>>, q: Db = db): Promise<{ stored: Versioned[]; wanted: Map<string, Collaboration>; changes: RoomChange[] }> => {
    const stored = await loadRooms(q);
    // The evaluator of the world being committed, as the state service builds it, so a share is checked against the grants it will have.
    const ctx = { world, engine: evaluatorFor(world), parse: (sql: string) => parseQuery(gateway.parser, sql, sql), now: now() };
    const wanted = new Map<string, Collaboration>();
    for (const [name, spec] of Object.entries(specs)) wanted.set(name, await reconcileRoom(ctx, name, spec, stored.find((s) => s.doc.name === name)?.doc));
    return { stored, wanted, changes: roomChanges(stored.map((s) => s.doc), wanted) };
  };

  return {
    async planCode(world, specs) {
      return (await reconcileAll(world, specs)).changes;
    },

    async applyCode(tx, world, specs, actor) {
      const { stored, wanted, changes } = await reconcileAll(world, specs, tx);
      for (const c of changes) {
        const was = stored.find((s) => s.doc.name === c.name);
        const next = c.action === 'close' && was !== undefined ? life.close(was.doc, now()) : (wanted.get(c.name) as Collaboration);
        // Compare-and-set on each document: a member's change in between re-runs the whole apply, and nothing is half-written.
        const ok = was === undefined ? await insertRoom(tx, next) : await saveRoom(tx, next, was.version);
        if (!ok) throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${c.name}\` changed while the policy was applied`);
      }
      const log = changes.map((c) => ({ actor, action: `cleanroom.policy.${c.action}`, resource: `cleanroom:${c.name}`, result: 'allow' as const, reason: `${c.action} by policy apply`, details: { fields: [...c.fields] } }));
      return { changes, log };
    },

    async exportCode() {
      return Object.fromEntries((await listRooms(db)).filter((c) => c.status === 'active').map((c) => [c.name, specOf(c)]));
    },

    async create(actor, input) {
      const snap = await state.snapshot();
      checkPrincipalExists(snap.world, 'creator.principal', input.creator.principal);
      input.members.forEach((m, i) => checkPrincipalExists(snap.world, `members[${i}].principal`, m.principal));
      // The creator must be the caller's own organisation: nobody opens a collaboration in another's name.
      if (!principalsOf(snap, actor.principal).has(input.creator.principal)) {
        throw new StewardError('STEWARD_E_FORBIDDEN', `creator.principal: you do not act for \`${input.creator.principal}\``, { details: [{ path: 'creator.principal', message: 'not yours' }] });
      }
      const doc = life.createCollaboration(input, now());
      if (!(await insertRoom(db, doc))) throw new StewardError('STEWARD_E_ALREADY_EXISTS', `collaboration \`${input.name}\` already exists`);
      await audit(actor, 'create', doc.name, 'allow', `create ${doc.name}`, { members: doc.members.map((m) => `${m.name}=${m.principal}`) });
      return doc;
    },

    async list(actor) {
      const snap = await state.snapshot();
      const mine = principalsOf(snap, actor.principal);
      const all = await listRooms(db);
      return actor.admin ? all : all.filter((c) => c.members.some((m) => m.status !== 'left' && mine.has(m.principal)));
    },

    async get(actor, name) {
      return (await visible(actor, name)).doc;
    },

    invite: (actor, name, m) =>
      change(actor, name, 'invite', ({ doc, member, snap }) => {
        const me = requireMember(doc, member);
        if (me.name !== doc.creator) throw new StewardError('STEWARD_E_FORBIDDEN', `only the creator \`${doc.creator}\` invites members`);
        checkPrincipalExists(snap.world, 'principal', m.principal);
        return life.invite(doc, m, now());
      }, { invited: m.name }),

    accept: (actor, name) => change(actor, name, 'accept', ({ doc, member }) => life.accept(doc, requireMember(doc, member, 'invited'), now())),

    leave: (actor, name) => change(actor, name, 'leave', ({ doc, member }) => life.leave(doc, requireMember(doc, member), now())),

    close: (actor, name) =>
      change(actor, name, 'close', ({ doc, member }) => {
        if (!actor.admin && requireMember(doc, member).name !== doc.creator) throw new StewardError('STEWARD_E_FORBIDDEN', `only the creator \`${doc.creator}\` (or an admin) closes the collaboration`);
        return life.close(doc, now());
      }),

    associate: (actor, name, input) =>
      change(actor, name, 'associate', ({ doc, member, snap }) => {
        const me = requireMember(doc, member);
        const shared = checkShare(snap, me, input);
        return life.associate(doc, { name: input.name, member: me.name, ...shared });
      }, { table: input.name, catalogTable: input.table, columns: input.columns }),

    setRule: (actor, name, table, rule) =>
      change(actor, name, 'rule.set', ({ doc, member }) => {
        const me = requireMember(doc, member);
        const t = doc.tables.find((x) => x.name === table);
        if (t === undefined) throw notFound('configured table', table);
        if (t.member !== me.name) throw new StewardError('STEWARD_E_FORBIDDEN', `table \`${table}\` belongs to member \`${t.member}\`: only its owner sets its rule`);
        return life.setRule(doc, table, checkRule(t, rule));
      }, { table, rule: rule.type }),

    addTemplate: async (actor, name, input) => {
      // Parsed now so a template that is not one SELECT never gets stored; its rules are checked each time it runs.
      checkText(input.sql, MAX_SQL);
      await parseQuery(gateway.parser, input.sql, input.sql).catch((e: unknown) => {
        throw isStewardError(e) ? new StewardError(e.code, `sql: ${e.message}`, { details: e.details }) : e;
      });
      return change(actor, name, 'template.create', ({ doc, member }) => {
        const me = requireMember(doc, member);
        const t: QueryTemplate = { name: input.name, sql: input.sql, parameters: input.parameters, author: me.name, createdAt: now() };
        return life.addTemplate(doc, t);
      }, { template: input.name });
    },

    setPrivacy: (actor, name, settings) =>
      change(actor, name, 'privacy.set', ({ doc, member }) => {
        if (requireMember(doc, member).name !== doc.creator) throw new StewardError('STEWARD_E_FORBIDDEN', `only the creator \`${doc.creator}\` sets the privacy budget`);
        if (doc.status === 'closed') throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${name}\` is closed`);
        return { ...doc, privacy: checkPrivacy(doc, settings) };
      }, { budget: settings.budget, epsilonPerQuery: settings.epsilonPerQuery }),

    async query(actor, name, q) {
      const found = await visible(actor, name).catch(async (e: unknown) => {
        // Not a member (or no such collaboration): nothing for the members' log, but the security lake sees the attempt.
        await audit(actor, 'query', name, 'deny', e instanceof Error ? e.message : String(e), { sql: (q.sql ?? '').slice(0, 4000), ...(q.template === undefined ? {} : { template: q.template }) });
        throw e;
      });
      const { doc, member, snap } = found;
      const started = { member: member?.name ?? '-', runner: actor.name, sql: q.sql ?? '', ...(q.template === undefined ? {} : { template: q.template }) };
      const record = async (outcome: RoomQueryLogEntry['outcome'], rules: readonly string[], rows: number, removed: number, message: string, sql: string): Promise<void> => {
        await appendQueryLog(db, name, { ...started, sql, outcome, rules: [...rules], rows, removed, message });
        await audit(actor, 'query', name, outcome === 'allowed' ? 'allow' : outcome === 'refused' ? 'deny' : 'error', message, { ...started, sql: sql.slice(0, 4000), rules, rows, removed });
      };
      try {
        if (doc.status === 'closed') throw new StewardError('STEWARD_E_CONFLICT', `collaboration \`${name}\` is closed`);
        const me = requireMember(doc, member);
        if (!me.abilities.includes('query')) throw new StewardError('STEWARD_E_FORBIDDEN', `member \`${me.name}\` may not run queries in \`${name}\` (its abilities: ${me.abilities.join(', ') || 'none'})`);
        const r = await runQuery(doc, me, actor, snap, q);
        await record('allowed', r.rules, r.rowCount, r.removed, `${r.rowCount} row(s)${r.removed > 0 ? `, ${r.removed} removed by output constraints` : ''}`, r.sql);
        const { sql: _sql, ...result } = r;
        return result;
      } catch (e) {
        const refused = isStewardError(e) && ['STEWARD_E_FORBIDDEN', 'STEWARD_E_NOT_FOUND'].includes(e.code);
        const sql = q.template === undefined ? (q.sql ?? '') : (doc.templates.find((t) => t.name === q.template)?.sql ?? '');
        await record(refused ? 'refused' : 'failed', [], 0, 0, e instanceof Error ? e.message : String(e), sql);
        throw e;
      }
    },

    async log(actor, name, limit) {
      const { doc, member } = await visible(actor, name);
      if (!actor.admin) requireMember(doc, member);
      return readQueryLog(db, name, limit);
    },
  };
}

/** The template's parameters, typed as declared; unknown or missing ones refused. They are bound, never printed into SQL. */
function templateParams(t: QueryTemplate, given: Readonly<Record<string, ParamValue>>): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const k of Object.keys(given)) {
    if (!t.parameters.some((p) => p.name === k)) throw new StewardError('STEWARD_E_VALIDATION', `params.${k}: template \`${t.name}\` has no parameter \`${k}\``, { details: [{ path: `params.${k}`, message: 'unknown' }] });
  }
  for (const p of t.parameters) {
    const v = Object.hasOwn(given, p.name) ? given[p.name] : undefined;
    if (v === undefined) throw new StewardError('STEWARD_E_VALIDATION', `params.${p.name}: missing`, { details: [{ path: `params.${p.name}`, message: 'missing' }] });
    if (typeof v !== p.type) throw new StewardError('STEWARD_E_VALIDATION', `params.${p.name}: must be a ${p.type}`, { details: [{ path: `params.${p.name}`, message: `not a ${p.type}` }] });
    out[p.name] = v;
  }
  return out;
}
