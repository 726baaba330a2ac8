/**
 * The decision corpus, Cedar style: every JSON file under corpus/ holds a
 * world in a compact form, requests, and the expected decision, reasons and
 * (for SELECT) visible columns and row filter as SQL. Each case runs against
 * BOTH evaluators, so the reference and the engine answer to the same
 * expectations, not just to each other.
 *
 * Compact world format:
 *   catalogs: ["lake"]                       databases: ["lake.claims"]
 *   tables: { "lake.claims.members": ["id", "ssn"] }
 *   users: ["alice"]  groups: ["analysts"]  memberships: { "analysts": ["user:alice", "group:x"] }
 *   tagKeys: { "pii": ["true", "false"] }
 *   tags: { "lake.claims.members.ssn": { "pii": "true" } }    (2 parts: database, 3: table, 4: column)
 *   filters: [{ name, table: "c.d.t", predicate: <Predicate JSON> | null, columns?, excludedColumns? }]
 *   grants: [{ id, principal, on, permissions, grantable?, notAfter?, liftsGuardrails? }] where `on` is
 *     "lake" | "lake.claims" | "lake.claims.t" | "lake.claims.t(a, b)" | "lake.claims.t(-ssn)"
 *     | "lake.claims.t/filter-name" | "tag lake: domain=claims AND pii=false"
 *   guardrails: [{ name, principals?, except?, actions, catalog?, resources: "pii=true", liftable? }]
 * A reason is written "CODE" or "CODE id" (grant id or guardrail name), and a
 * lift "GUARDRAIL_LIFTED guardrail-name grant-id".
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Decision, Evaluator, Reason } from '../../src/policy/decision.js';
import { createEngine } from '../../src/policy/engine.js';
import type { DataFilter, Grant, GrantResource, Guardrail, Permission, PolicyWorld, PrincipalRef, ResourceRef, TagAssignment, TaggableRef } from '../../src/policy/model.js';
import { parseResource } from '../../src/policy/model.js';
import type { Predicate } from '../../src/policy/predicate.js';
import { toSql } from '../../src/policy/predicate.js';
import { createReferenceEvaluator } from '../../src/policy/reference-evaluator.js';
import { parseTagExpression } from '../../src/policy/tag-expression.js';
import { validateWorld } from '../../src/policy/validate.js';

interface CompactWorld {
  catalogs?: string[];
  databases?: string[];
  tables?: Record<string, string[]>;
  users?: string[];
  groups?: string[];
  memberships?: Record<string, PrincipalRef[]>;
  tagKeys?: Record<string, string[]>;
  tags?: Record<string, Record<string, string>>;
  filters?: { name: string; table: string; predicate: Predicate | null; columns?: string[]; excludedColumns?: string[] }[];
  grants?: { id: string; principal: PrincipalRef; on: string; permissions: Permission[]; grantable?: Permission[]; notAfter?: string; liftsGuardrails?: string[] }[];
  guardrails?: { name: string; principals?: PrincipalRef[]; except?: PrincipalRef[]; actions: Permission[]; catalog?: string; resources: string; liftable?: boolean }[];
}

interface Expect {
  decision: 'allow' | 'deny';
  reasons: string[];
  matchedGrants?: string[];
  deniedBy?: string[];
  filters?: string[];
  columns?: { name: string; rowFilter: string | null }[];
  rowFilter?: string | null;
}

interface CorpusCase {
  description: string;
  now?: string;
  world: CompactWorld;
  requests: { principal: PrincipalRef; action: Permission; resource: string; expect: Expect; why?: string }[];
  whoCanAccess?: { resource: string; action: Permission; expect: string[] }[];
  effectivePermissions?: { principal: PrincipalRef; expect: { resource: string; permissions: Permission[] }[] }[];
}

const split3 = (text: string): [string, string, string] => {
  const [c, d, t] = text.split('.');
  if (c === undefined || d === undefined || t === undefined) throw new Error(`bad table \`${text}\``);
  return [c, d, t];
};

function grantResource(on: string): GrantResource {
  const tag = /^tag\s+([^:]+):(.*)$/.exec(on);
  if (tag) return { kind: 'tag', catalog: (tag[1] as string).trim(), expression: parseTagExpression(tag[2] as string) };
  const cols = /^([^()]+)\((.*)\)$/.exec(on);
  if (cols) {
    const [catalog, database, table] = split3(cols[1] as string);
    const names = (cols[2] as string).split(',').map((s) => s.trim()).filter((s) => s.length > 0);
    return names.every((n) => n.startsWith('-'))
      ? { kind: 'columns', catalog, database, table, excludedColumns: names.map((n) => n.slice(1)) }
      : { kind: 'columns', catalog, database, table, columns: names };
  }
  const filter = /^([^/]+)\/(.+)$/.exec(on);
  if (filter) {
    const [catalog, database, table] = split3(filter[1] as string);
    return { kind: 'filter', catalog, database, table, filter: filter[2] as string };
  }
  const r = parseResource(on);
  switch (r?.level) {
    case 'catalog':
      return { kind: 'catalog', catalog: r.catalog };
    case 'database':
      return { kind: 'database', catalog: r.catalog, database: r.database };
    case 'table':
      return { kind: 'table', catalog: r.catalog, database: r.database, table: r.table };
    default:
      throw new Error(`bad grant target \`${on}\``);
  }
}

function taggable(text: string): TaggableRef {
  const r = parseResource(text);
  if (r === null || r.level === 'catalog') throw new Error(`bad tag target \`${text}\``);
  return r;
}

export function expandWorld(w: CompactWorld): PolicyWorld {
  const tagAssignments: TagAssignment[] = [];
  for (const [res, tags] of Object.entries(w.tags ?? {})) {
    for (const [key, value] of Object.entries(tags)) tagAssignments.push({ resource: taggable(res), key, value });
  }
  const filters: DataFilter[] = (w.filters ?? []).map((f) => {
    const [catalog, database, table] = split3(f.table);
    return {
      name: f.name,
      catalog,
      database,
      table,
      rowFilter: f.predicate === null ? null : toSql(f.predicate),
      predicate: f.predicate,
      ...(f.columns ? { columns: f.columns } : {}),
      ...(f.excludedColumns ? { excludedColumns: f.excludedColumns } : {}),
    };
  });
  const grants: Grant[] = (w.grants ?? []).map((g) => ({
    id: g.id,
    principal: g.principal,
    resource: grantResource(g.on),
    permissions: g.permissions,
    grantable: g.grantable ?? [],
    ...(g.notAfter ? { notAfter: g.notAfter } : {}),
    ...(g.liftsGuardrails ? { liftsGuardrails: g.liftsGuardrails } : {}),
  }));
  const guardrails: Guardrail[] = (w.guardrails ?? []).map((g) => ({
    name: g.name,
    actions: g.actions,
    resources: parseTagExpression(g.resources),
    ...(g.principals ? { principals: g.principals } : {}),
    ...(g.except ? { except: g.except } : {}),
    ...(g.catalog ? { catalog: g.catalog } : {}),
    ...(g.liftable !== undefined ? { liftable: g.liftable } : {}),
  }));
  return {
    catalogs: (w.catalogs ?? []).map((name) => ({ name })),
    databases: (w.databases ?? []).map((text) => {
      const [catalog, name] = text.split('.') as [string, string];
      return { catalog, name };
    }),
    tables: Object.entries(w.tables ?? {}).map(([text, columns]) => {
      const [catalog, database, name] = split3(text);
      return { catalog, database, name, columns: columns.map((c, ordinal) => ({ name: c, type: 'VARCHAR', ordinal })), source: { kind: 'virtual' } };
    }),
    users: (w.users ?? []).map((name) => ({ name })),
    groups: (w.groups ?? []).map((name) => ({ name })),
    memberships: Object.entries(w.memberships ?? {}).flatMap(([group, members]) => members.map((member) => ({ group, member }))),
    idpMappings: [],
    tagKeys: Object.entries(w.tagKeys ?? {}).map(([key, values]) => ({ key, values })),
    tagAssignments,
    filters,
    grants,
    guardrails,
  };
}

function reasonText(r: Reason): string {
  switch (r.code) {
    case 'GRANT':
    case 'GRANT_EXPIRED':
      return `${r.code} ${r.grantId}`;
    case 'GUARDRAIL':
      return `${r.code} ${r.guardrail}`;
    case 'GUARDRAIL_LIFTED':
      return `${r.code} ${r.guardrail} ${r.grantId}`;
    case 'NO_GRANT':
    case 'NOT_APPLICABLE':
    case 'UNKNOWN_PRINCIPAL':
    case 'UNKNOWN_RESOURCE':
      return r.code;
    default: {
      const never: never = r;
      return never;
    }
  }
}

function actual(d: Decision, e: Expect): Expect {
  const out: Expect = { decision: d.decision, reasons: d.reasons.map(reasonText) };
  if (e.matchedGrants) out.matchedGrants = [...d.matchedGrants];
  if (e.deniedBy) out.deniedBy = [...d.deniedBy];
  if (e.filters) out.filters = [...d.filters];
  if (e.columns) out.columns = (d.columns ?? []).map((c) => ({ name: c.name, rowFilter: c.rowFilter === null ? null : toSql(c.rowFilter) }));
  if (e.rowFilter !== undefined) out.rowFilter = d.rowFilter === undefined || d.rowFilter === null ? (d.rowFilter ?? null) : toSql(d.rowFilter);
  return out;
}

function resourceRef(text: string): ResourceRef {
  const r = parseResource(text);
  if (r === null) throw new Error(`bad resource \`${text}\``);
  return r;
}

const dir = join(dirname(fileURLToPath(import.meta.url)), 'corpus');
const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();

test('the corpus has at least 25 cases', () => {
  assert.ok(files.length >= 25, `only ${files.length} cases`);
});

for (const file of files) {
  const c = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CorpusCase;
  const world = expandWorld(c.world);
  const now = Date.parse(c.now ?? '2025-01-15T12:00:00Z');
  const evaluators: [string, Evaluator][] = [
    ['reference', createReferenceEvaluator(world)],
    ['engine', createEngine(world)],
  ];
  test(`corpus ${file}: ${c.description}`, async (t) => {
    await t.test('the world is valid (a case tests the rules, not garbage in)', () => {
      assert.deepStrictEqual(validateWorld(world), []);
    });
    for (const [name, ev] of evaluators) {
      await t.test(name, () => {
        for (const r of c.requests) {
          const d = ev.authorize({ principal: r.principal, action: r.action, resource: resourceRef(r.resource), now });
          assert.deepStrictEqual(actual(d, r.expect), r.expect, `${r.principal} ${r.action} ${r.resource}${r.why ? ` (${r.why})` : ''}`);
        }
        for (const w of c.whoCanAccess ?? []) {
          const holders = ev.whoCanAccess(resourceRef(w.resource), w.action, now).map((h) => h.principal);
          assert.deepStrictEqual(holders, w.expect, `who can ${w.action} ${w.resource}`);
        }
        for (const e of c.effectivePermissions ?? []) {
          const list = ev.effectivePermissions(e.principal, now).map((x) => ({ resource: x.resource, permissions: [...x.permissions] }));
          assert.deepStrictEqual(list, e.expect, `effective permissions of ${e.principal}`);
        }
      });
    }
  });
}
