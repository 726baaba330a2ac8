/**
 * The managed parts of a world as policy YAML, for `steward export` and for
 * adopting policy-as-code in a workspace that was configured by hand.
 *
 * Output is canonical and stable (sorted, no timestamps), so exporting twice
 * gives the same bytes and the result diffs cleanly under version control.
 * Round trip: loading the export and planning it against the same world gives
 * no changes.
 */
import type { Node as YamlNode } from 'yaml';
import { Document, isMap, isPair, isScalar, isSeq, visit } from 'yaml';
import type { PrincipalRef } from '../policy/model.js';
import type { ManagedWorld } from './convert.js';
import { fromWorld } from './convert.js';
import type { PolicyDocument } from './schema.js';
import type { StoredCleanroomSpec } from '../cleanroom/cleanroom-spec.js';
import type { TagExpression } from '../policy/model.js';
import { formatTagExpression, isEmptyExpression } from '../policy/tag-expression.js';

export interface ExportOptions {
  /** Adds `# yaml-language-server: $schema=<url>` so editors validate and complete the file. */
  readonly schemaUrl?: string;
  /** Stored dashboards (kept beside the world), written as the `dashboards` section. */
  readonly dashboards?: NonNullable<PolicyDocument['dashboards']>;
  /** Running collaborations (kept beside the world), written as the `cleanrooms` section. */
  readonly cleanrooms?: Readonly<Record<string, StoredCleanroomSpec>>;
}

const HEADER = [
  '# Steward policy: the managed part of the workspace (tags, principals, filters, grants, guardrails).',
  '# The catalog (catalogs, databases, tables, columns) is registered from the sources and only referenced here.',
  '# Format: docs/policy-as-code.md. Review changes with a plan before applying them.',
];

/** The text form policy files use: `*` for the empty expression, which would otherwise be an easily missed `""`. */
export function expressionText(e: TagExpression): string {
  return isEmptyExpression(e) ? '*' : formatTagExpression(e);
}

/** The YAML-facing form: tag expressions as text, group members bare when they are users. */
function toInput(doc: PolicyDocument): Record<string, unknown> {
  const out: Record<string, unknown> = { ...doc };
  if (doc.groups !== undefined) {
    out.groups = Object.fromEntries(
      Object.entries(doc.groups).map(([name, g]) => [
        name,
        g.members === undefined ? g : { ...g, members: g.members.map((m: PrincipalRef) => (m.startsWith('user:') ? m.slice(5) : m)) },
      ]),
    );
  }
  if (doc.grants !== undefined) {
    out.grants = doc.grants.map((g) =>
      typeof g.resource !== 'string' && 'tags' in g.resource ? { ...g, resource: { ...g.resource, tags: expressionText(g.resource.tags) } } : g,
    );
  }
  if (doc.guardrails !== undefined) {
    out.guardrails = Object.fromEntries(Object.entries(doc.guardrails).map(([name, g]) => [name, { ...g, resources: expressionText(g.resources) }]));
  }
  return out;
}

/** Printed width of a node in flow style (close enough), to decide whether it fits on one line. */
function flowWidth(node: unknown): number {
  if (isScalar(node)) return String(node.value).length + (typeof node.value === 'string' && /^(true|false|null|[-+.\d].*)$/i.test(node.value) ? 2 : 0);
  if (isSeq(node)) return node.items.reduce<number>((n, i) => n + flowWidth(i) + 2, 2);
  if (isMap(node)) return node.items.reduce<number>((n, p) => n + flowWidth(p.key) + 2 + flowWidth(p.value) + 2, 2);
  return 1000;
}

/** Leaf maps only: a map holding another map reads better in block style. */
const isLeaf = (node: unknown): boolean =>
  isScalar(node) || (isSeq(node) && node.items.every(isScalar)) || (isMap(node) && node.items.every((p) => isScalar(p.value) || (isSeq(p.value) && p.value.items.every(isScalar))));

/** Renders a document as YAML text. */
export function renderPolicyYaml(doc: PolicyDocument, options: ExportOptions = {}): string {
  const yamlDoc = new Document(toInput(doc));
  // Short leaf collections read best on one line (`members: [alice, bob]`,
  // `alice: { displayName: Alice }`); sections and grants stay in block style.
  visit(yamlDoc, {
    Map(_key, node, path) {
      if (path.length >= 4 && isLeaf(node) && flowWidth(node) <= 72) node.flow = true;
    },
    Seq(_key, node) {
      if (node.items.every(isScalar) && flowWidth(node) <= 72) node.flow = true;
    },
  });
  // Grants are the entries people read most; one field per line, always.
  const grants = yamlDoc.get('grants', true);
  if (isSeq(grants)) for (const g of grants.items) if (isMap(g)) g.flow = false;
  // A blank line between sections.
  if (isMap(yamlDoc.contents)) {
    yamlDoc.contents.items.forEach((pair, i) => {
      if (i > 0 && isPair(pair) && isScalar(pair.key)) (pair.key as YamlNode).spaceBefore = true;
    });
  }
  const header = [...(options.schemaUrl === undefined ? [] : [`# yaml-language-server: $schema=${options.schemaUrl}`]), ...HEADER];
  return `${header.join('\n')}\n\n${yamlDoc.toString({ lineWidth: 0, flowCollectionPadding: true })}`;
}

/**
 * The managed parts of a world as one policy YAML file.
 *
 * @example writeFileSync('policy.yaml', exportPolicy(world, { schemaUrl: './steward-policy.schema.json' }))
 */
export function exportPolicy(world: ManagedWorld, options: ExportOptions = {}): string {
  const doc = fromWorld(world);
  const withDashboards = options.dashboards === undefined ? doc : { ...doc, dashboards: options.dashboards };
  return renderPolicyYaml(options.cleanrooms === undefined ? withDashboards : { ...withDashboards, cleanrooms: options.cleanrooms as NonNullable<PolicyDocument['cleanrooms']> }, options);
}

/**
 * The same, split the way the example workspace is laid out: `tags.yaml`,
 * `principals.yaml`, `grants.yaml` (data filters and grants), `guardrails.yaml`.
 * Files that would be empty are left out.
 */
export function exportPolicyFiles(world: ManagedWorld, options: ExportOptions = {}): Record<string, string> {
  const doc = fromWorld(world);
  const parts: Record<string, PolicyDocument> = {
    'tags.yaml': { apiVersion: doc.apiVersion, tagKeys: doc.tagKeys, tags: doc.tags },
    'principals.yaml': { apiVersion: doc.apiVersion, users: doc.users, groups: doc.groups, idpMappings: doc.idpMappings },
    'grants.yaml': { apiVersion: doc.apiVersion, filters: doc.filters, grants: doc.grants },
    'guardrails.yaml': { apiVersion: doc.apiVersion, guardrails: doc.guardrails },
  };
  const out: Record<string, string> = {};
  for (const [file, part] of Object.entries(parts)) {
    const present = Object.fromEntries(Object.entries(part).filter(([, v]) => v !== undefined)) as PolicyDocument;
    if (Object.keys(present).length > 1) out[file] = renderPolicyYaml(present, options);
  }
  return out;
}
