/**
 * A small claims world and an access service over it, with a clock the test
 * controls. Used by the access integration tests.
 */
import { openPglite, openPostgres, type Db } from '../../src/store/db.js';
import { migrate } from '../../src/store/migrations.js';
import { createStateStore } from '../../src/store/state-store.js';
import { createDecisionLog } from '../../src/store/decision-log.js';
import { createStateService, type StateService } from '../../src/workspace/state-service.js';
import { createAccessService, type AccessActor, type AccessService, type AccessServiceOptions } from '../../src/access/access-service.js';
import type { Change } from '../../src/policy/changes.js';
import type { PrincipalRef, Table } from '../../src/policy/model.js';
import type { Deliverer } from '../../src/access/notify.js';

export const T0 = Date.UTC(2030, 0, 1, 9, 0, 0);

export interface Clock {
  now(): number;
  set(ms: number): void;
  advance(ms: number): void;
}

export function createClock(start = T0): Clock {
  let t = start;
  return { now: () => t, set: (ms) => (t = ms), advance: (ms) => (t += ms) };
}

const CLAIMS: Table = {
  catalog: 'lake',
  database: 'claims',
  name: 'patient_claims',
  columns: ['claim_id', 'patient_name', 'ssn', 'hospital', 'amount'].map((name, ordinal) => ({ name, type: 'VARCHAR', ordinal })),
  source: { kind: 'virtual' },
};
const PAYMENTS: Table = { ...CLAIMS, name: 'payments', columns: [{ name: 'id', type: 'INTEGER', ordinal: 0 }, { name: 'amount', type: 'DECIMAL(12,2)', ordinal: 1 }] };
const REVENUE: Table = { ...PAYMENTS, database: 'finance', name: 'revenue' };

/** Users: alice, amy (analysts); carol, craig (privacy-officers); dana (auditors); bob (finance); erin (nothing). */
export function seedChanges(): Change[] {
  const users = ['alice', 'amy', 'carol', 'craig', 'dana', 'bob', 'erin'];
  const member = (group: string, user: string): Change => ({ op: 'put', kind: 'membership', entity: { group, member: `user:${user}` } });
  return [
    { op: 'put', kind: 'catalog', entity: { name: 'lake' } },
    { op: 'put', kind: 'database', entity: { catalog: 'lake', name: 'claims' } },
    { op: 'put', kind: 'database', entity: { catalog: 'lake', name: 'finance' } },
    { op: 'put', kind: 'table', entity: CLAIMS },
    { op: 'put', kind: 'table', entity: PAYMENTS },
    { op: 'put', kind: 'table', entity: REVENUE },
    ...users.map((name): Change => ({ op: 'put', kind: 'user', entity: { name } })),
    ...['analysts', 'privacy-officers', 'auditors', 'finance', 'empty-approvers'].map((name): Change => ({ op: 'put', kind: 'group', entity: { name } })),
    member('analysts', 'alice'),
    member('analysts', 'amy'),
    member('privacy-officers', 'carol'),
    member('privacy-officers', 'craig'),
    member('auditors', 'dana'),
    member('finance', 'bob'),
    { op: 'put', kind: 'tagKey', entity: { key: 'pii', values: ['true', 'false'] } },
    { op: 'put', kind: 'tagAssignment', entity: { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'patient_claims', column: 'ssn' }, key: 'pii', value: 'true' } },
    {
      op: 'put',
      kind: 'tagAssignment',
      entity: { resource: { level: 'column', catalog: 'lake', database: 'claims', table: 'patient_claims', column: 'patient_name' }, key: 'pii', value: 'true' },
    },
    {
      op: 'put',
      kind: 'guardrail',
      entity: { name: 'pii-requires-privacy-officer', except: ['group:privacy-officers'], actions: ['SELECT'], catalog: 'lake', resources: { pii: ['true'] }, liftable: true },
    },
    {
      op: 'put',
      kind: 'grant',
      entity: { id: 'analysts-read-claims', principal: 'group:analysts', resource: { kind: 'table', catalog: 'lake', database: 'claims', table: 'patient_claims' }, permissions: ['DESCRIBE', 'SELECT'], grantable: [] },
    },
  ];
}

export const ACCESS_DOC = {
  permissionSets: {
    read: { permissions: ['DESCRIBE', 'SELECT'] },
    'read-with-pii': { permissions: ['DESCRIBE', 'SELECT'], liftGuardrails: ['pii-requires-privacy-officer'] },
    write: { permissions: ['INSERT', 'DELETE'] },
  },
  eligibility: {
    'analysts-claims': { principal: 'group:analysts', scope: { databases: ['lake.claims'] }, permissionSets: ['read', 'read-with-pii', 'write'], maxDuration: '8h', approvalRequired: true },
    'analysts-claims-strict-write': { principal: 'group:analysts', scope: { tables: ['lake.claims.payments'] }, permissionSets: ['write'], maxDuration: '1h', approvalRequired: true, ticketRequired: true },
    'finance-self-service': { principal: 'group:finance', scope: { databases: ['lake.finance'] }, permissionSets: ['read'], maxDuration: '2h', approvalRequired: false },
    'finance-unapprovable': { principal: 'group:finance', scope: { databases: ['lake.claims'] }, permissionSets: ['read'], maxDuration: '2h', approvalRequired: true },
  },
  approval: {
    'claims-privacy': { scope: { databases: ['lake.claims'] }, permissionSets: ['read', 'read-with-pii'], approverGroups: ['privacy-officers'] },
    'claims-write-two-officers': { scope: { databases: ['lake.claims'] }, permissionSets: ['write'], approverGroups: ['privacy-officers'], minApprovals: 2 },
  },
  personas: { auditorGroups: ['auditors'] },
  pendingTimeout: '4h',
};

export const as = (name: string): AccessActor => ({ principal: `user:${name}` as PrincipalRef, admin: false });
export const ADMIN: AccessActor = { principal: 'user:admin', admin: true };

export interface Harness {
  readonly db: Db;
  readonly state: StateService;
  readonly access: AccessService;
  readonly clock: Clock;
  /** Another service (a "second process") over the same database. */
  another(options?: Partial<AccessServiceOptions>): AccessService;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly databaseUrl?: string;
  readonly db?: Db;
  readonly seed?: boolean;
  readonly config?: unknown;
  /** The real SMTP/webhook deliverer instead of a no-op one. */
  readonly realDelivery?: boolean;
  readonly deliverer?: Deliverer;
  readonly clock?: Clock;
}

export function stateServiceOver(db: Db): StateService {
  const stateStore = createStateStore(db);
  const log = createDecisionLog(db);
  return createStateService({
    loadWorld: () => stateStore.loadWorld(),
    version: () => stateStore.version(),
    applyChanges: (c, o) => stateStore.applyChanges(c, o),
    appendDecisions: (e) => log.appendDecisions(e),
  });
}

export const nullDeliverer: Deliverer = { deliver: async () => undefined, close: () => undefined };

export async function createHarness(options: HarnessOptions = {}): Promise<Harness> {
  const owned = options.db === undefined;
  const db = options.db ?? (options.databaseUrl === undefined ? await openPglite('memory') : await openPostgres(options.databaseUrl));
  await migrate(db);
  const state = stateServiceOver(db);
  const clock = options.clock ?? createClock();
  const deliverer = options.realDelivery === true ? {} : { deliverer: options.deliverer ?? nullDeliverer };
  const access = createAccessService({ db, state, now: clock.now, ...deliverer });
  if (options.seed !== false) {
    const w = (await state.snapshot()).world;
    if (!w.catalogs.some((c) => c.name === 'lake')) await state.change({ actor: 'test', action: 'seed', resource: 'lake', build: () => seedChanges() });
    await access.putConfig(ADMIN, options.config ?? ACCESS_DOC);
  }
  return {
    db,
    state,
    access,
    clock,
    another: (o = {}) => createAccessService({ db, state: stateServiceOver(db), now: clock.now, deliverer: options.deliverer ?? nullDeliverer, ...o }),
    close: async () => {
      access.close();
      if (owned) await db.close();
    },
  };
}

/** Decision-log entries for one request, oldest first. */
export async function transitionsOf(db: Db, requestId: string): Promise<{ action: string; actor: string; from?: string; to?: string }[]> {
  const { rows } = await db.query<{ action: string; actor: string; details: { from?: string; to?: string } | null }>(
    `SELECT action, actor, details FROM steward.decision_log WHERE resource = $1 AND result = 'ok' ORDER BY id`,
    [`access-request:${requestId}`],
  );
  return rows.map((r) => ({ action: r.action, actor: r.actor, ...(r.details?.from === undefined ? {} : { from: r.details.from }), ...(r.details?.to === undefined ? {} : { to: r.details.to }) }));
}
