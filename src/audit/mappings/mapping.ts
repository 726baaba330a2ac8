/**
 * Declarative mappings from a custom source's JSON records to OCSF events.
 * A mapping is data: rules tried in order, each with a condition and the
 * class, activity and attributes it produces, written as small expressions
 * over the record. It is compiled once into a function; a record no rule
 * accepts, or whose event lacks a required attribute, is refused with the
 * reason (the ingest path quarantines it).
 *
 * @example
 *   const map = compileMapping(CLOUDTRAIL);
 *   const r = map(JSON.parse(line));   // { ok: true, event } | { ok: false, reason }
 */
import { eventHead, type ClassName, type Json, type OcsfEvent, type SeverityId, type StatusId } from '../ocsf.js';
import { missingRequired } from '../ocsf-required.js';

/** An expression over the record. A string is shorthand for `{ path }`. */
export type Expr =
  | string
  | { readonly path: string }
  | { readonly const: Json }
  | { readonly coalesce: readonly Expr[] }
  /** ISO-8601 text or epoch (s or ms) → epoch ms. */
  | { readonly time: Expr }
  /** Looks the value up in a table; `default` when absent. */
  | { readonly lookup: Expr; readonly table: Readonly<Record<string, Json>>; readonly default?: Json }
  /** The first pattern (case-insensitive regex) matching the text gives the value. */
  | { readonly match: Expr; readonly patterns: ReadonlyArray<readonly [string, Json]>; readonly default?: Json }
  /** A capture group of a regex over the text. */
  | { readonly regex: Expr; readonly pattern: string; readonly group?: number }
  /** `{a.b}` placeholders replaced by values at those paths; absent when any is absent. */
  | { readonly template: string }
  /** Maps each element of an array to an object. */
  | { readonly each: Expr; readonly fields: Readonly<Record<string, Expr>> }
  /** A one-element array of the object built from `fields` over the record; absent when that object is empty. */
  | { readonly one: Readonly<Record<string, Expr>> }
  /** The value when it is an IP address, else absent. */
  | { readonly ip: Expr }
  | { readonly lower: Expr }
  /** Whether the value equals `equals` (or is present, without `equals`). */
  | { readonly test: Expr; readonly equals?: Json };

export type Condition =
  | { readonly path: string; readonly in: readonly Json[] }
  | { readonly path: string; readonly matches: string }
  | { readonly path: string; readonly exists: boolean }
  | { readonly all: readonly Condition[] }
  | { readonly any: readonly Condition[] }
  | { readonly not: Condition };

export interface MappingRule {
  readonly name: string;
  readonly when?: Condition;
  readonly class: ClassName;
  /** Evaluates to an activity_id of the class. */
  readonly activity: Expr;
  /** OCSF attribute path (`actor.user.name`) → expression. */
  readonly fields: Readonly<Record<string, Expr>>;
}

export interface Mapping {
  readonly name: string;
  readonly description: string;
  readonly product: { readonly name: string; readonly vendor_name: string; readonly version?: Expr };
  /** A line holding `{ "<unwrap>": [ ... ] }` is several records (Azure's `records`). */
  readonly unwrap?: string;
  readonly time: Expr;
  readonly severity?: Expr;
  /** Evaluates to 1 (Success), 2 (Failure) or another status_id. */
  readonly status?: Expr;
  /** Attributes every rule gets (a rule's own fields win). */
  readonly common: Readonly<Record<string, Expr>>;
  readonly rules: readonly MappingRule[];
  /** Record paths copied under `unmapped`, keeping the original detail next to the normalized event. */
  readonly unmapped?: readonly string[];
}

export type MapResult = { readonly ok: true; readonly event: OcsfEvent } | { readonly ok: false; readonly reason: string };

type Fn = (record: unknown) => Json | undefined;

/** `a.b["key.with.dots"].c` → [a, b, key.with.dots, c]. */
function pathParts(path: string): string[] {
  const parts: string[] = [];
  const re = /\["((?:[^"\\]|\\.)*)"\]|([^.[\]]+)/g;
  for (let m = re.exec(path); m !== null; m = re.exec(path)) parts.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  return parts;
}

const PATHS = new Map<string, string[]>();

function get(record: unknown, path: string): unknown {
  let parts = PATHS.get(path);
  if (parts === undefined) PATHS.set(path, (parts = pathParts(path)));
  let cur = record;
  for (const part of parts) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

// Empty strings count as absent: sources write `""` for "not applicable".
const asJson = (v: unknown): Json | undefined => (v === undefined || v === null || v === '' ? undefined : (v as Json));
const IPV4 = /^(?:\d{1,3}\.){3}\d{1,3}$/;
const IPV6 = /^[0-9a-f:]+:[0-9a-f:.]*$/i;

function compileExpr(e: Expr): Fn {
  if (typeof e === 'string') return (r) => asJson(get(r, e));
  if ('path' in e) return (r) => asJson(get(r, e.path));
  if ('const' in e) return () => e.const;
  if ('coalesce' in e) {
    const fs = e.coalesce.map(compileExpr);
    return (r) => {
      for (const f of fs) {
        const v = f(r);
        if (v !== undefined && v !== '') return v;
      }
      return undefined;
    };
  }
  if ('time' in e) {
    const f = compileExpr(e.time);
    return (r) => {
      const v = f(r);
      if (typeof v === 'number') return v < 1e11 ? Math.round(v * 1000) : Math.round(v);
      if (typeof v === 'string') {
        const ms = Date.parse(v);
        return Number.isNaN(ms) ? undefined : ms;
      }
      return undefined;
    };
  }
  if ('lookup' in e) {
    const f = compileExpr(e.lookup);
    return (r) => {
      const v = f(r);
      const hit = v === undefined ? undefined : e.table[String(v)];
      return hit ?? e.default;
    };
  }
  if ('match' in e) {
    const f = compileExpr(e.match);
    const res = e.patterns.map(([p, v]) => [new RegExp(p, 'i'), v] as const);
    return (r) => {
      const v = f(r);
      if (typeof v === 'string') for (const [re, out] of res) if (re.test(v)) return out;
      return e.default;
    };
  }
  if ('regex' in e) {
    const f = compileExpr(e.regex);
    const re = new RegExp(e.pattern, 'i');
    return (r) => {
      const v = f(r);
      if (typeof v !== 'string') return undefined;
      const m = re.exec(v);
      return m?.[e.group ?? 1] ?? undefined;
    };
  }
  if ('template' in e) {
    const parts = e.template.split(/(\{[^}]+\})/);
    return (r) => {
      let out = '';
      for (const p of parts) {
        if (p.startsWith('{') && p.endsWith('}')) {
          const v = get(r, p.slice(1, -1));
          if (v === undefined || v === null) return undefined;
          out += String(v);
        } else out += p;
      }
      return out;
    };
  }
  if ('each' in e) {
    const f = compileExpr(e.each);
    const fields = Object.entries(e.fields).map(([k, x]) => [k, compileExpr(x)] as const);
    return (r) => {
      const v = f(r);
      if (!Array.isArray(v)) return undefined;
      const out: Json[] = [];
      for (const item of v) {
        const obj: { [key: string]: Json } = {};
        for (const [k, g] of fields) setPath(obj, k, g(item));
        if (Object.keys(obj).length > 0) out.push(obj);
      }
      return out.length === 0 ? undefined : out;
    };
  }
  if ('one' in e) {
    const fields = Object.entries(e.one).map(([k, x]) => [k, compileExpr(x)] as const);
    return (r) => {
      const obj: { [key: string]: Json } = {};
      for (const [k, g] of fields) setPath(obj, k, g(r));
      return Object.keys(obj).length === 0 ? undefined : [obj];
    };
  }
  if ('ip' in e) {
    const f = compileExpr(e.ip);
    return (r) => {
      const v = f(r);
      return typeof v === 'string' && (IPV4.test(v) || IPV6.test(v)) ? v : undefined;
    };
  }
  if ('lower' in e) {
    const f = compileExpr(e.lower);
    return (r) => {
      const v = f(r);
      return typeof v === 'string' ? v.toLowerCase() : v;
    };
  }
  if ('test' in e) {
    const f = compileExpr(e.test);
    return (r) => {
      const v = f(r);
      return e.equals === undefined ? v !== undefined : v === e.equals;
    };
  }
  const never: never = e;
  return never;
}

type Pred = (record: unknown) => boolean;

function compileCondition(c: Condition): Pred {
  if ('all' in c) {
    const ps = c.all.map(compileCondition);
    return (r) => ps.every((p) => p(r));
  }
  if ('any' in c) {
    const ps = c.any.map(compileCondition);
    return (r) => ps.some((p) => p(r));
  }
  if ('not' in c) {
    const p = compileCondition(c.not);
    return (r) => !p(r);
  }
  if ('in' in c) {
    const set = new Set(c.in);
    return (r) => set.has(get(r, c.path) as Json);
  }
  if ('matches' in c) {
    const re = new RegExp(c.matches, 'i');
    return (r) => {
      const v = get(r, c.path);
      return typeof v === 'string' && re.test(v);
    };
  }
  return (r) => (get(r, c.path) !== undefined && get(r, c.path) !== null) === c.exists;
}

function setPath(target: { [key: string]: Json }, path: string | readonly string[], value: Json | undefined): void {
  if (value === undefined) return;
  const parts = typeof path === 'string' ? path.split('.') : path;
  let cur = target;
  for (let i = 0; i < parts.length - 1; i++) {
    const k = parts[i] as string;
    const next = cur[k];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) cur[k] = {};
    cur = cur[k] as { [key: string]: Json };
  }
  cur[parts[parts.length - 1] as string] = value;
}

/** Compiles a mapping into a record → event function (regexes and lookups built once). */
export function compileMapping(m: Mapping): (record: unknown) => MapResult {
  const time = compileExpr(m.time);
  const severity = m.severity === undefined ? (): Json => 1 : compileExpr(m.severity);
  const status = m.status === undefined ? (): Json | undefined => undefined : compileExpr(m.status);
  const version = m.product.version === undefined ? (): Json | undefined => undefined : compileExpr(m.product.version);
  // Target paths are split once here, not per record.
  const common = Object.entries(m.common).map(([k, e]) => [k.split('.'), compileExpr(e)] as const);
  const rules = m.rules.map((rule) => ({
    rule,
    when: rule.when === undefined ? (): boolean => true : compileCondition(rule.when),
    activity: compileExpr(rule.activity),
    fields: Object.entries(rule.fields).map(([k, e]) => [k.split('.'), compileExpr(e)] as const),
  }));
  const unmapped = (m.unmapped ?? []).map((p) => [p, (r: unknown) => asJson(get(r, p))] as const);

  return (record) => {
    if (record === null || typeof record !== 'object' || Array.isArray(record)) return { ok: false, reason: 'record is not a JSON object' };
    const t = time(record);
    if (typeof t !== 'number' || !Number.isFinite(t)) return { ok: false, reason: 'record has no valid event time' };
    const r = rules.find((x) => x.when(record));
    if (r === undefined) return { ok: false, reason: `no rule of mapping \`${m.name}\` accepts the record` };
    const activity = r.activity(record);
    if (typeof activity !== 'number') return { ok: false, reason: `rule \`${r.rule.name}\` found no activity for the record` };
    const sev = severity(record);
    const st = status(record);
    const ver = version(record);
    const event = eventHead({
      class: r.rule.class,
      activityId: activity,
      time: t,
      severityId: (typeof sev === 'number' ? sev : 1) as SeverityId,
      ...(typeof st === 'number' ? { statusId: st as StatusId } : {}),
      product: { name: m.product.name, vendor_name: m.product.vendor_name, ...(typeof ver === 'string' ? { version: ver } : {}) },
    });
    for (const [k, f] of common) setPath(event, k, f(record));
    for (const [k, f] of r.fields) setPath(event, k, f(record));
    if (unmapped.length > 0) {
      const extra: { [key: string]: Json } = {};
      for (const [p, f] of unmapped) {
        const v = f(record);
        if (v !== undefined) extra[p] = v;
      }
      if (Object.keys(extra).length > 0) event['unmapped'] = extra;
    }
    const missing = missingRequired(event);
    if (missing.length > 0) return { ok: false, reason: `the mapped event lacks required OCSF attribute(s) ${missing.map((x) => `\`${x}\``).join(', ')}` };
    return { ok: true, event };
  };
}

/** `records` arrays unwrapped, anything else as one record. */
export function recordsOf(m: Pick<Mapping, 'unwrap'>, parsed: unknown): unknown[] {
  if (m.unwrap !== undefined && parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
    const inner = (parsed as Record<string, unknown>)[m.unwrap];
    if (Array.isArray(inner)) return inner;
  }
  return [parsed];
}
