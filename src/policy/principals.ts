/**
 * Principal sets: who a request speaks for. A user's principal set is the user
 * plus every group containing it directly or transitively; grants and
 * guardrails are matched against that set, never against the bare user.
 *
 * Every walk here keeps a visited set, so a world with a membership cycle (which
 * validation refuses) still terminates instead of hanging the evaluator.
 */
import type { PolicyWorld, PrincipalRef } from './model.js';

export interface PrincipalParts {
  readonly kind: 'user' | 'group';
  readonly name: string;
}

/**
 * Splits `user:alice` / `group:analysts`. Unlike `parsePrincipal` in the model,
 * a bare name is refused: the core only sees refs the shells normalised.
 */
export function splitPrincipal(ref: string): PrincipalParts | null {
  if (ref.startsWith('user:')) return ref.length > 5 ? { kind: 'user', name: ref.slice(5) } : null;
  if (ref.startsWith('group:')) return ref.length > 6 ? { kind: 'group', name: ref.slice(6) } : null;
  return null;
}

/** True when the ref names a user or group of the world. */
export function principalExists(world: Pick<PolicyWorld, 'users' | 'groups'>, ref: string): boolean {
  const parts = splitPrincipal(ref);
  if (parts === null) return false;
  return parts.kind === 'user'
    ? world.users.some((u) => u.name === parts.name)
    : world.groups.some((g) => g.name === parts.name);
}

/** Direct edges of the membership graph, both ways. */
export interface MembershipGraph {
  /** Names of the groups that directly contain a principal. */
  readonly parents: ReadonlyMap<PrincipalRef, readonly string[]>;
  /** Direct members of a group, by group name. */
  readonly members: ReadonlyMap<string, readonly PrincipalRef[]>;
}

export function membershipGraph(world: Pick<PolicyWorld, 'memberships'>): MembershipGraph {
  const parents = new Map<PrincipalRef, string[]>();
  const members = new Map<string, PrincipalRef[]>();
  for (const m of world.memberships) {
    pushTo(parents, m.member, m.group);
    pushTo(members, m.group, m.member);
  }
  return { parents, members };
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}

/**
 * The principal set of `ref`: itself plus every group containing it,
 * transitively. Does not check that `ref` exists (see `principalExists`).
 *
 * @example principalSet(graph, 'user:alice') // Set { 'user:alice', 'group:analysts', 'group:staff' }
 */
export function principalSet(graph: MembershipGraph, ref: PrincipalRef): Set<PrincipalRef> {
  const out = new Set<PrincipalRef>([ref]);
  const queue: PrincipalRef[] = [ref];
  for (let i = 0; i < queue.length; i++) {
    const current = queue[i] as PrincipalRef;
    for (const group of graph.parents.get(current) ?? []) {
      const g: PrincipalRef = `group:${group}`;
      if (out.has(g)) continue;
      out.add(g);
      queue.push(g);
    }
  }
  return out;
}

/**
 * Users that are members of `group`, directly or through nested groups: the
 * reverse closure. Sorted by name, unique.
 */
export function usersInGroup(graph: MembershipGraph, group: string): string[] {
  const users = new Set<string>();
  const seen = new Set<string>([group]);
  const queue: string[] = [group];
  for (let i = 0; i < queue.length; i++) {
    for (const member of graph.members.get(queue[i] as string) ?? []) {
      const parts = splitPrincipal(member);
      if (parts === null) continue;
      if (parts.kind === 'user') users.add(parts.name);
      else if (!seen.has(parts.name)) {
        seen.add(parts.name);
        queue.push(parts.name);
      }
    }
  }
  return [...users].sort(compareText);
}

/** Users a principal stands for: a user itself, or every user in a group (transitively). */
export function usersOf(graph: MembershipGraph, ref: PrincipalRef): string[] {
  const parts = splitPrincipal(ref);
  if (parts === null) return [];
  return parts.kind === 'user' ? [parts.name] : usersInGroup(graph, parts.name);
}

/**
 * A membership cycle among groups, as the path of group names that closes it
 * (`['a', 'b', 'a']`: `a` contains `b`, which contains `a`), or null. The path
 * starts at the smallest name on the cycle so the answer does not depend on
 * the order of memberships.
 */
export function findGroupCycle(world: Pick<PolicyWorld, 'memberships'>): string[] | null {
  const children = new Map<string, string[]>();
  for (const m of world.memberships) {
    const parts = splitPrincipal(m.member);
    if (parts?.kind === 'group') pushTo(children, m.group, parts.name);
  }
  for (const list of children.values()) list.sort(compareText);
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (g: string): string[] | null => {
    state.set(g, 'open');
    stack.push(g);
    for (const child of children.get(g) ?? []) {
      const s = state.get(child);
      if (s === 'open') return rotateCycle(stack.slice(stack.indexOf(child)));
      if (s === undefined) {
        const found = visit(child);
        if (found !== null) return found;
      }
    }
    stack.pop();
    state.set(g, 'done');
    return null;
  };
  for (const g of [...children.keys()].sort(compareText)) {
    if (state.has(g)) continue;
    const found = visit(g);
    if (found !== null) return found;
  }
  return null;
}

function rotateCycle(cycle: string[]): string[] {
  let start = 0;
  cycle.forEach((name, i) => {
    if (compareText(name, cycle[start] as string) < 0) start = i;
  });
  const rotated = [...cycle.slice(start), ...cycle.slice(0, start)];
  return [...rotated, rotated[0] as string];
}

/** Code-unit order: stable across locales, unlike localeCompare. */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
