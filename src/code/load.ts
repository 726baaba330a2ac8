/**
 * Loads policy files: one YAML file, or every `*.yaml`/`*.yml` under a folder
 * (recursively, in sorted order) merged into one document.
 *
 * Every problem points at `file:line:column`: YAML syntax errors, schema
 * errors (zod issue paths are walked back down the YAML node tree), entities
 * declared twice (both places are named), and, through the returned
 * `locations`, semantic problems found by later stages.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Document, Node as YamlNode } from 'yaml';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import type { EntityKind } from '../policy/changes.js';
import { isReservedName } from '../policy/model.js';
import { StewardError, type ErrorDetail } from '../errors.js';
import { grantIdOf } from './convert.js';
import type { PolicyDocument } from './schema.js';
import { PolicyDocumentSchema } from './schema.js';
import type { SourceLocation } from './source-location.js';
import { formatLocation, locationKey, policyError, type DeclaredKind } from './source-location.js';

export interface LoadedPolicy {
  /** All files merged. */
  readonly document: PolicyDocument;
  /** Where each entity is declared, keyed by `locationKey(kind, entityKey)`. */
  readonly locations: Map<string, SourceLocation>;
}

export interface PolicySource {
  /** Shown in errors (`policy/grants.yaml`). */
  readonly file: string;
  readonly text: string;
}

/** Policy files are hand-written; anything larger is a mistake or an attack (alias bombs are capped separately). */
export const MAX_POLICY_FILE_BYTES = 5 * 1024 * 1024;

/**
 * Loads a policy file or folder. Throws `STEWARD_E_PARSE` (YAML syntax) or
 * `STEWARD_E_VALIDATION` (schema, duplicates) listing every problem found.
 *
 * @example const { document, locations } = await loadPolicy('examples/demo-policy')
 */
export async function loadPolicy(path: string): Promise<LoadedPolicy> {
  const info = await stat(path);
  const files = info.isDirectory() ? (await listPolicyFiles(path)).map((rel) => join(path, rel)) : [path];
  if (files.length === 0) {
    throw policyError('STEWARD_E_VALIDATION', [{ path, message: `no policy files (\`*.yaml\`, \`*.yml\`) in \`${path}\`` }]);
  }
  const sources: PolicySource[] = [];
  const tooLarge: ErrorDetail[] = [];
  for (const file of files) {
    const size = (await stat(file)).size;
    if (size > MAX_POLICY_FILE_BYTES) tooLarge.push({ path: `${file}:1:1`, message: `file is larger than ${MAX_POLICY_FILE_BYTES} bytes` });
    else sources.push({ file, text: await readFile(file, 'utf8') });
  }
  if (tooLarge.length > 0) throw policyError('STEWARD_E_PARSE', tooLarge);
  return loadPolicySources(sources);
}

/** Relative paths of the policy files under `dir`, sorted; hidden files and folders are skipped. */
export async function listPolicyFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string): Promise<void> => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = join(d, entry.name);
      // Symlinked folders are not followed, so a link loop cannot hang the loader.
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile() && /\.ya?ml$/i.test(entry.name)) out.push(relative(dir, full));
    }
  };
  await walk(dir);
  return out.sort();
}

/** Loads policy text that is already in memory (API uploads, tests). Same errors as `loadPolicy`. */
export function loadPolicySources(sources: readonly PolicySource[]): LoadedPolicy {
  const syntax: ErrorDetail[] = [];
  const problems: ErrorDetail[] = [];
  const parsed: { doc: PolicyDocument; entities: EntityLocation[] }[] = [];

  for (const source of sources) {
    const read = readYaml(source);
    syntax.push(...read.syntax);
    problems.push(...read.problems);
    if (read.syntax.length > 0 || read.problems.length > 0) continue;
    const { yamlDoc, js, at } = read;
    if (js === null || js === undefined) {
      problems.push({ path: formatLocation(at(0)), message: 'empty policy file (expected `apiVersion: steward/v1` and sections)' });
      continue;
    }
    const result = PolicyDocumentSchema.safeParse(js, { reportInput: true });
    if (!result.success) {
      for (const issue of result.error.issues) {
        for (const d of describeIssue(issue, [])) {
          const offset = offsetOf(yamlDoc, d.path, d.atKey);
          problems.push({ path: formatLocation(at(offset)), message: `${fieldPath(d.path)}${d.message}` });
        }
      }
      continue;
    }
    const entities = entityLocations(yamlDoc, result.data, at, problems);
    parsed.push({ doc: result.data, entities });
  }

  if (syntax.length > 0) throw policyError('STEWARD_E_PARSE', [...syntax, ...problems]);

  const locations = new Map<string, SourceLocation>();
  for (const { entities } of parsed) {
    for (const e of entities) {
      const k = locationKey(e.kind, e.key);
      const first = locations.get(k);
      if (first === undefined) locations.set(k, e.loc);
      else problems.push({ path: formatLocation(e.loc), message: `${e.kind} \`${e.key}\` is already defined at ${formatLocation(first)}` });
    }
  }
  if (problems.length > 0) throw policyError('STEWARD_E_VALIDATION', problems);
  return { document: mergeDocuments(parsed.map((p) => p.doc)), locations };
}

interface ReadYaml {
  readonly yamlDoc: Document;
  readonly js: unknown;
  readonly at: (offset: number) => SourceLocation;
  /** YAML syntax errors (`STEWARD_E_PARSE`). */
  readonly syntax: ErrorDetail[];
  /** Keys no document may hold (`STEWARD_E_VALIDATION`). */
  readonly problems: ErrorDetail[];
}

/** One YAML text to a value, with positions for errors; unique keys, aliases capped, prototype keys refused. */
function readYaml(source: PolicySource): ReadYaml {
  const lineCounter = new LineCounter();
  const yamlDoc = parseDocument(source.text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number): SourceLocation => {
    const { line, col } = lineCounter.linePos(offset);
    return { file: source.file, line, column: col };
  };
  const out = { yamlDoc, js: undefined as unknown, at, syntax: [] as ErrorDetail[], problems: [] as ErrorDetail[] };
  if (yamlDoc.errors.length > 0) {
    for (const e of yamlDoc.errors) out.syntax.push({ path: formatLocation(at(e.pos[0])), message: yamlMessage(e.message) });
    return out;
  }
  out.problems.push(...reservedKeys(yamlDoc, at));
  if (out.problems.length > 0) return out;
  try {
    out.js = yamlDoc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    out.syntax.push({ path: formatLocation(at(0)), message: yamlMessage(e instanceof Error ? e.message : String(e)) });
  }
  return out;
}

/**
 * Reads a YAML (or JSON) file that is not a policy file, such as the access
 * configuration, with the same safety rules and `file:line:column` errors.
 */
export function parseYamlText(source: PolicySource): unknown {
  const read = readYaml(source);
  const [code, details] = read.syntax.length > 0 ? (['STEWARD_E_PARSE', read.syntax] as const) : (['STEWARD_E_VALIDATION', read.problems] as const);
  const first = details[0];
  if (first !== undefined) throw new StewardError(code, `${first.path ?? source.file}: ${first.message}`, { details });
  return read.js;
}

/**
 * Mapping keys that are prototype keys (`__proto__`, `constructor`, …). Turning
 * the YAML into objects would set a prototype instead of an entry (the entry
 * vanishes without a word), so they are refused on the syntax tree, before
 * `toJS`, with their position.
 */
function reservedKeys(doc: Document, at: (o: number) => SourceLocation): ErrorDetail[] {
  const out: ErrorDetail[] = [];
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && isReservedName(String(pair.key.value).trim())) {
        out.push({ path: formatLocation(at(rangeStart(pair.key) ?? 0)), message: `key \`${String(pair.key.value)}\` is reserved (a property of every javascript object)` });
      }
    },
  });
  return out;
}

function yamlMessage(message: string): string {
  const line = (message.split('\n')[0] ?? message).replace(/\.$/, '').replace(/ at line \d+, column \d+:?$/, '');
  return line.charAt(0).toLowerCase() + line.slice(1);
}

// -------------------------------------------------------- zod issue -> detail

type Issue = z.core.$ZodIssue;
type PathSeg = PropertyKey;

interface IssueDetail {
  readonly path: readonly PathSeg[];
  readonly message: string;
  /** Point at the key of the last path segment rather than its value. */
  readonly atKey: boolean;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  const text = String(value);
  return `\`${text.length > 60 ? `${text.slice(0, 57)}...` : text}\``;
}

const EXPECTED: Readonly<Record<string, string>> = { record: 'a mapping', object: 'a mapping', array: 'a list' };

function describeIssue(issue: Issue, prefix: readonly PathSeg[]): IssueDetail[] {
  const path = [...prefix, ...issue.path];
  const one = (message: string, atKey = false): IssueDetail[] => [{ path, message, atKey }];
  switch (issue.code) {
    case 'invalid_union': {
      // One branch usually failed only because the value has another type
      // (a string where a mapping was expected); the others hold the real problem.
      const branches = issue.errors.filter((b) => !(b.length === 1 && b[0]?.code === 'invalid_type' && b[0].path.length === 0));
      if (branches.length === 0) {
        const expected = issue.errors.map((b) => (b[0]?.code === 'invalid_type' ? (EXPECTED[b[0].expected] ?? `a ${b[0].expected}`) : 'a value'));
        return one(`expected ${[...new Set(expected)].join(' or ')}, got ${show(issue.input)}`);
      }
      const best = branches.reduce((a, b) => (b.length < a.length ? b : a));
      return best.flatMap((i) => describeIssue(i, path));
    }
    case 'unrecognized_keys':
      return issue.keys.map((k) => ({ path: [...path, k], message: `unknown field \`${k}\``, atKey: true }));
    case 'invalid_key': {
      const why = issue.issues.map((i) => messageOf(i, issue.path[issue.path.length - 1])).join('; ');
      return one(why, true);
    }
    default:
      return one(messageOf(issue, issue.input));
  }
}

function messageOf(issue: Issue, input: unknown): string {
  switch (issue.code) {
    case 'invalid_type':
      return input === undefined ? 'missing required field' : `expected ${EXPECTED[issue.expected] ?? `a ${issue.expected}`}, got ${show(input)}`;
    case 'too_big':
      return issue.origin === 'string' ? `longer than ${String(issue.maximum)} characters` : `more than ${String(issue.maximum)} items`;
    case 'too_small':
      return issue.origin === 'string' ? 'must not be empty' : `needs at least ${String(issue.minimum)} item${issue.minimum === 1 ? '' : 's'}`;
    case 'invalid_value':
      return `expected ${issue.values.length > 1 ? 'one of ' : ''}${issue.values.map((v) => `\`${String(v)}\``).join(', ')}, got ${show(input)}`;
    case 'invalid_format':
      return `${show(input)} is ${issue.message}`;
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

function fieldPath(path: readonly PathSeg[]): string {
  if (path.length === 0) return '';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const s = String(seg);
      out += /^[A-Za-z_][A-Za-z0-9_]*$/.test(s) ? `${out === '' ? '' : '.'}${s}` : `[${JSON.stringify(s)}]`;
    }
  }
  return `${out}: `;
}

/** Zod paths hold the keys as written, but transformed record keys may be normalized; match both. */
function keyMatches(key: unknown, seg: PathSeg): boolean {
  if (!isScalar(key)) return false;
  const raw = String(key.value);
  return raw === String(seg) || raw.trim().toLowerCase() === String(seg);
}

/** The source offset of the deepest YAML node on `path` (a missing field points at its parent). */
function offsetOf(doc: Document, path: readonly PathSeg[], atKey: boolean): number {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i] as PathSeg;
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => keyMatches(p.key, seg));
      if (pair === undefined) break;
      if (last && atKey) return rangeStart(pair.key) ?? offset;
      node = pair.value;
      offset = rangeStart(pair.value) ?? rangeStart(pair.key) ?? offset;
    } else if (isSeq(node) && typeof seg === 'number') {
      const item = node.items[seg];
      if (item === undefined) break;
      node = item;
      offset = rangeStart(item) ?? offset;
    } else break;
  }
  return offset;
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as YamlNode | null | undefined)?.range;
  return range === null || range === undefined ? undefined : range[0];
}

// ---------------------------------------------------------- entity locations

interface EntityLocation {
  readonly kind: DeclaredKind;
  readonly key: string;
  readonly loc: SourceLocation;
}

interface YamlEntry {
  readonly name: string;
  readonly offset: number;
  readonly value: unknown;
}

/** Entries of a YAML mapping with names normalized as the schema does; collisions ("Alice" and "alice") are reported. */
function entries(node: unknown, what: string, at: (o: number) => SourceLocation, problems: ErrorDetail[]): YamlEntry[] {
  if (!isMap(node)) return [];
  const seen = new Map<string, number>();
  const out: YamlEntry[] = [];
  for (const pair of node.items) {
    if (!isScalar(pair.key)) continue;
    const name = String(pair.key.value).trim().toLowerCase();
    const offset = rangeStart(pair.key) ?? 0;
    const first = seen.get(name);
    if (first !== undefined) {
      problems.push({ path: formatLocation(at(offset)), message: `${what} \`${name}\` is already defined at ${formatLocation(at(first))}` });
      continue;
    }
    seen.set(name, offset);
    out.push({ name, offset, value: pair.value });
  }
  return out;
}

function section(doc: Document, name: string): unknown {
  return doc.get(name, true);
}

function items(node: unknown): unknown[] {
  return isSeq(node) ? node.items : [];
}

function entityLocations(yamlDoc: Document, doc: PolicyDocument, at: (o: number) => SourceLocation, problems: ErrorDetail[]): EntityLocation[] {
  const out: EntityLocation[] = [];
  const add = (kind: DeclaredKind, key: string, offset: number): void => {
    out.push({ kind, key, loc: at(offset) });
  };
  const addUnique = (seen: Map<string, number>, kind: EntityKind, key: string, offset: number): void => {
    const first = seen.get(key);
    if (first !== undefined) {
      problems.push({ path: formatLocation(at(offset)), message: `${kind} \`${key}\` is already defined at ${formatLocation(at(first))}` });
      return;
    }
    seen.set(key, offset);
    add(kind, key, offset);
  };

  for (const e of entries(section(yamlDoc, 'tagKeys'), 'tag key', at, problems)) add('tagKey', e.name, e.offset);
  for (const r of entries(section(yamlDoc, 'tags'), 'resource', at, problems)) {
    for (const t of entries(r.value, 'tag key', at, problems)) add('tagAssignment', `${r.name}#${t.name}`, t.offset);
  }
  for (const e of entries(section(yamlDoc, 'users'), 'user', at, problems)) add('user', e.name, e.offset);
  for (const g of entries(section(yamlDoc, 'groups'), 'group', at, problems)) {
    add('group', g.name, g.offset);
    const members = doc.groups?.[g.name]?.members ?? [];
    const seen = new Set<string>();
    const memberNodes = isMap(g.value) ? items(g.value.get('members', true)) : [];
    members.forEach((member, i) => {
      // A member listed twice is harmless; the first mention is its location.
      if (seen.has(member)) return;
      seen.add(member);
      add('membership', `${g.name}<${member}`, rangeStart(memberNodes[i]) ?? g.offset);
    });
  }
  const mappingsSeen = new Map<string, number>();
  items(section(yamlDoc, 'idpMappings')).forEach((node, i) => {
    const m = doc.idpMappings?.[i];
    if (m !== undefined) addUnique(mappingsSeen, 'idpMapping', `${m.provider}/${m.externalGroup}`, rangeStart(node) ?? 0);
  });
  for (const t of entries(section(yamlDoc, 'filters'), 'table', at, problems)) {
    for (const f of entries(t.value, 'filter', at, problems)) add('filter', `${t.name}/${f.name}`, f.offset);
  }
  const grantsSeen = new Map<string, number>();
  items(section(yamlDoc, 'grants')).forEach((node, i) => {
    const g = doc.grants?.[i];
    if (g === undefined) return;
    const id = grantIdOf(g);
    const offset = rangeStart(node) ?? 0;
    if (g.id === undefined && grantsSeen.has(id)) {
      problems.push({
        path: formatLocation(at(offset)),
        message: `grant of \`${g.principal}\` on the same resource is already defined at ${formatLocation(at(grantsSeen.get(id) ?? 0))} (merge them, or give each an \`id\`)`,
      });
      return;
    }
    addUnique(grantsSeen, 'grant', id, offset);
  });
  for (const e of entries(section(yamlDoc, 'guardrails'), 'guardrail', at, problems)) add('guardrail', e.name, e.offset);
  for (const e of entries(section(yamlDoc, 'dashboards'), 'dashboard', at, problems)) add('dashboard', e.name, e.offset);
  for (const e of entries(section(yamlDoc, 'cleanrooms'), 'cleanroom', at, problems)) add('cleanroom', e.name, e.offset);
  return out;
}

// ------------------------------------------------------------------- merging

/** Merges per-file documents; duplicates were already reported by entity, so maps merge without loss. */
function mergeDocuments(docs: readonly PolicyDocument[]): PolicyDocument {
  const out: {
    apiVersion: PolicyDocument['apiVersion'];
    tagKeys: NonNullable<PolicyDocument['tagKeys']>;
    tags: NonNullable<PolicyDocument['tags']>;
    users: NonNullable<PolicyDocument['users']>;
    groups: NonNullable<PolicyDocument['groups']>;
    idpMappings: NonNullable<PolicyDocument['idpMappings']>;
    filters: NonNullable<PolicyDocument['filters']>;
    grants: NonNullable<PolicyDocument['grants']>;
    guardrails: NonNullable<PolicyDocument['guardrails']>;
    dashboards?: NonNullable<PolicyDocument['dashboards']>;
    cleanrooms?: NonNullable<PolicyDocument['cleanrooms']>;
  } = { apiVersion: 'steward/v1', tagKeys: {}, tags: {}, users: {}, groups: {}, idpMappings: [], filters: {}, grants: [], guardrails: {} };
  for (const d of docs) {
    Object.assign(out.tagKeys, d.tagKeys);
    for (const [r, tags] of Object.entries(d.tags ?? {})) out.tags[r] = { ...out.tags[r], ...tags };
    Object.assign(out.users, d.users);
    Object.assign(out.groups, d.groups);
    out.idpMappings.push(...(d.idpMappings ?? []));
    for (const [t, fs] of Object.entries(d.filters ?? {})) out.filters[t] = { ...out.filters[t], ...fs };
    out.grants.push(...(d.grants ?? []));
    Object.assign(out.guardrails, d.guardrails);
    // Dashboards are managed only when some file has the section: a policy folder from before them leaves them alone.
    if (d.dashboards !== undefined) out.dashboards = { ...out.dashboards, ...d.dashboards };
    // Clean rooms likewise: without a `cleanrooms` section no collaboration is touched.
    if (d.cleanrooms !== undefined) out.cleanrooms = { ...out.cleanrooms, ...d.cleanrooms };
  }
  return out;
}
