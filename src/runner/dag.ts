/**
 * Pure graph functions over `node → the nodes it depends on`. Iterative, so a long chain of
 * stages cannot overflow the stack.
 */
export type DependencyGraph = ReadonlyMap<string, readonly string[]>;

/** A cycle as a path that starts and ends at the same node (`a → b → a`), or undefined. */
export function findCycle(graph: DependencyGraph): string[] | undefined {
  const state = new Map<string, 'active' | 'done'>();
  for (const start of graph.keys()) {
    if (state.has(start)) continue;
    const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
    state.set(start, 'active');
    while (stack.length) {
      const frame = stack[stack.length - 1]!;
      const deps = graph.get(frame.node) ?? [];
      if (frame.next >= deps.length) {
        state.set(frame.node, 'done');
        stack.pop();
        continue;
      }
      const dep = deps[frame.next++]!;
      const s = state.get(dep);
      if (s === 'active') {
        const from = stack.findIndex((f) => f.node === dep);
        return [...stack.slice(from).map((f) => f.node), dep];
      }
      if (s === undefined && graph.has(dep)) {
        state.set(dep, 'active');
        stack.push({ node: dep, next: 0 });
      }
    }
  }
  return undefined;
}

/** Dependencies before dependents; ties keep the graph's insertion order. Assumes no cycle. */
export function topologicalOrder(graph: DependencyGraph): string[] {
  const order: string[] = [];
  const visited = new Set<string>();
  for (const start of graph.keys()) {
    if (visited.has(start)) continue;
    const stack: { node: string; next: number }[] = [{ node: start, next: 0 }];
    visited.add(start);
    while (stack.length) {
      const frame = stack[stack.length - 1]!;
      const deps = graph.get(frame.node) ?? [];
      if (frame.next < deps.length) {
        const dep = deps[frame.next++]!;
        if (!visited.has(dep) && graph.has(dep)) {
          visited.add(dep);
          stack.push({ node: dep, next: 0 });
        }
      } else {
        order.push(frame.node);
        stack.pop();
      }
    }
  }
  return order;
}

/** `targets` and everything they transitively depend on. */
export function withAncestors(graph: DependencyGraph, targets: Iterable<string>): Set<string> {
  const seen = new Set<string>();
  const stack = [...targets];
  while (stack.length) {
    const node = stack.pop()!;
    if (seen.has(node)) continue;
    seen.add(node);
    for (const dep of graph.get(node) ?? []) stack.push(dep);
  }
  return seen;
}

/** `sources` and everything that transitively depends on them. */
export function withDescendants(graph: DependencyGraph, sources: Iterable<string>): Set<string> {
  const dependents = new Map<string, string[]>();
  for (const [node, deps] of graph) for (const dep of deps) (dependents.get(dep) ?? dependents.set(dep, []).get(dep)!).push(node);
  return withAncestors(dependents, sources);
}
